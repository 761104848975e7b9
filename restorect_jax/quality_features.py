"""Differentiable BRISQUE- and PIQE-style extractors on feature maps (SLKD, METHODS 3).

Both start from the MSCN map of each channel, the normalisation the BRISQUE and PIQE metrics
use (`metrics.no_reference.mscn_map` is the same map in numpy, and a test holds them equal):
    B(F) = (F - G*F) / (sqrt(|G*F^2 - (G*F)^2|) + c),
with G the 7x7 Gaussian (sigma 7/6) and a replicated border. METHODS writes the local
deviation as `sqrt(G*(F - G*F)^2)`; the metrics compute it as `G*F^2 - (G*F)^2`, which is what
is used here, so a feature-map term means what the metric means.
  `brisque_features`: B(F), optionally with its products with the right, lower, lower-right and
    upper-right neighbours (zero past the border), BRISQUE's paired products.
  `piqe_features`: per block of the MSCN map, `active * variance * edge`: PIQE's block
    activity (variance, n - 1 normalised) where the block is active (variance above the
    threshold; the mask carries no gradient), weighted by the block's edge strength (the mean
    absolute difference between neighbouring MSCN values along its four borders).
Inputs are (B, H, W, C); every channel is treated alone.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from restorect_jax.metrics.no_reference import GAUSS_7

Array = jax.Array


def gaussian_blur_7(x: Array) -> Array:
    """Separable 7x7 Gaussian (sigma 7/6) of each channel of (B, H, W, C), replicated border."""
    taps = jnp.asarray(GAUSS_7, x.dtype)
    height, width = x.shape[1:3]
    padded = jnp.pad(x, ((0, 0), (3, 3), (3, 3), (0, 0)), mode="edge")
    rows = sum(taps[k] * padded[:, k : k + height] for k in range(7))
    return sum(taps[k] * rows[:, :, k : k + width] for k in range(7))


def mscn(x: Array, c: float) -> Array:
    """`(x - G*x) / (sqrt(|G*x^2 - (G*x)^2|) + c)` per channel (see the module docstring)."""
    mean = gaussian_blur_7(x)
    variance = jnp.abs(gaussian_blur_7(x * x) - mean * mean)
    # sqrt has an infinite derivative at 0: flat regions get a zero gradient through it instead.
    deviation = jnp.sqrt(jnp.where(variance > 0, variance, 1.0)) * (variance > 0)
    return (x - mean) / (deviation + c)


def _neighbour(x: Array, di: int, dj: int) -> Array:
    """`y[i, j] = x[i + di, j + dj]`, zero where that falls outside (H, W are axes 1, 2)."""
    height, width = x.shape[1:3]
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return padded[:, 1 + di : 1 + di + height, 1 + dj : 1 + dj + width]


PAIR_OFFSETS = ((0, 1), (1, 0), (1, 1), (-1, 1))  # right, lower, lower-right, upper-right


def brisque_features(x: Array, c: float, pairs: bool = False) -> Array:
    """B(x) (B, H, W, C), or with `pairs` [B, B*right, B*lower, B*lower-right, B*upper-right]
    concatenated on the channel axis (5C)."""
    normalised = mscn(x, c)
    if not pairs:
        return normalised
    products = [normalised * _neighbour(normalised, di, dj) for di, dj in PAIR_OFFSETS]
    return jnp.concatenate([normalised, *products], axis=-1)


def _blocks(x: Array, block: int) -> Array:
    """(B, H, W, C) -> (B, H/b, W/b, b, b, C); H and W must be multiples of `block`."""
    b, height, width, channels = x.shape
    if height % block or width % block:
        raise ValueError(f"piqe blocks: map {height}x{width} is not a multiple of {block}")
    x = x.reshape(b, height // block, block, width // block, block, channels)
    return x.transpose(0, 1, 3, 2, 4, 5)


def piqe_block_stats(normalised: Array, block: int, threshold: float) -> tuple[Array, Array]:
    """Per block of an MSCN map: variance (n - 1 normalised) and the active mask, each
    (B, H/b, W/b, C). `metrics.no_reference.piqe_blocks` gives the same for one 2-D map."""
    blocks = _blocks(normalised, block)
    variance = jnp.var(blocks, axis=(3, 4), ddof=1)
    return variance, jax.lax.stop_gradient(variance > threshold)


def block_edge_strength(normalised: Array, block: int) -> Array:
    """Mean absolute difference of neighbouring MSCN values along each block's four borders."""
    blocks = _blocks(normalised, block)
    borders = (
        blocks[:, :, :, 0],
        blocks[:, :, :, -1],
        blocks[:, :, :, :, 0],
        blocks[:, :, :, :, -1],
    )
    return sum(jnp.mean(jnp.abs(jnp.diff(edge, axis=3)), axis=3) for edge in borders) / 4


def piqe_features(x: Array, c: float, block: int, threshold: float = 0.1) -> Array:
    """PIQE-style activity map (B, H/b, W/b, C): active * variance * edge strength per block."""
    normalised = mscn(x, c)
    variance, active = piqe_block_stats(normalised, block, threshold)
    return active * variance * block_edge_strength(normalised, block)
