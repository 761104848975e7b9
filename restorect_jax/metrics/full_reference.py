"""Full-reference metrics on RGB images in [0, 1], as restoration papers report them.

Both metrics score 8-bit images: outputs are clipped to [0, 1] and rounded to the 256 levels a
saved PNG would have (`quantize`) before scoring.
"""

import dm_pix
import jax
import jax.numpy as jnp


def quantize(image: jax.Array) -> jax.Array:
    """Clips to [0, 1] and rounds to multiples of 1/255: what a saved 8-bit image holds."""
    return jnp.round(jnp.clip(image, 0.0, 1.0) * 255.0) / 255.0


def psnr(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """Peak signal-to-noise ratio in dB over (H, W, C), per image: `10 log10(1 / MSE)`.

    Higher is better; identical images give +inf.
    """
    mse = jnp.mean((prediction - target) ** 2, axis=(-3, -2, -1))
    return -10.0 * jnp.log10(mse)


def ssim(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """Structural similarity per image (11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03).

    Computed per channel on [0, 1] images and averaged over the channels; range [-1, 1], higher
    is better.
    """
    return dm_pix.ssim(prediction, target, max_val=1.0, filter_size=11, filter_sigma=1.5)
