"""Command line: restores photos with a trained restorer.

    python -m restorect_jax.restore --task denoise photo.jpg scans/ --output restored/
    python -m restorect_jax.restore --workdir runs/restorect_denoise noisy.png --output out/
    python -m restorect_jax.restore --task denoise --sampler heun:2 photo.jpg --output out/
    python -m restorect_jax.restore --task denoise --noise_level 15 photo.jpg --output out/

A denoiser with a noise-level map estimates each image's noise level (sigma on the 0-255 scale,
`restorect_jax.noise_level`) from the whole image before any tiling; `--noise_level N` sets it
instead, for every image: a strength knob (higher removes more noise and more fine detail).

Inputs are files or folders (their images, not subfolders): PNG, JPEG, TIFF, BMP, WebP; 8 or 16
bits; grey or RGB; alpha passed through; EXIF orientation applied. Each output keeps its input's
name, format and bit depth; nothing is replaced unless `--overwrite`: a name already taken in
`--output` (by an input, another file, or another run writing there at the same time) gets
`_2`, `_3`, ... Images larger than `--tile` are restored in overlapping tiles,
blended with linear ramps over the overlap, so memory stays bounded for any size. A bad file
gets a one-line error and the others still get done; the exit status is 1 if any failed.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
from collections.abc import Iterator

import numpy as np
import tqdm
from absl import flags

from restorect_jax import cli, flow, image_io, inference, noise_level, signals, writers
from restorect_jax.tiling import restore_pixels

_TASK = flags.DEFINE_enum(
    "task",
    None,
    inference.TASKS,
    "shipped model to use: denoise (blind, any noise level; also the one for camera and phone "
    "photos, with --noise_level unset: see README 'Camera and phone photos'), derain, lowlight",
)
_WORKDIR = flags.DEFINE_string("workdir", None, "a training run (or bundle folder) to use")
_BUNDLE = flags.DEFINE_string("bundle", None, "a weight bundle folder to use")
_OUTPUT = flags.DEFINE_string("output", None, "output folder")
_SAMPLER = flags.DEFINE_string(
    "sampler", None, "flow models: solver[:steps or grid], e.g. euler:4 (default: the model's)"
)
_STEPS = flags.DEFINE_integer("steps", None, "flow models: ODE steps with the model's solver")
_TILE = flags.DEFINE_integer("tile", 512, "tile side in pixels; larger images are tiled")
_OVERLAP = flags.DEFINE_integer("overlap", 32, "overlap between neighbouring tiles, in pixels")
_NOISE_LEVEL = flags.DEFINE_float(
    "noise_level",
    None,
    "denoisers with a noise-level map: the noise sigma on the 0-255 scale (default: estimated "
    "per image); higher is stronger",
)
_OVERWRITE = flags.DEFINE_bool(
    "overwrite",
    False,
    "let outputs replace existing files (their inputs too); else a taken name gets _2",
)


class RestoreError(Exception):
    """A problem with the request as a whole (not with one file); printed without traceback."""


def collect_inputs(paths: list[str]) -> tuple[list[pathlib.Path], list[str]]:
    """The image files named or inside the named folders, and one error line per bad path."""
    files, errors = [], []
    for name in paths:
        path = pathlib.Path(name)
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in image_io.SUFFIXES
            )
            if not found:
                errors.append(f"{path}: no images ({', '.join(sorted(image_io.SUFFIXES))})")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"{path}: no such file or folder")
    return files, errors


def check_tiling(tile: int, overlap: int, stride: int) -> None:
    """Raises RestoreError naming --tile / --overlap when they cannot tile an image."""
    if overlap < 0:
        raise RestoreError(f"--overlap {overlap}: must be >= 0")
    if tile <= 0 or tile % stride:
        raise RestoreError(f"--tile {tile}: must be a positive multiple of {stride}")
    if tile <= 2 * overlap:
        raise RestoreError(f"--tile {tile}: must be more than twice --overlap {overlap}")


MAX_NOISE_LEVEL = 255.0


def check_noise_level(model: inference.LoadedModel, level: float | None) -> None:
    """Raises RestoreError naming --noise_level when the value or the model cannot take it."""
    if level is None:
        return
    if not model.takes_noise_level:
        raise RestoreError(
            f"--noise_level: {model.name} reads no noise level (only denoisers with a "
            "noise-level map do)"
        )
    if not 0.0 <= level <= MAX_NOISE_LEVEL:
        raise RestoreError(f"--noise_level {level:g}: must be in [0, {MAX_NOISE_LEVEL:g}]")


def image_noise_level(
    model: inference.LoadedModel, pixels: np.ndarray, level: float | None
) -> float | None:
    """The noise level (sigma / 255) the model restores `pixels` at: `level` / 255 when given,
    else the estimate over the whole image; None for a model that reads none."""
    if not model.takes_noise_level:
        return None
    if level is not None:
        return level / MAX_NOISE_LEVEL
    return noise_level.image_sigma(pixels)


@dataclasses.dataclass
class Outcome:
    source: pathlib.Path
    error: str | None = None
    target: pathlib.Path | None = None


def restore_files(
    files: list[pathlib.Path],
    output_dir: pathlib.Path,
    model: inference.LoadedModel,
    *,
    sampler: flow.SamplerSpec | None,
    tile: int,
    overlap: int,
    overwrite: bool,
    level: float | None = None,
) -> Iterator[Outcome]:
    """Restores each file into `output_dir`, yielding an outcome per file (errors included).

    `level`: the noise sigma (0-255) a noise-map denoiser restores every image at (None:
    estimated per image). A file that fails (unreadable, an unsupported layout, a failed
    write) gets its error and the others still get done.
    """
    check_tiling(tile, overlap, model.stride)
    check_noise_level(model, level)
    if model.needs_ground_truth:
        raise RestoreError(f"{model.name} reads the ground truth; use a model that does not")
    try:
        writers.ensure_writable_folder(output_dir, "--output")
    except writers.FolderError as err:
        raise RestoreError(str(err)) from None

    def predictor(image_level: float | None):
        def predict(batch: np.ndarray) -> np.ndarray:
            clipped = np.clip(batch, 0.0, 1.0)
            return model.predict(clipped, sampler=sampler, noise_level=image_level)

        return predict

    for job in tqdm.tqdm(
        image_io.plan_outputs(files, output_dir, overwrite), desc="restore", unit="img"
    ):
        try:
            image = image_io.read_image(job.source)
            predict = predictor(image_noise_level(model, image.pixels, level))
            restored = restore_pixels(image.pixels, predict, model.stride, tile, overlap)
            # A name taken since planning (another run, another file) moves on to `_2`, ...
            target = image_io.write_image(job.target, restored, image, overwrite=overwrite)
        except image_io.ImageReadError as err:
            yield Outcome(job.source, str(err))
        except (OSError, ValueError) as err:
            yield Outcome(job.source, f"{job.source}: {err}")
        else:
            yield Outcome(job.source, target=target)


def load_model(task: str | None, workdir: str | None, bundle: str | None) -> inference.LoadedModel:
    try:
        return inference.load_model(workdir=workdir, task=task, bundle=bundle)
    except inference.ModelLoadError as err:
        raise RestoreError(str(err)) from err


def main(argv: list[str]) -> None:
    inputs = argv[1:]
    files, done = [], []
    try:
        if not inputs:
            raise RestoreError("name at least one input file or folder")
        if not _OUTPUT.value:
            raise RestoreError("--output is required")
        model = load_model(_TASK.value, _WORKDIR.value, _BUNDLE.value)
        cli.enable_compilation_cache(model.config.get("compilation_cache_dir"))
        try:
            sampler = flow.sampler_from_flags(
                model.method.default_sampler(), _SAMPLER.value, _STEPS.value
            )
        except ValueError as err:
            raise RestoreError(str(err)) from None
        files, errors = collect_inputs(inputs)
        outcomes = restore_files(
            files,
            pathlib.Path(_OUTPUT.value),
            model,
            sampler=sampler,
            tile=_TILE.value,
            overlap=_OVERLAP.value,
            overwrite=_OVERWRITE.value,
            level=_NOISE_LEVEL.value,
        )
        for outcome in outcomes:
            if outcome.error:
                errors.append(outcome.error)
            else:
                done.append(outcome)
    except RestoreError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (signals.Terminated)
        print(f"\ninterrupted: restored {len(done)} of {len(files)} images", file=sys.stderr)
        raise SystemExit(signals.interrupt_exit_code(interrupt)) from None
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    for outcome in done:
        if outcome.target.name != outcome.source.name:
            print(f"{outcome.source} -> {outcome.target} (the name was taken)")
    print(f"restored {len(done)} of {len(files)} images into {_OUTPUT.value}")
    if errors:
        raise SystemExit(1)


def run() -> None:
    """The `restorect-restore` console command (`python -m restorect_jax.restore` is the same)."""
    cli.console_command(__name__, main)


if __name__ == "__main__":
    run()
