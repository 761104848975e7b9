"""SLKD benchmark: one compact student distilled from two teachers, against its ablations, the
same student trained alone, and Teacher A, on one task.

Trains (or resumes) in `--workdir/<task>/`: Teacher A (`configs/restorer_<task>.py`, teacher
size, its own schedule), Teacher B (`configs/slkd_autoencoder.py`, its own schedule, one run in
`--workdir/teacher_b` for every task), then at
`--steps` each: the student trained alone (`configs/restorer_<task>.py:student`), SLKD, SLKD with
DRL only, with IRL only, and with plain feature MSE (`configs/slkd_<task>.py:<variant>`), every
student of one size and seed. Scores the stored test images (the ones `evaluate` scores), then
times every trained row back to back (images/s at 256x256 in batches, seconds per 512x512 image).
Params and GFLOPs per 256x256 image (XLA cost analysis) are also given as fractions of Teacher
A's, and PSNR as the gap to Teacher A. Rows measured by other benches are copied in with their
source: the RestoRect student (for denoising tools/bench_distill.py; for deraining the bundled
model, a RestoRect student, from tools/bench_methods.py) and, for either task, IR-Flow and its
one-step baseline (tools/bench_methods.py; a TimeUNet, not this student).
Writes `<out>.json` and `<out>.md`.

CPU setting (teachers about 40 min each, students 10-30 min each on 2 cores):
  RESTORECT_DATA_DIR=../shared/data python tools/bench_slkd.py --task denoise
Re-running resumes every run from its checkpoints; scores are cached per run, keyed by a hash
of its config, its checkpoint step and the package source. `--rows` trains only some rows (to
train two at once in two processes); the report needs them all.
"""

import dataclasses
import json
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
    cache_key,
    cached,
    distill_rows,
    ensure_trained,
    param_count,
    score,
    seconds_per_512,
    test_records,
    throughput,
    with_steps,
    write_report,
)
from report import slkd_table

from configs import (
    restorer_denoise,
    restorer_derain,
    slkd_autoencoder,
    slkd_denoise,
    slkd_derain,
)
from restorect_jax import inference, scoring
from restorect_jax.metrics.registry import Protocol


@dataclasses.dataclass(frozen=True)
class Task:
    restorer_module: object  # configs/restorer_<task>.py: Teacher A and the student alone
    slkd_module: object  # configs/slkd_<task>.py
    datasets: tuple[str, ...]
    sigma: int | None  # the stored AWGN level of the test sets (None: paired sets)
    protocol: Protocol


TASKS = {
    "denoise": Task(restorer_denoise, slkd_denoise, ("CBSD68", "Kodak24"), 25, Protocol()),
    "derain": Task(
        restorer_derain, slkd_derain, ("Rain100H-heldout",), None, Protocol(y_channel=True)
    ),
}
TEACHERS = ("teacher_a", "teacher_b")
# row name: label; every row but teacher_b is scored (Teacher B restores nothing: x -> x)
LABELS = {
    "teacher_a": "Teacher A (teacher-size restorer, y -> x)",
    "teacher_b": "Teacher B (teacher-size clean-image autoencoder, x -> x)",
    "student": "student trained alone (L1)",
    "slkd": "SLKD (DRL + IRL, BRISQUE / PIQE features)",
    "drl": "SLKD, DRL only (KL + L_NC)",
    "irl": "SLKD, IRL only (L_ET)",
    "feature_mse": "SLKD with plain feature MSE",
}
IRFLOW_ROWS = {"irflow": "euler:4", "one_step": "one step"}  # rows of bench_methods' JSON

_TASK = flags.DEFINE_enum("task", "denoise", list(TASKS), "the task and its test sets")
_WORKDIR = flags.DEFINE_string("workdir", "runs/bench_slkd", "where the runs train")
_STEPS = flags.DEFINE_integer("steps", 1500, "training steps of every student row")
_ROWS = flags.DEFINE_list("rows", list(LABELS), "train only these rows (then stop)")
_DISTILL_JSON = flags.DEFINE_string(
    "distill_json", "tools/results/bench_distill_cpu.json", "denoise: the RestoRect rows' JSON"
)
_METHODS_JSON = flags.DEFINE_string(
    "methods_json",
    "tools/results/bench_methods_{task}_cpu.json",
    "the IR-Flow rows' JSON ('' to leave them out)",
)
_THROUGHPUT_BATCH = flags.DEFINE_integer("throughput_batch", 4, "images per throughput call")
_THROUGHPUT_REPS = flags.DEFINE_integer("throughput_reps", 5, "timed throughput calls")
_OUT = flags.DEFINE_string(
    "out", None, "output prefix (default tools/results/bench_slkd_<task>_cpu)"
)


def run_configs(
    task: Task, root: pathlib.Path
) -> dict[str, tuple[ml_collections.ConfigDict, pathlib.Path]]:
    """(config, workdir) of every row, the students pointed at this bench's teachers. Teacher
    B (clean CBSD432 photos, x -> x) serves every task: one run beside the tasks' folders."""
    workdirs = {row: root / row for row in LABELS}
    workdirs["teacher_b"] = root.parent / "teacher_b"
    configs = {
        "teacher_a": task.restorer_module.get_config("teacher"),
        "teacher_b": slkd_autoencoder.get_config(),
        "student": task.restorer_module.get_config("student"),
    }
    for variant in ("slkd", "drl", "irl", "feature_mse"):
        configs[variant] = config = task.slkd_module.get_config(variant)
        for teacher in config.frozen:
            config.frozen[teacher] = str(workdirs[teacher])
    for row, config in configs.items():
        if row not in TEACHERS:
            with_steps(config, _STEPS.value, eval_every=0)  # scored here, on the full test sets
    return {row: (configs[row], workdirs[row]) for row in LABELS}


def bench_row(
    task: Task, row: str, config, workdir: pathlib.Path, records: dict
) -> tuple[dict, inference.LoadedModel]:
    """Params, FLOPs and cached scores of one trained run."""
    model = inference.load_run(workdir)
    steps = config.train.num_steps
    if not model.name.endswith(f"@{steps}"):  # a run left by a bench of other --steps
        raise SystemExit(f"error: {workdir} holds {model.name}, not step {steps}")
    restorer = scoring.restorer_from_model(model)
    entry = {"label": LABELS[row], "workdir": str(workdir), "checkpoint": model.name}
    entry["params"] = param_count(model.params)
    entry["by_sampler"] = {
        DEFAULT: {
            "nfe": 1,
            "flops": model.flops(256, 256),
            "scores": cached(
                workdir / "bench" / "scores.json",
                cache_key(model, datasets=task.datasets, sigma=task.sigma),
                lambda: score(restorer, records, None, task.protocol),
            ),
        }
    }
    return entry, model


def irflow_rows(path: pathlib.Path) -> dict:
    """IR-Flow at 4 Euler steps and its one-step baseline, from bench_methods' JSON."""
    report = json.loads(path.read_text())
    rows = {}
    for name, sampler in IRFLOW_ROWS.items():
        entry = report["rows"][name]
        rows[name] = {
            "label": f"{entry['label']} [TimeUNet]",
            "source": f"{path}; {report['command']}",
            "params": entry["params"],
            "images_per_s": {DEFAULT: entry["images_per_s"][sampler]},
            "seconds_per_512": {DEFAULT: entry["seconds_per_512"][sampler]},
            "by_sampler": {DEFAULT: dict(entry["by_sampler"][sampler], sampler=sampler)},
        }
    return rows


def bundled_restorect_row(path: pathlib.Path) -> dict:
    """The bundled model's row of bench_methods' JSON, where the bundle is a RestoRect student
    (deraining: bench_distill has no deraining run)."""
    report = json.loads(path.read_text())
    entry = report["rows"]["bundle"]
    return {
        "restorect": {
            "label": f"RestoRect student: the {entry['label']} (its own run)",
            "source": f"{path}; {report['command']}",
            "params": entry["params"],
            "images_per_s": entry["images_per_s"],
            "seconds_per_512": entry["seconds_per_512"],
            "by_sampler": entry["by_sampler"],
        }
    }


def relative_to_teacher(report: dict) -> None:
    """Each row's params and FLOPs as fractions of Teacher A's, and its PSNR gap to Teacher A."""
    teacher = report["rows"]["teacher_a"]
    teacher_at = teacher["by_sampler"][DEFAULT]
    for entry in report["rows"].values():
        at = entry["by_sampler"][DEFAULT]
        entry["params_fraction"] = entry["params"] / teacher["params"]
        entry["flops_fraction"] = at["flops"] / teacher_at["flops"]
        entry["psnr_gap_db"] = {
            d: at["scores"][d]["psnr"] - teacher_at["scores"][d]["psnr"]
            for d in report["datasets"]
            if d in at["scores"]
        }


def time_rows(report: dict, loaded: dict[str, inference.LoadedModel]) -> None:
    """Images/s at 256x256 and seconds per 512x512 image, back to back in this process."""
    for row, model in loaded.items():
        entry = report["rows"][row]
        entry["images_per_s"] = {
            DEFAULT: throughput(model, _THROUGHPUT_BATCH.value, _THROUGHPUT_REPS.value)
        }
        entry["seconds_per_512"] = {DEFAULT: seconds_per_512(model, None, _THROUGHPUT_REPS.value)}


def main(argv) -> None:
    del argv
    logging.getLogger().setLevel(logging.INFO)
    unknown = sorted(set(_ROWS.value) - set(LABELS))
    if unknown:
        raise SystemExit(f"error: --rows: unknown rows {unknown}; choose from {list(LABELS)}")
    task = TASKS[_TASK.value]
    runs = run_configs(task, pathlib.Path(_WORKDIR.value) / _TASK.value)
    train_seconds = {row: ensure_trained(*runs[row]) for row in LABELS if row in _ROWS.value}
    if set(train_seconds) != set(LABELS):
        print(f"trained {sorted(train_seconds)}; run without --rows for the report")
        return
    config = runs["student"][0]
    records = test_records(config, list(task.datasets), task.sigma)
    report = {
        "command": f"RESTORECT_DATA_DIR=../shared/data python tools/bench_slkd.py --task {_TASK.value}",
        "task": _TASK.value,
        "datasets": list(task.datasets),
        "sigma": task.sigma,
        "protocol": task.protocol.describe(),
        "setting": (
            f"students {_STEPS.value} steps, teachers {runs['teacher_a'][0].train.num_steps} "
            f"(A) and {runs['teacher_b'][0].train.num_steps} (B), batch "
            f"{config.train.batch_size} x {config.data.patch_size}^2 crops, seed {config.seed}; "
            f"student RGFormer width {config.model.width}, blocks "
            f"{tuple(config.model.num_blocks)}; test sets at full size; "
            f"{jax.devices()[0].platform} x {jax.device_count()}"
        ),
        "teacher_b": {"workdir": str(runs["teacher_b"][1])},
        "rows": {},
    }
    loaded = {}
    for row, (row_config, workdir) in runs.items():
        if row == "teacher_b":
            continue
        report["rows"][row], loaded[row] = bench_row(task, row, row_config, workdir, records)
        report["rows"][row]["train_seconds_this_run"] = train_seconds[row]
    time_rows(report, loaded)
    if _TASK.value == "denoise" and _DISTILL_JSON.value:
        report["rows"].update(
            distill_rows(pathlib.Path(_DISTILL_JSON.value), task.datasets, task.sigma)
        )
    if _METHODS_JSON.value:
        methods_json = pathlib.Path(_METHODS_JSON.value.format(task=_TASK.value))
        if _TASK.value == "derain":
            report["rows"].update(bundled_restorect_row(methods_json))
        report["rows"].update(irflow_rows(methods_json))
    relative_to_teacher(report)
    out = pathlib.Path(_OUT.value or f"tools/results/bench_slkd_{_TASK.value}_cpu")
    write_report(out, report, slkd_table(report))


if __name__ == "__main__":
    app.run(main)
