"""Command line: scores a trained model, or the degraded input itself, on the benchmark test sets.

    python -m restorect_jax.evaluate --workdir runs/teacher_denoise --datasets CBSD68,Kodak24 \
        --sigma 25
    python -m restorect_jax.evaluate --task denoise --sampler heun:2 --baseline bm3d

The model is a run (`--workdir`, `--checkpoint`), a weight bundle (`--bundle`, or `--workdir`
on a bundle folder) or a shipped model (`--task`). Each image is padded
(`image_ops.pad_to_multiple`) to the network stride, restored at full resolution (optionally
as the mean of the 8 dihedral transforms, `--self_ensemble`), cropped back, clipped to [0, 1] and
rounded to 8 bits as a saved PNG would be (`--noquantize` scores the float output as it is),
then scored. A denoiser with a noise-level map estimates each image's level (blind), or with
`--known_noise_level` reads the set's sigma (non-blind, as FFDNet's published figures are).
Grey sets enter an RGB model as three equal channels and leave it as the channel mean.

Writes to `--output` (default `<workdir>/eval`, or `eval/<baseline>` for `--baseline`):
`<set>.csv` (per image), `results.json` and `results.md` (means per set, with the protocol),
`<set>_grid.png` (input, output, ground truth of the first images) and, for flow models,
`<set>_steps.png` (PSNR against ODE steps of the model's solver, `--steps_sweep`).

`--baseline input` scores the degraded input as the output (the "input" row of papers' tables);
`--baseline ground_truth` scores the clean images themselves (for no-reference metrics);
`--baseline bm3d` restores AWGN sets with (C)BM3D at the set's true sigma, and sets of real
camera noise (PolyU) at the sigma `noise_level.estimate_sigma` gives (the `bm3d` package, an
optional extra: `pip install bm3d`), the classical reference a user already has. PolyU's
scores are RGB PSNR/SSIM of each restored real photo against the mean of many shots. With a
model, `--baseline` adds its rows to the same table (`<output>/baseline_<name>/`).
"""

from __future__ import annotations

import csv
import json
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from restorect_jax import cli, flow, inference, safe_files, scoring, signals, writers
from restorect_jax.data import benchmarks
from restorect_jax.data.pipeline import DATA_DIR_ENV, resolve_data_root
from restorect_jax.metrics import registry
from restorect_jax.metrics.registry import Protocol
from restorect_jax.scoring import (
    Restorer,
    default_metrics,
    evaluate_dataset,
    psnr_by_steps,
    restorer_from_model,
)

_WORKDIR = flags.DEFINE_string(
    "workdir", None, "training workdir (config.json, checkpoints/) or a weight bundle folder"
)
_TASK = flags.DEFINE_enum("task", None, inference.TASKS, "the shipped model of a task")
_BUNDLE = flags.DEFINE_string("bundle", None, "a weight bundle folder (tools/make_bundle.py)")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "a checkpoint step folder (<workdir>/checkpoints/<step>); default newest"
)
config_flags.DEFINE_config_file("config", None, "config file; default <workdir>/config.json")
_BASELINE = flags.DEFINE_enum(
    "baseline",
    None,
    ["input", "ground_truth", "bm3d"],
    "score the input, GT or (C)BM3D (alone, or as extra rows beside a model)",
)
_DATASETS = flags.DEFINE_list(
    "datasets", None, f"test sets ({', '.join(benchmarks.BENCHMARKS)}); default: the model's task"
)
_SIGMA = flags.DEFINE_list("sigma", ["25"], "AWGN levels of the synthetic-noise sets (15, 25, 50)")
_SAMPLER = flags.DEFINE_string(
    "sampler", None, "flow models: solver[:steps or grid], e.g. euler:4 (default: the model's)"
)
_STEPS = flags.DEFINE_integer("steps", None, "flow models: ODE steps with the model's solver")
_STEPS_SWEEP = flags.DEFINE_list("steps_sweep", ["1", "2", "4", "8"], "ODE steps for the plot")
_SELF_ENSEMBLE = flags.DEFINE_bool("self_ensemble", False, "average the 8 dihedral transforms")
_KNOWN_NOISE_LEVEL = flags.DEFINE_bool(
    "known_noise_level",
    False,
    "denoisers with a noise-level map read each set's true sigma instead of estimating it",
)
_METRICS = flags.DEFINE_list(
    "metrics", None, f"metrics ({', '.join(registry.METRICS)}); default: those that apply"
)
_Y_CHANNEL = flags.DEFINE_enum(
    "y_channel", "auto", ["auto", "true", "false"], "PSNR/SSIM on BT.601 Y (auto: derain only)"
)
_CROP_BORDER = flags.DEFINE_integer("crop_border", 0, "pixels cut from each edge before scoring")
_QUANTIZE = flags.DEFINE_bool("quantize", True, "round outputs to 8 bits before scoring")
_MAX_IMAGES = flags.DEFINE_integer("max_images", 0, "first N images per set (0 = all)")
_GRID_IMAGES = flags.DEFINE_integer(
    "grid_images", 4, "images in each before/after grid (0: no grid)", lower_bound=0
)
_DATA_ROOT = flags.DEFINE_string("data_root", None, f"benchmark data; default ${DATA_DIR_ENV}")
_TFDS_DIR = flags.DEFINE_string("tfds_dir", None, "TFDS directory; default the config's")
_OUTPUT = flags.DEFINE_string("output", None, "output folder")
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "replace the files of an earlier evaluation in --output"
)


class EvaluationError(Exception):
    """A problem with the user's request; printed as one line, without a traceback."""


class EvaluationInterrupted(Exception):
    """Ctrl-C or SIGTERM part way: `done` of `total` (set, sigma) scores were finished."""

    def __init__(self, done: int, total: int, exit_code: int):
        super().__init__(f"interrupted: scored {done} of {total} sets and noise levels; no report")
        self.exit_code = exit_code


# --- what restores -------------------------------------------------------------------------


def load_model(config_override: ml_collections.ConfigDict | None) -> inference.LoadedModel:
    """The model the flags name: --checkpoint, --workdir (a run or a bundle), --bundle, --task."""
    try:
        if _CHECKPOINT.value or (config_override is not None and _WORKDIR.value):
            workdir = pathlib.Path(_WORKDIR.value) if _WORKDIR.value else None
            checkpoint = pathlib.Path(_CHECKPOINT.value) if _CHECKPOINT.value else None
            return inference.load_run(workdir, checkpoint, config_override)
        return inference.load_model(workdir=_WORKDIR.value, task=_TASK.value, bundle=_BUNDLE.value)
    except inference.ModelLoadError as err:
        raise EvaluationError(str(err)) from err


# --- scoring ---------------------------------------------------------------------------------


def check_metrics(names: Sequence[str], benchmark: benchmarks.Benchmark) -> None:
    try:
        registry.check_names(names, benchmark.has_gt, benchmark.grey)
    except ValueError as err:
        raise EvaluationError(f"dataset {benchmark.name}: {err}; change --metrics") from None


# --- one dataset -----------------------------------------------------------------------------


# --- outputs ---------------------------------------------------------------------------------


def write_csv(path: pathlib.Path, rows: list[dict[str, Any]]) -> None:
    def write(temporary: pathlib.Path) -> None:
        with temporary.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    safe_files.write_new(path, write, overwrite=_OVERWRITE.value)


def write_grid(path: pathlib.Path, records: list[dict[str, Any]], outputs: list[np.ndarray]):
    """Rows of input | output | ground truth (when there is one) for the first images."""
    rows = []
    for record, output in zip(records, outputs):
        row = [record["lq"], output] + ([record["gt"]] if "gt" in record else [])
        rows.append([scoring.as_rgb(np.clip(image, 0.0, 1.0)) for image in row])
    writers.save_png(path, writers.image_grid(rows), overwrite=_OVERWRITE.value)


def write_steps_plot(path: pathlib.Path, title: str, by_steps: dict[int, float]) -> None:
    import matplotlib  # Only the flow plot needs it.

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4, 3))
    axes.plot(list(by_steps), list(by_steps.values()), marker="o")
    axes.set_xscale("log", base=2)
    axes.set_xticks(list(by_steps), [str(s) for s in by_steps])
    axes.set_xlabel("ODE steps")
    axes.set_ylabel("PSNR (dB)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    safe_files.write_new(
        path,
        lambda temporary: figure.savefig(temporary, dpi=120, format="png"),
        overwrite=_OVERWRITE.value,
    )
    plt.close(figure)


def markdown_table(results: list[dict[str, Any]]) -> str:
    """One row per (model, set, sigma): the mean of every metric, arrows saying which way is better."""
    names = []
    for result in results:
        names += [n for n in result["means"] if n not in names]
    header = " | ".join(
        f"{registry.METRICS[n].label} {'↑' if registry.METRICS[n].higher_is_better else '↓'}"
        for n in names
    )
    lines = [f"| model | set | images | {header} |", "|" + "---|" * (len(names) + 3)]
    for result in results:
        cells = [f"{result['means'][n]:.4f}" if n in result["means"] else "" for n in names]
        lines.append(
            f"| {result['model']} | {result['label']} | {result['images']} | {' | '.join(cells)} |"
        )
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def _sigmas() -> list[int]:
    """--sigma's noise levels, each an integer in [0, 255]."""
    try:
        sigmas = [int(s) for s in _SIGMA.value]
    except ValueError:
        sigmas = []
    if not sigmas or not all(0 <= sigma <= 255 for sigma in sigmas):
        raise EvaluationError(
            f"--sigma {','.join(_SIGMA.value)}: must be integers in [0, 255] (the 8-bit scale)"
        )
    return sigmas


def _check_flags() -> None:
    """Raises EvaluationError naming the first bad numeric flag, before any work."""
    _sigmas()
    if _MAX_IMAGES.value < 0:
        raise EvaluationError(f"--max_images {_MAX_IMAGES.value}: must be >= 0 (0 scores all)")
    if _CROP_BORDER.value < 0:
        raise EvaluationError(f"--crop_border {_CROP_BORDER.value}: must be >= 0")


def _check_crop_border(plans: list[tuple], data_root: pathlib.Path, tfds_dir: pathlib.Path):
    """Raises EvaluationError when --crop_border leaves nothing of some set's smallest image."""
    border = _CROP_BORDER.value
    if not border:
        return
    for benchmark, sigma, _ in {plan[0].name: plan for plan in plans}.values():
        records = _records(benchmark, sigma, data_root, tfds_dir)
        height, width = min((r["lq"].shape[:2] for r in records), key=min)
        if 2 * border >= min(height, width):
            raise EvaluationError(
                f"--crop_border {border}: leaves nothing of {benchmark.name}'s {height}x{width} "
                "image (at most half its shorter side, less one)"
            )


def _check_outputs(output_dir: pathlib.Path, plans: list[tuple]) -> None:
    """Raises EvaluationError naming --output when it cannot be written or (without
    --overwrite) already holds a file this evaluation writes."""
    try:
        writers.ensure_writable_folder(output_dir, "--output")
    except writers.FolderError as err:
        raise EvaluationError(str(err)) from None
    if _OVERWRITE.value:
        return
    stems = {_stem(benchmark, sigma) for benchmark, sigma, _ in plans}
    names = ["results.json", "results.md"] + [
        f"{stem}{end}" for stem in sorted(stems) for end in (".csv", "_grid.png", "_steps.png")
    ]
    for folder in (output_dir, output_dir / f"baseline_{_BASELINE.value}"):
        for name in names:
            if (folder / name).exists():
                raise EvaluationError(
                    f"--output {output_dir}: holds {folder / name} from an earlier evaluation "
                    "(pass --overwrite to replace it, or another --output)"
                )


def _stem(benchmark: benchmarks.Benchmark, sigma: int | None) -> str:
    """The file-name stem of one (set, sigma): `CBSD68_sigma25`, `DICM`."""
    return benchmark.name + (f"_sigma{sigma}" if sigma is not None else "")


def _records(benchmark, sigma, data_root, tfds_dir) -> list[dict[str, Any]]:
    try:
        records = benchmarks.load_benchmark(benchmark.name, data_root, tfds_dir, sigma=sigma)
    except (FileNotFoundError, ValueError) as err:
        raise EvaluationError(str(err)) from err
    return records[: _MAX_IMAGES.value or None]


def _datasets(restorer: Restorer) -> list[benchmarks.Benchmark]:
    if _DATASETS.value:
        try:
            return [benchmarks.get_benchmark(name) for name in _DATASETS.value]
        except ValueError as err:
            raise EvaluationError(str(err)) from err
    task = restorer.task
    if task is None or restorer.needs_sigma:
        raise EvaluationError("--datasets is required with --baseline")
    return [b for b in benchmarks.BENCHMARKS.values() if b.task == task]


def _restorers(argv_config) -> tuple[list[Restorer], pathlib.Path, ml_collections.ConfigDict]:
    """The model (if any) then the baseline (if any), the output folder and the data settings."""
    has_model = any(f.value for f in (_WORKDIR, _CHECKPOINT, _TASK, _BUNDLE))
    if not has_model and not _BASELINE.value:
        raise EvaluationError(
            "give a model (--workdir, --checkpoint, --bundle or --task) or --baseline "
            "input|ground_truth|bm3d"
        )
    restorers, data = [], {"root": _DATA_ROOT.value or "", "tfds_dir": ""}
    output_dir = pathlib.Path(_OUTPUT.value or f"eval/{_BASELINE.value}")
    if has_model:
        model = load_model(argv_config)
        cli.enable_compilation_cache(model.config.get("compilation_cache_dir"))
        logging.info("Evaluating %s (method %s)", model.name, model.config.method)
        restorers.append(restorer_from_model(model, _SELF_ENSEMBLE.value, _KNOWN_NOISE_LEVEL.value))
        data = {"root": _DATA_ROOT.value or model.config.data.root, "tfds_dir": ""}
        data["tfds_dir"] = model.config.data.get("tfds_dir", "")
        if not _OUTPUT.value:  # a run's own eval/ folder; eval/<name> for shipped weights
            run = pathlib.Path(_CHECKPOINT.value).parent.parent if _CHECKPOINT.value else None
            if _WORKDIR.value and not inference.is_bundle(pathlib.Path(_WORKDIR.value)):
                run = pathlib.Path(_WORKDIR.value)
            output_dir = run / "eval" if run else pathlib.Path("eval") / model.name
    if _BASELINE.value:
        try:
            restorers.append(scoring.baseline_restorer(_BASELINE.value))
        except ValueError as err:
            raise EvaluationError(str(err)) from None
    return restorers, output_dir, ml_collections.ConfigDict(data)


def _plans(restorer: Restorer, datasets: list[benchmarks.Benchmark]) -> list[tuple]:
    """(benchmark, sigma, metric names) for every set and noise level the restorer is scored on."""
    plans = []
    for benchmark in datasets:
        names = _METRICS.value or default_metrics(benchmark)
        check_metrics(names, benchmark)
        if restorer.needs_gt and not benchmark.has_gt:
            raise EvaluationError(
                f"{restorer.name} reads the ground truth and {benchmark.name} has none; "
                "evaluate a model that restores from LQ alone"
            )
        if restorer.needs_sigma and benchmark.task != "denoise":
            raise EvaluationError(
                f"{restorer.name} removes noise only; {benchmark.name} is a {benchmark.task} set"
            )
        # The clean images do not depend on the noise level: score them once.
        sigmas = [None]
        if benchmark.degradation == "awgn":
            sigmas = _sigmas() if restorer.name != "ground_truth" else _sigmas()[:1]
        plans += [(benchmark, sigma, names) for sigma in sigmas]
    return plans


def _evaluate_plan(restorer, plan, data_root, tfds_dir, sampler, output_dir) -> dict[str, Any]:
    """Scores one restorer on one (set, sigma); writes its CSV, grid and steps plot."""
    benchmark, sigma, names = plan
    records = _records(benchmark, sigma, data_root, tfds_dir)
    y_channel = (
        _Y_CHANNEL.value == "true" or (_Y_CHANNEL.value == "auto" and benchmark.task == "derain")
    ) and not benchmark.grey
    protocol = Protocol(y_channel, _CROP_BORDER.value, _QUANTIZE.value, data_root / "metrics")
    noisy = sigma is not None and restorer.name != "ground_truth"
    label = benchmark.name + (f" σ={sigma}" if noisy else "")
    stem = _stem(benchmark, sigma)
    rows, grid_outputs = evaluate_dataset(
        restorer, benchmark, records, names, protocol, sampler, _GRID_IMAGES.value, sigma
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    write_csv(output_dir / f"{stem}.csv", rows)
    if grid_outputs:  # --grid_images=0 writes no grid
        write_grid(output_dir / f"{stem}_grid.png", records, grid_outputs)
    result = {
        "model": restorer.name,
        "dataset": benchmark.name,
        "sigma": sigma,
        "label": label,
        "images": len(rows),
        "protocol": protocol.describe(),
        "means": {name: float(np.mean([row[name] for row in rows])) for name in names},
        "restore_seconds_per_image": float(np.mean([r["restore_seconds"] for r in rows])),
    }
    if restorer.takes_sampler and benchmark.has_gt and _STEPS_SWEEP.value:
        by_steps = psnr_by_steps(restorer, records, [int(s) for s in _STEPS_SWEEP.value], protocol)
        result["psnr_by_steps"] = by_steps
        write_steps_plot(output_dir / f"{stem}_steps.png", f"{restorer.name}: {label}", by_steps)
    logging.info("%s, %s: %s", restorer.name, label, result["means"])
    return result


def evaluate(argv_config: ml_collections.ConfigDict | None) -> pathlib.Path:
    """Runs the evaluation the flags ask for; returns the output folder."""
    _check_flags()
    restorers, output_dir, data_config = _restorers(argv_config)
    try:
        data_root = resolve_data_root(data_config)
    except FileNotFoundError as err:
        raise EvaluationError(str(err)) from err
    tfds_dir = pathlib.Path(
        _TFDS_DIR.value or data_config.tfds_dir or "~/.cache/restorect_jax/tfds"
    ).expanduser()
    try:  # a bad value is an error whatever the model; only flow models use it
        sampler = flow.sampler_from_flags(
            restorers[0].default_sampler or flow.SamplerSpec(), _SAMPLER.value, _STEPS.value
        )
    except ValueError as err:
        raise EvaluationError(str(err)) from None
    if not restorers[0].takes_sampler:
        sampler = None
    datasets = _datasets(restorers[0])
    plans = [(restorer, _plans(restorer, datasets)) for restorer in restorers]
    every_plan = [plan for _, restorer_plans in plans for plan in restorer_plans]
    _check_outputs(output_dir, every_plan)
    _check_crop_border(every_plan, data_root, tfds_dir)
    results = []
    try:
        for index, (restorer, restorer_plans) in enumerate(plans):
            folder = output_dir if index == 0 else output_dir / f"baseline_{_BASELINE.value}"
            for plan in restorer_plans:
                results.append(_evaluate_plan(restorer, plan, data_root, tfds_dir, sampler, folder))
    except KeyboardInterrupt as interrupt:  # Ctrl-C or SIGTERM: files written are whole
        code = signals.interrupt_exit_code(interrupt)
        raise EvaluationInterrupted(len(results), len(every_plan), code) from None
    _write_report(output_dir, restorers[0], sampler, results)
    return output_dir


def _write_report(output_dir, restorer: Restorer, sampler, results: list[dict]) -> None:
    report = {
        "model": restorer.name,
        "sampler": (sampler or restorer.default_sampler).describe()
        if restorer.takes_sampler
        else None,
        "self_ensemble": _SELF_ENSEMBLE.value,
        "known_noise_level": _KNOWN_NOISE_LEVEL.value,
        "command": " ".join(["python -m restorect_jax.evaluate", *sys.argv[1:]]),
        "results": results,
    }
    protocols = sorted({r["protocol"] for r in results})
    table = (
        f"# {restorer.name}\n\n`{report['command']}`\n\n{markdown_table(results)}\n\n"
        + "\n".join(f"- {p}" for p in protocols)
        + "\n"
    )
    overwrite = _OVERWRITE.value
    safe_files.write_text_new(
        output_dir / "results.json", json.dumps(report, indent=2), overwrite=overwrite
    )
    safe_files.write_text_new(output_dir / "results.md", table, overwrite=overwrite)
    print(table)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        evaluate(flags.FLAGS.config)
    except EvaluationError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except EvaluationInterrupted as interrupt:
        print(f"\n{interrupt}", file=sys.stderr)
        raise SystemExit(interrupt.exit_code) from None


def run() -> None:
    """The `restorect-evaluate` console command (`python -m restorect_jax.evaluate` is the same)."""
    cli.console_command(__name__, main)


if __name__ == "__main__":
    run()
