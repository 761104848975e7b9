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

import argparse
import pathlib
import sys

import ml_collections
import numpy as np

from restorect_jax import image_io, inference, noise_level, writers
from restorect_jax.data import pipeline
from restorect_jax.tiling import restore_pixels

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
            level = noise_level.image_sigma(noisy)

        def predict(batch: np.ndarray, level=level) -> np.ndarray:
            return model.predict(np.clip(batch, 0.0, 1.0), noise_level=level)

        restored = restore_pixels(noisy, predict, model.stride, TILE, OVERLAP)
        reference = image_io.read_image(reference_path).pixels
        rows.append([centre_crop(image, side) for image in (noisy, restored, reference)])
    return rows


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--workdir", help="a training run")
    model.add_argument("--task", help="a shipped bundle's task")
    model.add_argument("--bundle", help="a weight bundle folder")
    parser.add_argument("--pairs", default="denoise/test/PolyU", help="folder under the data root")
    parser.add_argument("--images", default="0,45,90", help="indices of the sorted pairs to show")
    parser.add_argument("--crop", type=int, default=192, help="side of the centre crop shown")
    parser.add_argument("--out", default="docs/images/polyu_before_after.png", help="PNG to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    try:
        indices = [int(text) for text in args.images.split(",")]
    except ValueError:
        raise SystemExit(f"error: --images {args.images}: integers expected") from None
    if args.crop < 16:
        raise SystemExit(f"error: --crop {args.crop}: must be at least 16")
    if pathlib.Path(args.out).exists() and not args.overwrite:
        raise SystemExit(f"error: --out {args.out} exists; pass --overwrite to replace it")
    try:
        root = pipeline.resolve_data_root(ml_collections.ConfigDict({"root": ""}))
        pairs = pair_files(root / args.pairs, indices)
        model = inference.load_model(workdir=args.workdir, task=args.task, bundle=args.bundle)
        rows = restored_rows(model, pairs, args.crop)
        writers.save_png(args.out, writers.image_grid(rows), overwrite=args.overwrite)
    except (GridError, inference.ModelLoadError, FileExistsError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from None
    print(f"wrote {args.out}: {len(rows)} rows of noisy | {model.name} | reference")


if __name__ == "__main__":
    main(sys.argv[1:])
