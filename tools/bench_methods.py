"""Method benchmark: IR-Flow against the same network trained as a one-step restorer, one task.

Every row trains the TimeUNet of configs/irflow_common.py (one size, one seed) for the same
`--steps` on the task's data, then restores the stored test images (the ones `evaluate`
scores). Rows:
  irflow:          IR-Flow, cumulative velocity, multi-step consistency with gradients;
  one_step:        the same network trained at t = 1 only: a one-step residual restorer;
  irflow_nograd:   IR-Flow with the public code's rollout under stop_gradient (denoise only);
  irflow_velocity: IR-Flow with the plain rectified-flow target y - x (denoise only);
  bundle:          the task's bundled model (restorect_jax/weights/<task>/), the model an IR-Flow
                   run must beat at equal or lower seconds per 512x512 image to replace it;
  and, for denoising, the RestoRect student and the student trained alone, read from
  `--distill_json` (tools/bench_distill.py: the same steps, batch and crops).
IR-Flow is scored at every sampler of `--samplers` (uniform grids and the public non-uniform
ones), the ablations at `--ablation_samplers`. The table gives NFE (network evaluations per
image), params, GFLOPs per 256x256 image at that sampler (XLA cost analysis), images/s at
256x256 (batch / median call time after warm-up), seconds per 512x512 image (batch 1, median
after warm-up) and PSNR/SSIM per test set. Denoising adds out-of-distribution scores for
IR-Flow, the baseline and the bundle: CBSD68 at `--ood_sigmas` (the rows trained at sigma 25;
the bundle is blind). Writes `<out>.json`, `<out>.md` and `<out>_nfe.png`.

CPU setting (about 1.5 hours per task on 2 cores, training included):
  RESTORECT_DATA_DIR=../shared/data python tools/bench_methods.py --task denoise
  RESTORECT_DATA_DIR=../shared/data python tools/bench_methods.py --task derain
Re-running resumes every run from its checkpoints; scores are cached per run, keyed by a hash
of its config, its checkpoint step and the package source.
"""

import dataclasses
import logging
import pathlib
import sys

import jax
import ml_collections
from absl import app, flags

# The checkout's root, for `configs` (the package itself may be installed elsewhere).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench_common import (
    DEFAULT,
    ONE_STEP,
    cache_key,
    cached,
    distill_rows,
    ensure_trained,
    param_count,
    plot_psnr_against_nfe,
    sampler_entry,
    score,
    seconds_per_512,
    test_records,
    throughput,
    with_steps,
    write_report,
)
from report import methods_table

from configs import irflow_denoise, irflow_derain
from restorect_jax import flow, inference, scoring
from restorect_jax.metrics.registry import Protocol


@dataclasses.dataclass(frozen=True)
class Task:
    config_module: object
    datasets: tuple[str, ...]
    sigma: int | None  # the stored AWGN level of the test sets (None: paired sets)
    protocol: Protocol
    rows: tuple[str, ...]


TASKS = {
    "denoise": Task(
        irflow_denoise,
        ("CBSD68", "Kodak24"),
        25,
        Protocol(),
        ("irflow", "one_step", "irflow_nograd", "irflow_velocity"),
    ),
    "derain": Task(
        irflow_derain, ("Rain100H-heldout",), None, Protocol(y_channel=True), ("irflow", "one_step")
    ),
}
# row name: (config variant, label, main row: scored at --samplers and out of distribution;
# otherwise an ablation, scored at --ablation_samplers and in distribution only)
ROWS = {
    "irflow": ("cumulative", "IR-Flow (cumulative G, MSC with gradients)", True),
    "one_step": ("one_step", "same network, t = 1 only (one-step baseline)", False),
    "irflow_nograd": ("nograd", "IR-Flow, MSC under stop_gradient (public code)", False),
    "irflow_velocity": ("velocity", "IR-Flow, plain RF target y - x", False),
}

_TASK = flags.DEFINE_enum("task", "denoise", list(TASKS), "the task and its test sets")
_WORKDIR = flags.DEFINE_string("workdir", "runs/bench_methods", "where the runs train")
_STEPS = flags.DEFINE_integer("steps", 1500, "training steps of every row")
_SAMPLERS = flags.DEFINE_string(
    "samplers",
    "euler:1;euler:2;euler:4;euler:10;euler:1,0.2,0;euler:1,0.2,0.1,0;euler:1,0.5,0.25,0.05,0",
    "';'-separated samplers (flow.parse_sampler) IR-Flow is scored at",
)
_ABLATION_SAMPLERS = flags.DEFINE_string(
    "ablation_samplers",
    "euler:1;euler:2;euler:4",
    "';'-separated samplers of the ablation rows (nograd, velocity)",
)
_OOD_SIGMAS = flags.DEFINE_list("ood_sigmas", ["15", "50"], "denoise: other stored AWGN levels")
_OOD_SAMPLERS = flags.DEFINE_string(
    "ood_samplers", "euler:1;euler:2;euler:4", "';'-separated samplers of the OOD scores"
)
_DISTILL_JSON = flags.DEFINE_string(
    "distill_json", "tools/results/bench_distill_cpu.json", "denoise: the RestoRect rows' JSON"
)
_THROUGHPUT_BATCH = flags.DEFINE_integer("throughput_batch", 4, "images per throughput call")
_THROUGHPUT_REPS = flags.DEFINE_integer("throughput_reps", 5, "timed throughput calls")
_OUT = flags.DEFINE_string(
    "out", None, "output prefix (default tools/results/bench_methods_<task>_cpu)"
)


def samplers(text: str) -> list[flow.SamplerSpec]:
    return [flow.parse_sampler(part) for part in text.split(";") if part]


def row_config(task: Task, row: str) -> ml_collections.ConfigDict:
    return with_steps(task.config_module.get_config(ROWS[row][0]), _STEPS.value)


def bench_row(
    task: Task, row: str, workdir: pathlib.Path, records: dict, ood_records: dict
) -> tuple[dict, inference.LoadedModel]:
    """Params, FLOPs and cached scores of one trained run at each sampler."""
    model = inference.load_run(workdir)
    if not model.name.endswith(f"@{_STEPS.value}"):  # a run left by a bench of other --steps
        raise SystemExit(f"error: {workdir} holds {model.name}, not step {_STEPS.value}")
    restorer = scoring.restorer_from_model(model)
    texts = _SAMPLERS.value if ROWS[row][2] else _ABLATION_SAMPLERS.value
    specs = samplers(texts) if model.takes_sampler else [None]
    entry = {"label": ROWS[row][1], "workdir": str(workdir), "checkpoint": model.name}
    entry["params"] = param_count(model.params)
    key_fields = {"datasets": task.datasets, "sigma": task.sigma}
    entry["by_sampler"] = dict(
        sampler_entry(model, spec, records, task.protocol, workdir, key_fields) for spec in specs
    )
    entry["ood"] = {}
    ood_specs = samplers(_OOD_SAMPLERS.value) if model.takes_sampler else [None]
    for sigma, by_set in ood_records.items() if ROWS[row][2] or not model.takes_sampler else ():
        entry["ood"][sigma] = {}
        for spec in ood_specs:
            key = spec.describe() if spec else ONE_STEP
            entry["ood"][sigma][key] = cached(
                workdir / "bench" / f"ood_sigma{sigma}_{key.replace(':', '_')}.json",
                cache_key(model, sigma=sigma, sampler=key, datasets=list(by_set)),
                lambda spec=spec, by_set=by_set: score(restorer, by_set, spec, task.protocol),
            )
    return entry, model


def bundle_row(task: Task, records: dict, ood_records: dict) -> tuple[dict, inference.LoadedModel]:
    """The task's bundled model (restorect_jax/weights/<task>/) at its default sampler."""
    model = inference.load_model(task=_TASK.value)
    restorer = scoring.restorer_from_model(model)
    folder = inference.WEIGHTS_DIR / _TASK.value
    key = dict(cache_key(model, datasets=task.datasets, sigma=task.sigma), bundle=_TASK.value)
    bench_folder = pathlib.Path(_WORKDIR.value) / _TASK.value / "bundle"
    label = f"bundled model ({model.name}"
    if model.takes_sampler:
        label += f", {model.method.default_sampler().describe()} in its latent flow"
    entry = {
        "label": label + ")",
        "workdir": str(folder),
        "params": param_count(model.params),
        "by_sampler": {
            DEFAULT: {
                "nfe": 1,
                "flops": model.flops(256, 256),
                "scores": cached(
                    bench_folder / "scores.json",
                    key,
                    lambda: score(restorer, records, None, task.protocol),
                ),
            }
        },
        "ood": {
            sigma: {
                DEFAULT: cached(
                    bench_folder / f"ood_sigma{sigma}.json",
                    dict(key, sigma=sigma),
                    lambda by_set=by_set: score(restorer, by_set, None, task.protocol),
                )
            }
            for sigma, by_set in ood_records.items()
        },
    }
    return entry, model


def gaps(report: dict) -> dict:
    """IR-Flow's PSNR minus the one-step baseline's, per sampler and test set."""
    rows = report["rows"]
    baseline = rows["one_step"]["by_sampler"][ONE_STEP]["scores"]
    return {
        key: {d: at["scores"][d]["psnr"] - baseline[d]["psnr"] for d in report["datasets"]}
        for key, at in rows["irflow"]["by_sampler"].items()
    }


def main(argv) -> None:
    del argv
    logging.getLogger().setLevel(logging.INFO)
    task = TASKS[_TASK.value]
    runs = {
        row: (row_config(task, row), pathlib.Path(_WORKDIR.value) / _TASK.value / ROWS[row][0])
        for row in task.rows
    }
    train_seconds = {
        row: ensure_trained(config, workdir) for row, (config, workdir) in runs.items()
    }
    config = runs["irflow"][0]
    records = test_records(config, list(task.datasets), task.sigma)
    ood = {}
    if task.sigma is not None:
        ood = {s: test_records(config, list(task.datasets[:1]), int(s)) for s in _OOD_SIGMAS.value}
    report = {
        "command": f"RESTORECT_DATA_DIR=../shared/data python tools/bench_methods.py --task {_TASK.value}",
        "task": _TASK.value,
        "datasets": list(task.datasets),
        "sigma": task.sigma,
        "protocol": task.protocol.describe(),
        "setting": (
            f"every row {_STEPS.value} steps, batch {config.train.batch_size} x "
            f"{config.data.patch_size}^2 crops, seed {config.seed}; TimeUNet "
            f"width {config.model.width}, blocks {tuple(config.model.num_blocks)}; test sets at "
            f"full size; {jax.devices()[0].platform} x {jax.device_count()}"
        ),
        "rows": {},
        "ood": {},
    }
    loaded = {}
    for row, (_, workdir) in runs.items():
        entry, loaded[row] = bench_row(task, row, workdir, records, ood)
        entry["train_seconds_this_run"] = train_seconds[row]
        report["rows"][row] = entry
    report["rows"]["bundle"], loaded["bundle"] = bundle_row(task, records, ood)
    for row, entry in report["rows"].items():
        for sigma, by_sampler in entry.pop("ood").items():
            report["ood"].setdefault(sigma, {})[row] = by_sampler
    report["gap_to_one_step_db"] = gaps(report)
    # Throughput last, back to back in this process, so every row is timed alike.
    for row, model in loaded.items():
        entry = report["rows"][row]
        entry["images_per_s"], entry["seconds_per_512"] = {}, {}
        for key in entry["by_sampler"]:
            spec = None if key in (ONE_STEP, DEFAULT) else flow.parse_sampler(key)
            entry["images_per_s"][key] = throughput(
                model, _THROUGHPUT_BATCH.value, _THROUGHPUT_REPS.value, sampler=spec
            )
            entry["seconds_per_512"][key] = seconds_per_512(model, spec, _THROUGHPUT_REPS.value)
    if _TASK.value == "denoise" and _DISTILL_JSON.value:
        report["rows"].update(
            distill_rows(pathlib.Path(_DISTILL_JSON.value), task.datasets, task.sigma)
        )
    out = pathlib.Path(_OUT.value or f"tools/results/bench_methods_{_TASK.value}_cpu")
    write_report(out, report, methods_table(report))
    plot_psnr_against_nfe(report, pathlib.Path(str(out) + "_nfe.png"))


if __name__ == "__main__":
    app.run(main)
