"""Restoring images of any size: stride padding and overlapping tiles blended with ramps."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from restorect_jax.image_ops import pad_to_multiple

Predict = Callable[[np.ndarray], np.ndarray]  # (1, h, w, 3) -> (1, h, w, 3)


def ramp(length: int, overlap: int, taper_start: bool, taper_end: bool) -> np.ndarray:
    """Blending weights along one tile side: linear ramps of `overlap` pixels at tapered ends.

    `w[i] = (i + 0.5) / overlap` over the first `overlap` pixels (if `taper_start`), mirrored at
    the end (if `taper_end`), 1 elsewhere. Neighbouring ramps over a shared overlap sum to 1.
    """
    weights = np.ones(length, np.float32)
    if overlap > 0:
        rise = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        if taper_start:
            weights[:overlap] = np.minimum(weights[:overlap], rise)
        if taper_end:
            weights[-overlap:] = np.minimum(weights[-overlap:], rise[::-1])
    return weights


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side `tile` covering [0, length) with at least `overlap` shared."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def restore_tiled(image: np.ndarray, predict: Predict, tile: int, overlap: int) -> np.ndarray:
    """Restores a padded (H, W, 3) image tile by tile and blends the tiles.

    Every tile has the same shape (min(tile, H), min(tile, W)), so the model compiles once.
    Each output pixel is the weighted mean of the tiles covering it, with `ramp` weights that
    fall off towards the inner tile edges.
    """
    height, width = image.shape[:2]
    tile_h, tile_w = min(tile, height), min(tile, width)
    total = np.zeros(image.shape, np.float32)
    weight = np.zeros((height, width, 1), np.float32)
    rows, cols = tile_starts(height, tile_h, overlap), tile_starts(width, tile_w, overlap)
    for top in rows:
        for left in cols:
            window = image[top : top + tile_h, left : left + tile_w]
            out = predict(window[None])[0]
            w_y = ramp(tile_h, overlap, top > 0, top + tile_h < height)
            w_x = ramp(tile_w, overlap, left > 0, left + tile_w < width)
            w = (w_y[:, None] * w_x[None, :])[..., None]
            total[top : top + tile_h, left : left + tile_w] += w * out
            weight[top : top + tile_h, left : left + tile_w] += w
    return total / weight


def restore_pixels(
    pixels: np.ndarray, predict: Predict, stride: int, tile: int, overlap: int
) -> np.ndarray:
    """Restores (H, W, C) float pixels (grey as three equal channels), any size.

    The image is padded (`image_ops.pad_to_multiple`) to a multiple of `stride` (and of the tile grid), restored
    whole or in tiles, and cropped back; grey images come back as the channel mean.
    """
    height, width, channels = pixels.shape
    rgb = np.repeat(pixels, 3, axis=-1) if channels == 1 else pixels
    padded = pad_to_multiple(rgb, stride)
    out = restore_tiled(padded, predict, tile, overlap)[:height, :width]
    return out.mean(axis=-1, keepdims=True) if channels == 1 else out
