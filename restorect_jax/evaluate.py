"""Command line: scores a trained model, or the degraded input itself, on the benchmark test sets.

    python -m restorect_jax.evaluate --workdir runs/teacher_denoise --datasets CBSD68,Kodak24 \
        --sigma 25 --steps 4

Each image is padded (reflect) to the network stride, restored at full resolution (optionally
as the mean of the 8 dihedral transforms, `--self_ensemble`), cropped back, clipped to [0, 1] and
rounded to 8 bits as a saved PNG would be (`--noquantize` scores the float output as it is),
then scored.
Grey sets enter an RGB model as three equal channels and leave it as the channel mean.

Writes to `--output` (default `<workdir>/eval`, or `eval/<baseline>` for `--baseline`):
`<set>.csv` (per image), `results.json` and `results.md` (means per set, with the protocol),
`<set>_grid.png` (input, output, ground truth of the first images) and, for flow models,
`<set>_steps.png` (PSNR against ODE steps, `--steps_sweep`).

`--baseline input` scores the degraded input as the output (the "input" row of papers' tables);
`--baseline ground_truth` scores the clean images themselves (for no-reference metrics).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import pathlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import ml_collections
import numpy as np
import tqdm
from absl import app, flags, logging
from ml_collections import config_flags

from restorect_jax import inference, writers
from restorect_jax.config_lib import config_from_json
from restorect_jax.data import benchmarks
from restorect_jax.data.pipeline import DATA_DIR_ENV, resolve_data_root
from restorect_jax.metrics import registry

_WORKDIR = flags.DEFINE_string("workdir", None, "training workdir (config.json, checkpoints/)")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "a checkpoint step folder (<workdir>/checkpoints/<step>); default newest"
)
config_flags.DEFINE_config_file("config", None, "config file; default <workdir>/config.json")
_BASELINE = flags.DEFINE_enum(
    "baseline", None, ["input", "ground_truth"], "score the input (or GT) instead of a model"
)
_DATASETS = flags.DEFINE_list(
    "datasets", None, f"test sets ({', '.join(benchmarks.BENCHMARKS)}); default: the model's task"
)
_SIGMA = flags.DEFINE_list("sigma", ["25"], "AWGN levels of the synthetic-noise sets (15, 25, 50)")
_STEPS = flags.DEFINE_integer("steps", None, "ODE steps of flow models (default: their config)")
_STEPS_SWEEP = flags.DEFINE_list("steps_sweep", ["1", "2", "4", "8"], "ODE steps for the plot")
_SELF_ENSEMBLE = flags.DEFINE_bool("self_ensemble", False, "average the 8 dihedral transforms")
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


class EvaluationError(Exception):
    """A problem with the user's request; printed as one line, without a traceback."""


# --- what restores -------------------------------------------------------------------------


@dataclasses.dataclass
class Restorer:
    """Restores one (H, W, 3) float image; `needs_gt` models also read the ground truth."""

    name: str
    restore: Callable[[np.ndarray, np.ndarray | None, int | None], np.ndarray]
    stride: int = 1
    needs_gt: bool = False
    uses_flow: bool = False
    task: str | None = None
    clip_input: bool = True


def baseline_restorer(kind: str) -> Restorer:
    """The degraded input (`input`) or the clean image (`ground_truth`) as the output."""
    if kind == "input":
        return Restorer("input", lambda lq, gt, steps: lq, clip_input=False)
    return Restorer("ground_truth", lambda lq, gt, steps: gt, needs_gt=True)


def read_config(workdir: pathlib.Path, override: ml_collections.ConfigDict | None):
    """`--config` if given, else `<workdir>/config.json` (the run's own config)."""
    if override is not None:
        return override
    path = workdir / "config.json"
    if not path.is_file():
        raise EvaluationError(f"no config.json in {workdir}: pass --config with the run's config")
    return config_from_json(path.read_text())


def model_restorer(
    workdir: pathlib.Path | None,
    checkpoint: pathlib.Path | None,
    config_override: ml_collections.ConfigDict | None,
    self_ensemble: bool,
) -> Restorer:
    """A run's EMA params behind its method's jitted `predict` (8 dihedral passes if asked)."""
    try:
        model = inference.load_run(workdir, checkpoint, config_override)
    except inference.ModelLoadError as err:
        raise EvaluationError(str(err)) from err
    logging.info("Evaluating %s (method %s)", model.name, model.config.method)
    return restorer_from_model(model, self_ensemble)


def restorer_from_model(model: inference.LoadedModel, self_ensemble: bool = False) -> Restorer:
    """A loaded model (a run or a bundle) as a Restorer (8 dihedral passes if asked)."""

    def restore(lq: np.ndarray, gt: np.ndarray | None, steps: int | None) -> np.ndarray:
        variants = range(8) if self_ensemble else (0,)
        outputs = []
        for k in variants:
            gt_k = None if gt is None else inference.dihedral(gt, k)[None]
            out = model.predict(inference.dihedral(lq, k)[None], gt_k, steps)[0]
            outputs.append(inference.dihedral(out, k, inverse=True))
        return np.mean(outputs, axis=0)

    return Restorer(
        model.name,
        restore,
        stride=model.stride,
        needs_gt=model.method.privileged,
        uses_flow=model.method.uses_flow,
        task=model.task,
        clip_input=bool(model.config.data.clip),
    )


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 1) grey as three equal channels; RGB unchanged."""
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def run_restorer(
    restorer: Restorer, lq: np.ndarray, gt: np.ndarray | None, steps: int | None
) -> np.ndarray:
    """The restored (H, W, C) image: grey to RGB and back, padding to the stride, cropping."""
    height, width, channels = lq.shape
    if restorer.clip_input:
        lq = np.clip(lq, 0.0, 1.0)
    lq_in = inference.pad_to_multiple(_as_rgb(lq), restorer.stride)
    gt_in = None if gt is None else inference.pad_to_multiple(_as_rgb(gt), restorer.stride)
    out = restorer.restore(lq_in, gt_in, steps)[:height, :width]
    return out.mean(axis=-1, keepdims=True) if channels == 1 else out


# --- scoring ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How full-reference scores are computed, stated next to every table."""

    y_channel: bool
    crop_border: int
    quantize: bool
    params_dir: pathlib.Path  # NIQE / BRISQUE model files (`<data root>/metrics`)

    def describe(self) -> str:
        space = "Y (BT.601)" if self.y_channel else "RGB (grey sets: the grey channel)"
        rounding = "outputs clipped and rounded to 8 bits" if self.quantize else "float outputs"
        return f"PSNR/SSIM on {space}, crop border {self.crop_border}, {rounding}"


def default_metrics(benchmark: benchmarks.Benchmark) -> list[str]:
    """The metrics that apply to a set: full-reference with GT, no-reference without."""
    if benchmark.has_gt:
        names = ["psnr", "ssim", "ms_ssim", "lpips_alex"]
        return names if benchmark.grey else [*names, "ciede2000"]
    names = ["niqe", "brisque", "piqe"]
    return [*names, "uciqe", "uiqm"] if benchmark.task == "underwater" else names


def check_metrics(names: Sequence[str], benchmark: benchmarks.Benchmark) -> None:
    for name in names:
        if name not in registry.METRICS:
            raise EvaluationError(f"unknown metric {name!r}; known: {', '.join(registry.METRICS)}")
        metric = registry.METRICS[name]
        if metric.needs_gt and not benchmark.has_gt:
            raise EvaluationError(
                f"dataset {benchmark.name} has no ground truth, so it cannot be scored with "
                f"{name}; drop it from --metrics (no-reference metrics: "
                f"{', '.join(n for n, m in registry.METRICS.items() if not m.needs_gt)})"
            )
        if metric.needs_colour and benchmark.grey:
            raise EvaluationError(f"{name} needs colour images; {benchmark.name} is grey")


def score(
    output: np.ndarray, gt: np.ndarray | None, names: Sequence[str], protocol: Protocol
) -> dict[str, float]:
    if protocol.quantize:
        output = np.round(np.clip(output, 0.0, 1.0) * 255.0) / 255.0
    return {name: registry.METRICS[name].compute(output, gt, protocol) for name in names}


# --- one dataset -----------------------------------------------------------------------------


def evaluate_dataset(
    restorer: Restorer,
    benchmark: benchmarks.Benchmark,
    records: list[dict[str, Any]],
    metric_names: Sequence[str],
    protocol: Protocol,
    steps: int | None,
    grid_images: int = 4,
) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """Per-image rows (name, seconds, metrics) and the outputs of the first `grid_images`."""
    rows, grid_outputs = [], []
    for index, record in enumerate(tqdm.tqdm(records, desc=benchmark.name, unit="img")):
        start = time.perf_counter()
        output = run_restorer(restorer, record["lq"], record.get("gt"), steps)
        seconds = time.perf_counter() - start
        scores = score(output, record.get("gt"), metric_names, protocol)
        rows.append({"image": record["name"], "restore_seconds": seconds, **scores})
        if index < grid_images:
            grid_outputs.append(output)
    return rows, grid_outputs


def psnr_by_steps(
    restorer: Restorer, records: list[dict[str, Any]], sweep: Sequence[int], protocol: Protocol
) -> dict[int, float]:
    """Mean PSNR of a flow model's outputs for each ODE step count."""
    return {
        steps: float(
            np.mean(
                [
                    score(
                        run_restorer(restorer, r["lq"], r["gt"], steps), r["gt"], ["psnr"], protocol
                    )["psnr"]
                    for r in records
                ]
            )
        )
        for steps in sweep
    }


# --- outputs ---------------------------------------------------------------------------------


def write_csv(path: pathlib.Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_grid(path: pathlib.Path, records: list[dict[str, Any]], outputs: list[np.ndarray]):
    """Rows of input | output | ground truth (when there is one) for the first images."""
    rows = []
    for record, output in zip(records, outputs):
        row = [record["lq"], output] + ([record["gt"]] if "gt" in record else [])
        rows.append([_as_rgb(np.clip(image, 0.0, 1.0)) for image in row])
    writers.save_png(path, writers.image_grid(rows))


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
    figure.savefig(path, dpi=120)
    plt.close(figure)


def markdown_table(results: list[dict[str, Any]]) -> str:
    """One row per (set, sigma): the mean of every metric, the arrow saying which way is better."""
    names = []
    for result in results:
        names += [n for n in result["means"] if n not in names]
    header = " | ".join(
        f"{registry.METRICS[n].label} {'↑' if registry.METRICS[n].higher_is_better else '↓'}"
        for n in names
    )
    lines = [f"| set | images | {header} |", "|" + "---|" * (len(names) + 2)]
    for result in results:
        cells = [f"{result['means'][n]:.4f}" if n in result["means"] else "" for n in names]
        lines.append(f"| {result['label']} | {result['images']} | {' | '.join(cells)} |")
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def _sigmas() -> list[int]:
    try:
        sigmas = [int(s) for s in _SIGMA.value]
    except ValueError as err:
        raise EvaluationError(f"--sigma must be integers, got {_SIGMA.value}") from err
    return sigmas


def _datasets(restorer: Restorer) -> list[benchmarks.Benchmark]:
    if _DATASETS.value:
        try:
            return [benchmarks.get_benchmark(name) for name in _DATASETS.value]
        except ValueError as err:
            raise EvaluationError(str(err)) from err
    task = restorer.task
    if task is None:
        raise EvaluationError("--datasets is required with --baseline")
    return [b for b in benchmarks.BENCHMARKS.values() if b.task == task]


def evaluate(argv_config: ml_collections.ConfigDict | None) -> pathlib.Path:
    """Runs the evaluation the flags ask for; returns the output folder."""
    if (_WORKDIR.value or _CHECKPOINT.value) and _BASELINE.value:
        raise EvaluationError("give either --workdir/--checkpoint or --baseline, not both")
    if _BASELINE.value:
        restorer = baseline_restorer(_BASELINE.value)
        output_dir = pathlib.Path(_OUTPUT.value or f"eval/{_BASELINE.value}")
        data_config = ml_collections.ConfigDict({"root": _DATA_ROOT.value or "", "tfds_dir": ""})
    elif _WORKDIR.value or _CHECKPOINT.value:
        workdir = pathlib.Path(_WORKDIR.value) if _WORKDIR.value else None
        checkpoint = pathlib.Path(_CHECKPOINT.value) if _CHECKPOINT.value else None
        restorer = model_restorer(workdir, checkpoint, argv_config, _SELF_ENSEMBLE.value)
        base = workdir or checkpoint.parent.parent
        output_dir = pathlib.Path(_OUTPUT.value or base / "eval")
        data_config = read_config(base, argv_config).data
        data_config = ml_collections.ConfigDict(
            {"root": _DATA_ROOT.value or data_config.root, "tfds_dir": data_config.tfds_dir}
        )
    else:
        raise EvaluationError("give --workdir (or --checkpoint) or --baseline input|ground_truth")

    try:
        data_root = resolve_data_root(data_config)
    except FileNotFoundError as err:
        raise EvaluationError(str(err)) from err
    tfds_dir = pathlib.Path(
        _TFDS_DIR.value or data_config.tfds_dir or "~/.cache/restorect_jax/tfds"
    ).expanduser()
    datasets = _datasets(restorer)
    plans = []
    for benchmark in datasets:
        names = _METRICS.value or default_metrics(benchmark)
        check_metrics(names, benchmark)
        if restorer.needs_gt and not benchmark.has_gt:
            raise EvaluationError(
                f"{restorer.name} reads the ground truth (a privileged teacher) and "
                f"{benchmark.name} has none; evaluate a student instead"
            )
        # The clean images do not depend on the noise level: score them once.
        reads_input = restorer.name != "ground_truth"
        sigmas = [None]
        if benchmark.degradation == "awgn":
            sigmas = _sigmas() if reads_input else _sigmas()[:1]
        plans += [(benchmark, sigma, names) for sigma in sigmas]

    output_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for benchmark, sigma, names in plans:
        try:
            records = benchmarks.load_benchmark(benchmark.name, data_root, tfds_dir, sigma=sigma)
        except (FileNotFoundError, ValueError) as err:
            raise EvaluationError(str(err)) from err
        records = records[: _MAX_IMAGES.value or None]
        y_channel = (
            _Y_CHANNEL.value == "true"
            or (_Y_CHANNEL.value == "auto" and benchmark.task == "derain")
        ) and not benchmark.grey
        protocol = Protocol(y_channel, _CROP_BORDER.value, _QUANTIZE.value, data_root / "metrics")
        noisy = sigma is not None and restorer.name != "ground_truth"
        label = benchmark.name + (f" σ={sigma}" if noisy else "")
        stem = benchmark.name + (f"_sigma{sigma}" if sigma is not None else "")
        rows, grid_outputs = evaluate_dataset(
            restorer, benchmark, records, names, protocol, _STEPS.value, _GRID_IMAGES.value
        )
        write_csv(output_dir / f"{stem}.csv", rows)
        if grid_outputs:  # --grid_images=0 writes no grid
            write_grid(output_dir / f"{stem}_grid.png", records, grid_outputs)
        result = {
            "dataset": benchmark.name,
            "sigma": sigma,
            "label": label,
            "images": len(rows),
            "protocol": protocol.describe(),
            "means": {name: float(np.mean([row[name] for row in rows])) for name in names},
            "restore_seconds_per_image": float(np.mean([r["restore_seconds"] for r in rows])),
        }
        if restorer.uses_flow and benchmark.has_gt and _STEPS_SWEEP.value:
            by_steps = psnr_by_steps(
                restorer, records, [int(s) for s in _STEPS_SWEEP.value], protocol
            )
            result["psnr_by_steps"] = by_steps
            write_steps_plot(
                output_dir / f"{stem}_steps.png", f"{restorer.name}: {label}", by_steps
            )
        results.append(result)
        logging.info("%s: %s", label, result["means"])

    report = {
        "model": restorer.name,
        "steps": _STEPS.value,
        "self_ensemble": _SELF_ENSEMBLE.value,
        "command": " ".join(["python -m restorect_jax.evaluate", *sys.argv[1:]]),
        "results": results,
    }
    (output_dir / "results.json").write_text(json.dumps(report, indent=2))
    protocols = sorted({r["protocol"] for r in results})
    (output_dir / "results.md").write_text(
        f"# {restorer.name}\n\n`{report['command']}`\n\n{markdown_table(results)}\n\n"
        + "\n".join(f"- {p}" for p in protocols)
        + "\n"
    )
    print((output_dir / "results.md").read_text())
    return output_dir


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        evaluate(flags.FLAGS.config)
    except EvaluationError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    app.run(main)
