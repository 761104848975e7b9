"""One command that turns a short GPU lease into trained denoisers: train, pack, evaluate.

    bash tools/device/run.sh                       # on the GPU machine (installs carried wheels)
    python tools/device/train_gpu.py --dry_run --data_root DIR --out DIR   # same path, tiny, CPU

Stages, each a subprocess, so that this orchestrator never holds the accelerator:
  1. plan: one step count for every run from the steps/s and start-up time measured on the last
     lease (flags), or, with `--bench`, from timing both train steps here first
     (`tools/bench_train.py`: steps/s, XLA FLOPs, TFLOP/s; two extra compiles);
  2. train the blind-denoise RestoRect teacher (`configs/teacher_denoise_blind.py`, AWGN sigma
     0-55 on CBSD432; init on the host CPU), then pack it: `<out>/teacher.tar` (config,
     metrics, EMA params). Meanwhile `main --compile_only` compiles both students' train steps
     into the persistent cache, against `teacher_shapes` (the teacher's config and initial
     params), so the students start without compiling;
  3. train two students of one architecture side by side, same steps, same data, and pack
     them: `distill=restorect` (lambda 0.02, the bundled recipe) and `distill=none` (the same
     student trained alone);
  4. evaluate the three runs on the test sets present under `--data_root` (AWGN sigma 25,
     `python -m restorect_jax.evaluate`, PSNR/SSIM on 8-bit RGB).
`<out>/results.json` (plan, bench, reached steps, wall times, scores) is rewritten after every
stage, and `<out>/train_log.txt` holds this log and every subprocess's output. A run still
going at its deadline gets SIGTERM, checkpoints at its next log step and stops: what it
reached is packed and reported as stopped early. `tools/device/unpack.py` turns a tar back
into a run folder that `evaluate`, `make_bundle.py` and students read.
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from typing import Any

import flax.serialization
import jax
import numpy as np
from absl import app, flags

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from restorect_jax import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
from restorect_jax import config_lib, methods
from restorect_jax import train as train_lib

_OUT = flags.DEFINE_string("out", os.environ.get("OUT") or "runs/gpu_out", "results folder")
_WORKDIR = flags.DEFINE_string("workdir", "runs/gpu", "where the runs train (emptied first)")
_DATA_ROOT = flags.DEFINE_string("data_root", ".devdata", "benchmark data (the carried folder)")
_BUDGET_S = flags.DEFINE_float("budget_s", 540.0, "wall-clock budget of the whole command")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "tiny sizes and steps, for a CPU check")
_BENCH = flags.DEFINE_bool("bench", False, "time both train steps first (two more compiles)")
# Measured on the H200 lease of 2026-11-29 (tools/results/gpu/lease1_results.json): 17.6 and
# 12.5 steps/s at 32 x 128^2; init and train-step compile took 75-95 s each there. Init now runs
# on the host CPU and the students' steps are compiled while the teacher trains.
_TEACHER_RATE = flags.DEFINE_float("teacher_rate", 17.6, "teacher steps/s, without --bench")
_STUDENT_RATE = flags.DEFINE_float("student_rate", 12.5, "student steps/s alone, without --bench")
_TEACHER_STARTUP_S = flags.DEFINE_float(
    "teacher_startup_s", 120.0, "teacher: start, host init and train-step compile, seconds"
)
_STUDENT_STARTUP_S = flags.DEFINE_float(
    "student_startup_s", 45.0, "students: start with their steps compiled ahead, seconds"
)
_COMPUTE_DTYPE = flags.DEFINE_enum(
    "compute_dtype", "float32", ["float32", "bfloat16"], "train.compute_dtype of every run"
)
_DATASETS = flags.DEFINE_list("datasets", ["CBSD68", "Kodak24"], "test sets (those present)")

TEACHER_CONFIG = "configs/teacher_denoise_blind.py"
STUDENT_CONFIG = "configs/restorect_denoise_blind.py"
STUDENTS = ("student_restorect", "student_none")
TEACHER_RUN = "teacher"  # the run names of the lease: the teacher, then the students
RUNS = (TEACHER_RUN, *STUDENTS)
PEAK_TFLOPS = 790.0  # H200 dense bf16 matmul, measured on this workplace's machines

# Runs prepare their validation set even without validating: CBSD68 does not travel, Kodak24 does.
COMMON = {"data.val_dir": "denoise/test/Kodak24", "train.keep_checkpoints": 1}
# GPU scale: 128x128 crops, batch 32 (the CPU bundles used 4 x 48x48), the configs' models.
GPU_SETTINGS = {
    "data.patch_size": 128,
    "train.batch_size": 32,
    "train.log_every": 50,
    "data.prefetch": 8,  # grain threads; worker processes are not needed at this batch
}
DRY_SETTINGS = {
    "data.patch_size": 16,
    "train.batch_size": 8,
    "train.log_every": 1,
}
DRY_TEACHER = {"model.num_blocks": (1, 1, 1, 1), "model.width": 8, "model.prior_features": 8}
DRY_STUDENT = {"model.num_blocks": (1, 1, 1, 1)}
STUDENT_SETTINGS = {"restorect.loss.flex": 0.02}
EVAL_RESERVE_S = 75.0


class Log:
    """Writes this orchestrator's lines, stamped with its elapsed time, to stdout and a file."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def write(self, text: str) -> None:
        line = f"[{self.elapsed():7.1f}s] {text}"
        print(line, flush=True)
        with self.path.open("a") as handle:
            handle.write(line + "\n")


def flag_value(value: Any) -> str:
    """A config value as command-line text that ml_collections parses back (tuples too)."""
    if isinstance(value, tuple):
        return "(" + ",".join(str(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


def run_settings(kind: str, steps: int, teacher: str = "teacher") -> dict[str, Any]:
    """Config overrides of one run: scale, steps and schedule, and a student's distillation."""
    settings = {**COMMON, **(DRY_SETTINGS if _DRY_RUN.value else GPU_SETTINGS)}
    settings["train.compute_dtype"] = _COMPUTE_DTYPE.value
    settings.update(
        {
            "train.num_steps": steps,
            "train.warmup_steps": max(1, min(100, steps // 20)),
            "train.eval_every": 0,  # the evaluation stage scores every run
            "train.checkpoint_every": max(1, steps // 4),
        }
    )
    if kind == TEACHER_RUN:
        return {**settings, **(DRY_TEACHER if _DRY_RUN.value else {})}
    settings.update(STUDENT_SETTINGS)
    settings.update(DRY_STUDENT if _DRY_RUN.value else {})
    settings["restorect.distill"] = kind.removeprefix("student_")
    settings["frozen.teacher"] = str(run_dir(teacher))
    settings["restorect.phase1_steps"] = max(1, steps // 10)
    return settings


def run_dir(name: str) -> pathlib.Path:
    return pathlib.Path(_WORKDIR.value).resolve() / name


def child_env(memory_fraction: float) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env["RESTORECT_DATA_DIR"] = str(pathlib.Path(_DATA_ROOT.value).resolve())
    env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{memory_fraction:.2f}"
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("JAX_THREEFRY_PARTITIONABLE", "0")
    return env


def start(log: Log, name: str, args: list[str], memory_fraction: float) -> subprocess.Popen:
    """Starts `python args...` in the repository; its output goes to `<out>/<name>.out`."""
    log.write(f"start {name}: {' '.join(args)}")
    with (pathlib.Path(_OUT.value) / f"{name}.out").open("w") as output:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO,
            env=child_env(memory_fraction),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait(
    log: Log, name: str, process: subprocess.Popen, deadline: float, grace_s: float = 90.0
) -> dict[str, Any]:
    """Waits until `deadline` (log clock), then SIGTERM, then SIGKILL `grace_s` later.

    Moves the process's output into the log. Returns its exit code and whether it was stopped.
    """
    stopped_early = False
    try:
        process.wait(timeout=max(deadline - log.elapsed(), 1.0))
    except subprocess.TimeoutExpired:
        log.write(f"{name}: deadline reached, SIGTERM (it checkpoints at its next log step)")
        stopped_early = True
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.write(f"{name}: exit code {process.returncode}")
    output = pathlib.Path(_OUT.value) / f"{name}.out"
    with log.path.open("a") as handle:
        handle.write(f"----- {name} output -----\n{output.read_text()}----- end {name} -----\n")
    output.unlink()
    return {"exit_code": process.returncode, "stopped_early": stopped_early}


def bench(log: Log, name: str, config: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Times one config's train step at `settings` (`tools/bench_train.py`); its result row."""
    out = run_dir(f"bench_{name}")
    args = ["tools/bench_train.py", f"--configs={config}", f"--out={out}", "--nopipeline"]
    args += [f"--override={key}={flag_value(value)}" for key, value in settings.items()]
    args += [f"--steps={2 if _DRY_RUN.value else 10}", f"--peak_tflops={PEAK_TFLOPS}"]
    status = wait(log, f"bench_{name}", start(log, f"bench_{name}", args, 0.9), log.elapsed() + 300)
    if status["exit_code"] != 0:
        raise RuntimeError(f"bench of {name} failed (exit {status['exit_code']}); see the log")
    report = json.loads(out.with_suffix(".json").read_text())
    log.write(f"bench {name}: {json.dumps(report['results'][0])}")
    return {"machine": report["machine"], **report["results"][0]}


def plan(seconds: float, rates: dict[str, float]) -> tuple[int, float]:
    """Steps for every run, the same for all, and the teacher's share of `seconds`.

    The teacher costs `--teacher_startup_s` plus its steps at its rate; the students, started
    with compiled steps, `--student_startup_s` plus theirs at 70% of their solo rate (they
    share the device). 10% of the time is kept spare.
    """
    if _DRY_RUN.value:
        return 4, seconds / 2
    per_step = 1 / rates["teacher"] + 1 / (0.7 * rates["student"])
    startup = _TEACHER_STARTUP_S.value + _STUDENT_STARTUP_S.value
    steps = int(0.9 * (seconds - startup) / per_step) // 50 * 50
    if steps < 100:
        raise RuntimeError(f"{seconds:.0f}s leave too little time to train (--budget_s)")
    return steps, _TEACHER_STARTUP_S.value + steps / rates["teacher"] / 0.9


def main_process(
    log: Log,
    name: str,
    config: str,
    settings: dict[str, Any],
    memory: float,
    compile_only: bool = False,
) -> subprocess.Popen:
    """Starts `restorect_jax.main` for run `name` with `settings` as config overrides.

    `compile_only` only compiles its programs (`--compile_only`), logged as `<name>_compile`.
    """
    args = ["-m", "restorect_jax.main", f"--config={config}", f"--workdir={run_dir(name)}"]
    args += [f"--config.{key}={flag_value(value)}" for key, value in settings.items()]
    if compile_only:
        return start(log, f"{name}_compile", [*args, "--compile_only"], memory)
    return start(log, name, args, memory)


def finish(log: Log, results: dict[str, Any], name: str, status: dict[str, Any]) -> None:
    """Records run `name`'s end and packs it; raises unless it left a checkpoint."""
    results["runs"][name].update(status)
    if status["exit_code"] not in (0, 143) or not (run_dir(name) / "checkpoints").is_dir():
        raise RuntimeError(f"{name} failed (exit {status['exit_code']}); see the log")
    results["runs"][name].update(pack(log, name))


def measured_rates(log: Log, results: dict[str, Any]) -> dict[str, float]:
    """Steps/s of teacher and student: `--bench` times them here, else the flags' values."""
    rates = {"teacher": _TEACHER_RATE.value, "student": _STUDENT_RATE.value}
    if not _BENCH.value:
        return rates
    teacher = bench(log, "teacher", TEACHER_CONFIG, run_settings("teacher", 1000))
    results["bench"] = {"teacher": teacher}
    rates["teacher"] = teacher["model_steps_per_sec"]
    return rates


def write_teacher_shapes(log: Log, steps: int) -> str:
    """A run folder `teacher_shapes`: the teacher's config and freshly initialised params.

    It is what compiling a student needs of its teacher (the shapes of its params, which enter
    the step as an argument), ready before the teacher has trained.
    """
    config = config_lib.load_config_file(REPO / TEACHER_CONFIG)
    overrides = run_settings("teacher", steps).items()
    config_lib.apply_overrides(config, [f"{key}={flag_value(value)}" for key, value in overrides])
    method = methods.get_method(config.method)(config)
    params = jax.jit(method.init_params)(jax.random.PRNGKey(0), train_lib.example_batch())
    folder = run_dir("teacher_shapes")
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(config.to_json_best_effort(indent=2))
    checkpoint_lib.save_params(folder / "checkpoints", 0, params, {})
    log.write(f"wrote {folder} for the students' compiles")
    return folder.name


def train_teacher(log: Log, results: dict[str, Any]) -> dict[str, subprocess.Popen]:
    """Trains and packs the teacher; meanwhile compiles the students' steps (returned)."""
    rates = measured_rates(log, results)
    steps, seconds = plan(_BUDGET_S.value - EVAL_RESERVE_S - log.elapsed(), rates)
    results["plan"] = {"steps": steps, "rates": rates, "teacher_seconds": round(seconds)}
    log.write(f"plan: {steps} steps per run, teacher deadline in {seconds:.0f}s")
    started = log.elapsed()
    settings = run_settings("teacher", steps)
    process = main_process(log, "teacher", TEACHER_CONFIG, settings, 0.5)
    shapes = write_teacher_shapes(log, steps)
    compiles = {
        name: main_process(
            log, name, STUDENT_CONFIG, run_settings(name, steps, shapes), 0.2, compile_only=True
        )
        for name in STUDENTS
    }
    results["runs"] = {"teacher": {"planned_steps": steps}}
    finish(log, results, "teacher", wait(log, "teacher", process, started + seconds))
    results["runs"]["teacher"]["wall_s"] = round(log.elapsed() - started, 1)
    return compiles


def train_students(
    log: Log, results: dict[str, Any], compiles: dict[str, subprocess.Popen]
) -> None:
    """Waits for the students' compiles, then trains both side by side and packs them."""
    if _BENCH.value:
        settings = run_settings("student_restorect", 1000)
        results["bench"]["student"] = bench(log, "student", STUDENT_CONFIG, settings)
    for name, process in compiles.items():
        status = wait(log, f"{name}_compile", process, log.elapsed() + 240, grace_s=5)
        results["runs"].setdefault(name, {})["compile_exit_code"] = status["exit_code"]
    steps = results["plan"]["steps"]
    started = log.elapsed()
    processes = {
        name: main_process(log, name, STUDENT_CONFIG, run_settings(name, steps), 0.4)
        for name in STUDENTS
    }
    deadline = _BUDGET_S.value - EVAL_RESERVE_S
    for name, process in processes.items():
        results["runs"][name]["planned_steps"] = steps
        finish(log, results, name, wait(log, name, process, deadline))
        results["runs"][name]["wall_s"] = round(log.elapsed() - started, 1)


def evaluate(log: Log, name: str) -> subprocess.Popen:
    """Starts `restorect_jax.evaluate` of run `name` at sigma 25 on the sets present."""
    root = pathlib.Path(_DATA_ROOT.value).resolve()
    present = [d for d in _DATASETS.value if (root / "denoise" / "test" / d).is_dir()]
    args = ["-m", "restorect_jax.evaluate", f"--workdir={run_dir(name)}", "--sigma=25"]
    args += [f"--datasets={','.join(present)}", "--metrics=psnr,ssim", "--steps_sweep=4"]
    args += [f"--data_root={root}", f"--output={run_dir(name) / 'eval'}", "--grid_images=0"]
    return start(log, f"eval_{name}", args, 0.25)


def pack(log: Log, name: str) -> dict[str, Any]:
    """`<out>/<name>.tar`: config.json, metrics.jsonl and the EMA params (msgpack)."""
    workdir = run_dir(name)
    step, state = checkpoint_lib.load_state(workdir / "checkpoints")
    params = jax.tree.map(np.asarray, {"step": step, "ema_params": state["ema_params"]})
    (workdir / "ema_params.msgpack").write_bytes(flax.serialization.msgpack_serialize(params))
    tar_path = pathlib.Path(_OUT.value) / f"{name}.tar"
    with tarfile.open(tar_path, "w") as tar:
        for member in ("config.json", "metrics.jsonl", "ema_params.msgpack"):
            if (workdir / member).is_file():
                tar.add(workdir / member, arcname=member)
    log.write(f"packed {name} at step {step}: {tar_path.stat().st_size / 1e6:.1f} MB")
    return {"step": step}


def evaluate_all(log: Log, results: dict[str, Any]) -> None:
    """Scores every run at once (they share the device); a late one is killed, not waited for."""
    processes = {name: evaluate(log, name) for name in RUNS}
    for name, process in processes.items():
        status = wait(log, f"eval_{name}", process, _BUDGET_S.value + 20, grace_s=5)
        scores = run_dir(name) / "eval" / "results.json"
        results["runs"][name]["eval_exit_code"] = status["exit_code"]
        results["runs"][name]["eval"] = json.loads(scores.read_text()) if scores.is_file() else None


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    jax.config.update("jax_platforms", "cpu")  # this process only reads checkpoints
    out = pathlib.Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "train_log.txt")
    results: dict[str, Any] = {"dry_run": _DRY_RUN.value, "budget_s": _BUDGET_S.value}

    def save_results() -> None:  # after every stage: a killed command still reports
        results["wall_s"] = round(log.elapsed(), 1)
        (out / "results.json").write_text(json.dumps(results, indent=2))

    if run_dir("").exists():
        shutil.rmtree(run_dir(""))  # a fresh start: the steps are planned for this lease
    try:
        compiles = train_teacher(log, results)
        save_results()
        train_students(log, results, compiles)
        save_results()
        evaluate_all(log, results)
    finally:
        save_results()
        log.write(f"results in {out / 'results.json'}")


if __name__ == "__main__":
    app.run(main)
