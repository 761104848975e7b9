"""Blind noise-level estimation: the standard deviation of white noise in an image, jitted.

Two published estimators, combined:
- Chen, Zhu and Heng, "An efficient statistical method for image noise level estimation"
  (ICCV 2015). Clean natural-image patches lie close to a low-dimensional subspace, so most
  eigenvalues of the patch covariance come from the noise alone. With the eigenvalues of the
  d^2 x d^2 covariance of d x d patches sorted ascending, lambda_1 <= ... <= lambda_r, the noise
  variance is the mean of the largest prefix whose mean equals its median:

      sigma^2 = tau_i = (1 / i) sum_{j <= i} lambda_j,   i the largest index with
      #{j <= i : lambda_j > tau_i} = #{j <= i : lambda_j < tau_i}

  (the paper's discrete "mean = median" test; where no prefix meets it exactly, the one closest
  to it, the largest on ties).
- Liu, Tanaka and Okutomi, "Single-image noise level estimation for blind denoising" (TIP 2013):
  the covariance is taken over weak-texture patches only, those whose gradient energy
  `g = |D_h p|^2 + |D_v p|^2` is below what noise alone reaches 99% of the time at the current
  estimate, `g < sigma^2 G`, where `G` is the 99% point of the gamma law of g for white noise
  of unit variance (shape d^2 / 2, mean 2 (#horizontal + #vertical differences)). Starting from
  every patch, the selection and the estimate are refined `REFINEMENTS` times. Texture no longer
  inflates the estimate at low noise.
Clipping to [0, 1] lowers the variance near 0 and 1, so the refinements also leave out patches
whose mean lies within `CLIP_SIGMAS` estimated sigmas of either bound (unless too few others
remain; a test on each pixel would select the patches whose noise happened to be small). Colour images contribute the patches of every channel, as their noise is
independent across channels. Patches are taken on a grid of step `patch_step`, and images larger
than `max_side` are estimated on their centre crop, so the cost stays bounded for any photo.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

Array = jax.Array

PATCH = 8  # patch side d: the covariance is 64 x 64
PATCH_STEP = 3  # grid step between patches
MAX_SIDE = 1024  # larger images are estimated on their centre crop of this side
REFINEMENTS = 3  # rounds of weak-texture selection
MIN_PATCHES = 128  # fewer selected patches than this: the previous selection is kept
CLIP_SIGMAS = 1.5  # patches whose mean is closer to 0 or 1 than this many sigmas are left out


def texture_threshold(patch: int) -> float:
    """`G`: the 99% point of the gradient energy of a `patch`-sided patch of unit white noise."""
    differences = 2 * patch * (patch - 1)  # horizontal and vertical, each of variance 2
    mean = 2.0 * differences
    shape = patch * patch / 2.0
    # The gamma distribution's 99% point, by the inverse regularised incomplete gamma function
    # (scipy.special: its import is a tenth of scipy.stats').
    return float(special.gammaincinv(shape, 0.99) * mean / shape)


def _patches(image: Array, patch: int, step: int) -> Array:
    """(H, W, C) -> (N, patch^2): the patch x patch windows on a grid of `step`, every channel."""
    channels_first = jnp.moveaxis(image, -1, 0)[:, None]  # (C, 1, H, W)
    windows = jax.lax.conv_general_dilated_patches(
        channels_first, (patch, patch), (step, step), "VALID"
    )  # (C, patch^2, H', W')
    return jnp.moveaxis(windows, 1, -1).reshape(-1, patch * patch)


def _noise_variance(eigenvalues: Array) -> Array:
    """The mean of the largest ascending prefix whose mean is its median (module docstring)."""
    values = jnp.sort(eigenvalues)
    count = values.shape[0]
    prefix_mean = jnp.cumsum(values) / jnp.arange(1, count + 1)  # tau_i, i = 1..r
    in_prefix = jnp.arange(count)[None, :] <= jnp.arange(count)[:, None]  # [i, j]: j <= i
    above = jnp.sum(in_prefix & (values[None, :] > prefix_mean[:, None]), axis=1)
    below = jnp.sum(in_prefix & (values[None, :] < prefix_mean[:, None]), axis=1)
    imbalance = jnp.abs(above - below)
    # The largest i of least imbalance: argmin over the reversed order finds the last minimum.
    best = count - 1 - jnp.argmin(imbalance[::-1])
    return jnp.maximum(prefix_mean[best], 0.0)


def _weighted_noise_variance(patches: Array, weights: Array) -> Array:
    """Chen's estimate over the patches of weight 1."""
    count = jnp.maximum(jnp.sum(weights), 1.0)
    mean = weights @ patches / count
    centred = (patches - mean) * weights[:, None]
    covariance = centred.T @ centred / count
    return _noise_variance(jnp.linalg.eigvalsh(covariance))


def _gradient_energy(patches: Array, patch: int) -> Array:
    squares = patches.reshape(-1, patch, patch)
    horizontal = jnp.sum(jnp.square(jnp.diff(squares, axis=2)), axis=(1, 2))
    vertical = jnp.sum(jnp.square(jnp.diff(squares, axis=1)), axis=(1, 2))
    return horizontal + vertical


def _keep_enough(selected: Array, fallback: Array) -> Array:
    """`selected` where it holds at least MIN_PATCHES patches, else `fallback`."""
    return jnp.where(jnp.sum(selected) >= MIN_PATCHES, selected, fallback)


def _centre_crop(image: Array, max_side: int) -> Array:
    height, width = image.shape[:2]
    top, left = max(0, (height - max_side) // 2), max(0, (width - max_side) // 2)
    return image[top : top + max_side, left : left + max_side]


@functools.partial(jax.jit, static_argnames=("patch", "patch_step", "max_side"))
def estimate_sigma(
    images: Array, patch: int = PATCH, patch_step: int = PATCH_STEP, max_side: int = MAX_SIDE
) -> Array:
    """The noise standard deviation of each image of a (B, H, W, C) batch, on its own scale.

    Images in [0, 1] give sigma / 255 for noise of sigma on the 8-bit scale. Images with a
    side under `patch` use patches of that side (a rough estimate from very few pixels).
    """
    patch = min(patch, *images.shape[1:3])

    threshold = texture_threshold(patch)

    def one(image: Array) -> Array:
        patches = _patches(_centre_crop(image.astype(jnp.float32), max_side), patch, patch_step)
        every = jnp.ones(patches.shape[:1], jnp.float32)
        energy = _gradient_energy(patches, patch)
        means = jnp.mean(patches, axis=1)
        variance = _weighted_noise_variance(patches, every)
        for _ in range(REFINEMENTS):
            margin = CLIP_SIGMAS * jnp.sqrt(variance)
            inside = (means > margin) & (means < 1.0 - margin)
            weak = (energy < variance * threshold) & inside
            variance = _weighted_noise_variance(
                patches, _keep_enough(weak.astype(jnp.float32), every)
            )
        return jnp.sqrt(variance)

    return jax.vmap(one)(images)


def image_sigma(pixels: np.ndarray) -> float:
    """The noise level (sigma / 255) of one (H, W, C) image in [0, 1] as `restore` reads it:
    the whole image, clipped, a grey one as three equal channels."""
    rgb = np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels
    return float(estimate_sigma(np.clip(rgb, 0.0, 1.0)[None])[0])
