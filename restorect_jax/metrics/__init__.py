"""Image quality metrics: full-reference (PSNR, SSIM, MS-SSIM, CIEDE2000, LPIPS) and
no-reference (NIQE, BRISQUE, PIQE, UCIQE, UIQM). LPIPS lives in the `lpips` submodule (its name
would shadow it here); `registry.METRICS` names every metric for `evaluate`."""

from restorect_jax.metrics.full_reference import (
    MS_SSIM_WEIGHTS,
    ciede2000,
    delta_e_ciede2000,
    ms_ssim,
    ms_ssim_min_size,
    psnr,
    quantize,
    rgb_to_lab,
    rgb_to_y,
    ssim,
)
from restorect_jax.metrics.no_reference import (
    brisque,
    brisque_features,
    load_brisque_model,
    load_niqe_params,
    niqe,
    piqe,
    uciqe,
    uicm,
    uiconm,
    uiqm,
    uism,
)

__all__ = [
    "MS_SSIM_WEIGHTS",
    "brisque",
    "brisque_features",
    "ciede2000",
    "delta_e_ciede2000",
    "load_brisque_model",
    "load_niqe_params",
    "ms_ssim",
    "ms_ssim_min_size",
    "niqe",
    "piqe",
    "psnr",
    "quantize",
    "rgb_to_lab",
    "rgb_to_y",
    "ssim",
    "uciqe",
    "uicm",
    "uiconm",
    "uiqm",
    "uism",
]
