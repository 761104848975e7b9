"""Runs a model saved by `python -m restorect_jax.export`, with jax and numpy only.

    from restorect_jax.exported import load_exported
    restore = load_exported("model.stablehlo")
    restored = restore(images)  # (B, H, W, 3) float32 in [0, 1], any H and W

This module imports nothing from the model code: the serialised StableHLO holds the network and
its weights, and the JSON beside it (`<file>.json`) holds the stride the sides must divide by.
Padding is `image_ops.pad_to_multiple`, the same as `restore` and `evaluate`.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

import numpy as np
from jax import export

from restorect_jax.image_ops import pad_to_multiple


def metadata_path(path: str | pathlib.Path) -> pathlib.Path:
    """The JSON written beside an exported model: `<file>.json`."""
    path = pathlib.Path(path)
    return path.with_name(path.name + ".json")


def load_exported(path: str | pathlib.Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function restoring (B, H, W, 3) float32 batches with the exported model at `path`.

    Sides are padded to the model's stride (`image_ops.pad_to_multiple`), the output cropped back.
    """
    path = pathlib.Path(path)
    if not path.is_file() or not metadata_path(path).is_file():
        raise FileNotFoundError(f"{path} and {metadata_path(path)} must both exist")
    exported = export.deserialize(bytearray(path.read_bytes()))
    stride = json.loads(metadata_path(path).read_text())["stride"]

    def restore(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected (B, H, W, 3) images, got shape {images.shape}")
        height, width = images.shape[1:3]
        padded = pad_to_multiple(images, stride)
        return np.asarray(exported.call(padded))[:, :height, :width]

    return restore
