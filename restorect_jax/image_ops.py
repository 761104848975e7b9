"""The two geometric helpers every path shares: stride padding and the 8 dihedral transforms.

Both take numpy or jax arrays shaped (..., H, W, C): training augmentation, the networks'
own padding, `evaluate`, `restore` and the exported model all call these, so they pad and
flip the same way.
"""

from __future__ import annotations

from typing import TypeVar

import jax
import jax.numpy as jnp
import numpy as np

ArrayT = TypeVar("ArrayT", np.ndarray, jax.Array)


def _xp(array):
    return np if isinstance(array, np.ndarray) else jnp


def pad_to_multiple(image: ArrayT, multiple: int) -> ArrayT:
    """Pads the bottom and right of (..., H, W, C) up to multiples of `multiple`, by reflection.

    Sides shorter than the padding they need are padded symmetrically (edge repeated) instead,
    since a reflection cannot reach that far.
    """
    height, width = image.shape[-3:-1]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return image
    mode = "reflect" if pad_h < height and pad_w < width else "symmetric"
    pad = [(0, 0)] * (image.ndim - 3) + [(0, pad_h), (0, pad_w), (0, 0)]
    return _xp(image).pad(image, pad, mode=mode)


def dihedral(image: ArrayT, k: int, inverse: bool = False) -> ArrayT:
    """Element k (0..7) of the dihedral group on (..., H, W, C): k % 4 quarter turns, then a
    left-right flip if k >= 4; `inverse` undoes it."""
    xp = _xp(image)
    flip = k >= 4
    if inverse:
        image = image[..., ::-1, :] if flip else image
        return xp.rot90(image, -(k % 4), axes=(-3, -2))
    image = xp.rot90(image, k % 4, axes=(-3, -2))
    return image[..., ::-1, :] if flip else image
