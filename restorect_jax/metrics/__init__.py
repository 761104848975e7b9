"""Image quality metrics."""

from restorect_jax.metrics.full_reference import psnr, quantize, ssim

__all__ = ["psnr", "quantize", "ssim"]
