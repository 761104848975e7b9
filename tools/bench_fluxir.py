"""FLUX-IR benchmark: the base flow, the base after RL, and its 1- and 2-step students, one task.

Every row trains the LQ-conditioned TimeUNet of configs/fluxir_common.py (one size, one seed)
for the same `--steps` in all, split between the phases by the variant:
  base:             every step in the base phase;
  rl:               80% base, then 20% RL trajectory guidance;
  two_step_uniform: 60% base, 20% RL, 20% distillation into a 2-step student at t = 0.5;
  two_step_tstar:   the same at t*, found by tools/breakpoints.py on the `rl` row's model (run
                    here, its JSON written to tools/results/breakpoints/fluxir_<task>_rl.json);
  two_step_displacement: the same at the t* of the displacement cost (`--cost displacement`,
                    tools/results/breakpoints/fluxir_<task>_rl_displacement.json);
  one_step:         60% base, 20% RL, 20% distillation into a 1-step student.
The three students train the same base and RL phases: the later two start from the first's
checkpoint where distillation starts (resuming is bit-exact, so this equals training them again).
The base and RL rows are scored at every sampler of `--samplers`, the students at their own grid
(NFE 1 or 2), on the stored test images (the ones `evaluate` scores); then every row is timed
back to back (images/s at 256x256 in batches, seconds per 512x512 image). Writes `<out>.json`,
`<out>.md` (tools/report.py renders it into docs/RESULTS.md) and `<out>_nfe.png`.

CPU setting (about 1 hour per task on 2 cores, training included):
  RESTORECT_DATA_DIR=../shared/data python tools/bench_fluxir.py --task denoise
  RESTORECT_DATA_DIR=../shared/data python tools/bench_fluxir.py --task derain
Re-running resumes every run from its checkpoints; scores are cached per run, keyed by a hash
of its config, its checkpoint step and the package source.
"""

import dataclasses
import json
import logging
import pathlib
import subprocess
import sys
from collections.abc import Callable

import jax
import ml_collections
from absl import app, flags

# The checkout's root, for `configs` (the package itself may be installed elsewhere).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench_common import (
    ensure_trained,
    fork_run,
    param_count,
    plot_psnr_against_nfe,
    sampler_entry,
    seconds_per_512,
    test_records,
    throughput,
    with_steps,
    write_report,
)
from report import fluxir_table

from configs import fluxir_common, teacher_denoise, teacher_derain
from restorect_jax import flow, inference
from restorect_jax.metrics.registry import Protocol


@dataclasses.dataclass(frozen=True)
class Task:
    task_config: Callable[[], ml_collections.ConfigDict]  # configs/teacher_<task>.py's
    datasets: tuple[str, ...]
    sigma: int | None  # the stored AWGN level of the test sets (None: paired sets)
    protocol: Protocol
    search_set: str  # the breakpoint search's images (its --dataset)


TASKS = {
    "denoise": Task(teacher_denoise.get_config, ("CBSD68", "Kodak24"), 25, Protocol(), "CBSD68"),
    "derain": Task(
        teacher_derain.get_config,
        ("Rain100H-heldout",),
        None,
        Protocol(y_channel=True),
        "Rain100H-heldout",
    ),
}
# row name: (config variant, label, the student's breakpoint: a time, the breakpoint search's
# cost (flow.COSTS) or None)
ROWS = {
    "base": ("base", "base flow (all steps base)", None),
    "rl": ("rl", "base + RL (80% / 20%)", None),
    "two_step_uniform": ("two_step", "2-step student at t = 0.5", 0.5),
    "two_step_tstar": ("two_step", "2-step student at t* (the paper's secant cost)", "secant"),
    "two_step_displacement": (
        "two_step",
        "2-step student at t* (displacement cost)",
        "displacement",
    ),
    "one_step": ("one_step", "1-step student", None),
}

_TASK = flags.DEFINE_enum("task", "denoise", list(TASKS), "the task and its test sets")
_WORKDIR = flags.DEFINE_string("workdir", "runs/bench_fluxir", "where the runs train")
_STEPS = flags.DEFINE_integer("steps", 1500, "training steps of every row, all phases")
_SAMPLERS = flags.DEFINE_string(
    "samplers", "euler:1;euler:2;euler:4;euler:10", "';'-separated samplers of base and rl"
)
_THROUGHPUT_BATCH = flags.DEFINE_integer("throughput_batch", 4, "images per throughput call")
_THROUGHPUT_REPS = flags.DEFINE_integer("throughput_reps", 5, "timed throughput calls")
_OUT = flags.DEFINE_string(
    "out", None, "output prefix (default tools/results/bench_fluxir_<task>_cpu)"
)


def row_config(task: Task, row: str, breakpoint: float | None) -> ml_collections.ConfigDict:
    """The variant's config (configs/fluxir_<task>.py) with its phases split over `--steps`."""
    task_config = with_steps(task.task_config(), _STEPS.value, eval_every=0)  # scored here
    config = fluxir_common.fluxir_config(task_config, ROWS[row][0])
    if breakpoint is not None:
        config.fluxir.breakpoint = breakpoint
    if config.fluxir.student_steps:  # a checkpoint where distillation starts, to fork from
        config.train.checkpoint_every = (config.fluxir.base_steps + config.fluxir.rl_steps) // 4
    return config


def search_breakpoint(task: Task, workdir: pathlib.Path, cost: str) -> tuple[float, str]:
    """t* of the model in `workdir` by tools/breakpoints.py with `cost`, and the JSON it wrote."""
    suffix = "" if cost == "secant" else f"_{cost}"
    out = pathlib.Path("tools/results/breakpoints") / f"fluxir_{_TASK.value}_rl{suffix}"
    command = [sys.executable, str(pathlib.Path(__file__).parent / "breakpoints.py")]
    command += [f"--workdir={workdir}", f"--dataset={task.search_set}", f"--out={out}"]
    command += [f"--sigma={task.sigma or 0}", f"--cost={cost}"]
    subprocess.run(command, check=True)
    return json.loads(out.with_suffix(".json").read_text())["best_t"], str(out.with_suffix(".json"))


def bench_row(
    task: Task, row: str, workdir: pathlib.Path, records: dict
) -> tuple[dict, inference.LoadedModel]:
    """Params, FLOPs and cached scores of one trained run at each of its samplers."""
    model = inference.load_run(workdir)
    if not model.name.endswith(f"@{_STEPS.value}"):  # a run left by a bench of other --steps
        raise SystemExit(f"error: {workdir} holds {model.name}, not step {_STEPS.value}")
    settings = model.config.fluxir
    specs = (
        [model.method.default_sampler()]
        if settings.student_steps
        else [flow.parse_sampler(text) for text in _SAMPLERS.value.split(";") if text]
    )
    key_fields = {"datasets": task.datasets, "sigma": task.sigma}
    entry = {
        "label": ROWS[row][1],
        "workdir": str(workdir),
        "checkpoint": model.name,
        "params": param_count(model.params),
        "phases": {
            "base": settings.base_steps,
            "rl": settings.rl_steps,
            "distill": _STEPS.value - settings.base_steps - settings.rl_steps,
        },
        "by_sampler": dict(
            sampler_entry(model, spec, records, task.protocol, workdir, key_fields)
            for spec in specs
        ),
    }
    return entry, model


def gaps(report: dict) -> dict:
    """The answers the bench is for, in PSNR dB per test set: RL minus base at each sampler,
    and the 2-step students at each cost's t* minus at t = 0.5."""
    rows = report["rows"]

    def psnr(row: str, key: str) -> dict[str, float]:
        return {d: s["psnr"] for d, s in rows[row]["by_sampler"][key]["scores"].items()}

    base = rows["base"]["by_sampler"]
    rl_minus_base = {
        key: {d: p - psnr("base", key)[d] for d, p in psnr("rl", key).items()} for key in base
    }
    uniform = psnr("two_step_uniform", next(iter(rows["two_step_uniform"]["by_sampler"])))
    tstar_minus_uniform = {}
    for row in ("two_step_tstar", "two_step_displacement"):
        tstar = psnr(row, next(iter(rows[row]["by_sampler"])))
        tstar_minus_uniform[ROWS[row][2]] = {d: p - uniform[d] for d, p in tstar.items()}
    return {"rl_minus_base_db": rl_minus_base, "tstar_minus_uniform_db": tstar_minus_uniform}


def time_rows(report: dict, loaded: dict[str, inference.LoadedModel]) -> None:
    """Images/s at 256x256 and seconds per 512x512 image at each scored sampler."""
    for row, model in loaded.items():
        entry = report["rows"][row]
        entry["images_per_s"], entry["seconds_per_512"] = {}, {}
        for key in entry["by_sampler"]:
            spec = flow.parse_sampler(key)
            entry["images_per_s"][key] = throughput(
                model, _THROUGHPUT_BATCH.value, _THROUGHPUT_REPS.value, sampler=spec
            )
            entry["seconds_per_512"][key] = seconds_per_512(model, spec, _THROUGHPUT_REPS.value)


def train_rows(task: Task, root: pathlib.Path) -> tuple[dict, dict]:
    """Trains every row (the t* rows after the breakpoint searches on the rl row): their
    workdirs, and the searches' results by cost. The students share their base and RL phases: the
    later ones start from the first one's checkpoint where distillation starts."""
    workdirs = {row: root / row for row in ROWS}
    search, first_student = {}, None
    for row, (_, _, breakpoint) in ROWS.items():
        if breakpoint in flow.COSTS:
            best, path = search_breakpoint(task, workdirs["rl"], breakpoint)
            search[breakpoint] = {"best_t": best, "json": path}
            breakpoint = best
        config = row_config(task, row, breakpoint)
        if config.fluxir.student_steps:
            distill_start = config.fluxir.base_steps + config.fluxir.rl_steps
            if first_student:
                fork_run(workdirs[first_student], distill_start, workdirs[row])
            first_student = first_student or row
        ensure_trained(config, workdirs[row])
    return workdirs, search


def main(argv) -> None:
    del argv
    logging.getLogger().setLevel(logging.INFO)
    task = TASKS[_TASK.value]
    workdirs, search = train_rows(task, pathlib.Path(_WORKDIR.value) / _TASK.value)
    config = row_config(task, "base", None)
    records = test_records(config, list(task.datasets), task.sigma)
    report = {
        "command": f"RESTORECT_DATA_DIR=../shared/data python tools/bench_fluxir.py --task {_TASK.value}",
        "task": _TASK.value,
        "datasets": list(task.datasets),
        "sigma": task.sigma,
        "protocol": task.protocol.describe(),
        "setting": (
            f"every row {_STEPS.value} steps in all phases, batch {config.train.batch_size} x "
            f"{config.data.patch_size}^2 crops, seed {config.seed}; TimeUNet width "
            f"{config.model.width}, blocks {tuple(config.model.num_blocks)}, LQ concatenated; "
            f"RL {config.fluxir.rl.num_samples} trajectories per image; test sets at full "
            f"size; {jax.devices()[0].platform} x {jax.device_count()}"
        ),
        "breakpoint_search": search,
        "rows": {},
    }
    loaded = {}
    for row, workdir in workdirs.items():
        report["rows"][row], loaded[row] = bench_row(task, row, workdir, records)
    report.update(gaps(report))
    time_rows(report, loaded)
    out = pathlib.Path(_OUT.value or f"tools/results/bench_fluxir_{_TASK.value}_cpu")
    write_report(out, report, fluxir_table(report))
    plot_psnr_against_nfe(report, pathlib.Path(str(out) + "_nfe.png"))


if __name__ == "__main__":
    app.run(main)
