"""A before/after picture of real photos for the docs: noisy crop | restored | reference.

  RESTORECT_DATA_DIR=../shared/data python tools/photo_grid.py --workdir runs/denoiser \
      --pairs denoise/test/PolyU --images 0,45,90 --crop 192 --out docs/images/polyu_before_after.png

`--pairs` is a folder of the data root with `real/` (noisy photos) and `mean/` (their references,
PolyU's mean of many exposures) under the same file names. Each row shows one pair, the sorted
file at each index of `--images`: the centre `--crop` pixels of the noisy photo, of the model's
restoration of the whole photo (as `restore` does it: a noise-map denoiser estimates each
photo's noise level) and of the reference. The picture carries no numbers; the same model's
scores over every pair are in the docs' real-noise table.
"""

from __future__ import annotations

import pathlib

import ml_collections
import numpy as np
from absl import app, flags

from restorect_jax import image_io, inference, noise_level, writers
from restorect_jax.data import pipeline
from restorect_jax.tiling import restore_pixels

_WORKDIR = flags.DEFINE_string("workdir", None, "a training run (or use --task / --bundle)")
_TASK = flags.DEFINE_string("task", None, "a shipped bundle's task")
_BUNDLE = flags.DEFINE_string("bundle", None, "a weight bundle folder")
_PAIRS = flags.DEFINE_string("pairs", "denoise/test/PolyU", "pairs folder under the data root")
_IMAGES = flags.DEFINE_list("images", ["0", "45", "90"], "indices of the sorted pairs to show")
_CROP = flags.DEFINE_integer("crop", 192, "side of the centre crop shown", lower_bound=16)
_OUT = flags.DEFINE_string("out", "docs/images/polyu_before_after.png", "the PNG to write")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "replace --out if it exists")


TILE, OVERLAP = 512, 32  # `restore`'s defaults


class GridError(ValueError):
    """A pairs folder or an index that cannot give the picture; the message names it."""


def pair_files(folder: pathlib.Path, indices: list[int]) -> list[tuple[pathlib.Path, pathlib.Path]]:
    """(noisy, reference) paths of the sorted pairs at `indices` of `folder`/real and /mean."""
    noisy = sorted((folder / "real").glob("*")) if (folder / "real").is_dir() else []
    if not noisy:
        raise GridError(f"--pairs {folder}: no real/ folder of noisy photos")
    pairs = []
    for index in indices:
        if not 0 <= index < len(noisy):
            raise GridError(
                f"--images {index}: {folder} has {len(noisy)} pairs (0-{len(noisy) - 1})"
            )
        reference = folder / "mean" / noisy[index].name
        if not reference.is_file():
            raise GridError(f"--pairs {folder}: no mean/{noisy[index].name} beside the noisy photo")
        pairs.append((noisy[index], reference))
    return pairs


def centre_crop(image: np.ndarray, side: int) -> np.ndarray:
    """The centre `side` x `side` pixels (the whole image along a shorter side)."""
    top = max(0, (image.shape[0] - side) // 2)
    left = max(0, (image.shape[1] - side) // 2)
    return image[top : top + side, left : left + side]


def restored_rows(
    model: inference.LoadedModel, pairs: list[tuple[pathlib.Path, pathlib.Path]], side: int
) -> list[list[np.ndarray]]:
    """[noisy, restored, reference] centre crops, one row per pair."""
    rows = []
    for noisy_path, reference_path in pairs:
        noisy = image_io.read_image(noisy_path).pixels
        level = None  # a noise-map denoiser reads its blind estimate of the whole photo
        if model.takes_noise_level:
            level = float(noise_level.estimate_sigma(np.clip(noisy, 0.0, 1.0)[None])[0])

        def predict(batch: np.ndarray, level=level) -> np.ndarray:
            return model.predict(np.clip(batch, 0.0, 1.0), noise_level=level)

        restored = restore_pixels(noisy, predict, model.stride, TILE, OVERLAP)
        reference = image_io.read_image(reference_path).pixels
        rows.append([centre_crop(image, side) for image in (noisy, restored, reference)])
    return rows


def main(argv: list[str]) -> None:
    del argv
    try:
        indices = [int(text) for text in _IMAGES.value]
    except ValueError:
        raise SystemExit(f"error: --images {','.join(_IMAGES.value)}: integers expected") from None
    if pathlib.Path(_OUT.value).exists() and not _OVERWRITE.value:
        raise SystemExit(f"error: --out {_OUT.value} exists; pass --overwrite to replace it")
    try:
        root = pipeline.resolve_data_root(ml_collections.ConfigDict({"root": ""}))
        pairs = pair_files(root / _PAIRS.value, indices)
        model = inference.load_model(workdir=_WORKDIR.value, task=_TASK.value, bundle=_BUNDLE.value)
        rows = restored_rows(model, pairs, _CROP.value)
        writers.save_png(_OUT.value, writers.image_grid(rows), overwrite=_OVERWRITE.value)
    except (GridError, inference.ModelLoadError, FileExistsError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from None
    print(f"wrote {_OUT.value}: {len(rows)} rows of noisy | {model.name} | reference")


if __name__ == "__main__":
    app.run(main)
