"""Runs a model saved by `python -m restorect_jax.export`, with jax and numpy only.

    from restorect_jax.exported import load_exported
    restore = load_exported("model.stablehlo")
    restored = restore(images)  # (B, H, W, 3) float32 in [0, 1], any H and W
    restored = restore(images, noise_level=25 / 255)  # a denoiser with a noise-level map

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


class ExportedModelError(ValueError):
    """An exported model or its metadata that cannot be read; the message names the file."""


def metadata_path(path: str | pathlib.Path) -> pathlib.Path:
    """The JSON written beside an exported model: `<file>.json`."""
    path = pathlib.Path(path)
    return path.with_name(path.name + ".json")


def load_exported(path: str | pathlib.Path) -> Callable[..., np.ndarray]:
    """A function restoring (B, H, W, 3) float32 batches with the exported model at `path`.

    Sides are padded to the model's stride (`image_ops.pad_to_multiple`), the output cropped back.
    A model exported with a noise-level map needs `noise_level` (sigma / 255: one value, or
    one per image); the others take none.
    """
    path = pathlib.Path(path)
    meta = metadata_path(path)
    if not path.is_file() or not meta.is_file():
        raise FileNotFoundError(f"{path} and {meta} must both exist")
    try:
        metadata = json.loads(meta.read_text())
        stride = int(metadata["stride"])
        takes_level = bool(metadata.get("noise_level", False))
    except (ValueError, KeyError, TypeError) as err:  # JSONDecodeError is a ValueError
        raise ExportedModelError(f"{meta}: not the metadata export writes ({err!r})") from None
    try:
        exported = export.deserialize(bytearray(path.read_bytes()))
    except Exception as err:  # noqa: BLE001 (a damaged file raises struct, flatbuffer, index errors)
        raise ExportedModelError(
            f"{path}: not a model written by restorect_jax.export (empty, truncated or "
            f"damaged: {type(err).__name__})"
        ) from None

    def restore(images: np.ndarray, noise_level: float | np.ndarray | None = None) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected (B, H, W, 3) images, got shape {images.shape}")
        if takes_level != (noise_level is not None):
            need = "needs a noise_level (sigma / 255)" if takes_level else "takes no noise_level"
            raise ValueError(f"{path}: this model {need}")
        height, width = images.shape[1:3]
        arguments = [pad_to_multiple(images, stride)]
        if takes_level:
            arguments.append(np.broadcast_to(np.float32(noise_level), images.shape[:1]).copy())
        return np.asarray(exported.call(*arguments))[:, :height, :width]

    return restore
