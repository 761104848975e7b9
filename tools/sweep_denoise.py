"""The denoiser architecture sweep (issue 25): every candidate trained for the same CPU time.

  RESTORECT_DATA_DIR=../shared/data python tools/sweep_denoise.py --cpu_minutes 30 \
      --workdir runs/sweep --out tools/results/sweep_denoise_cpu

For each candidate of `configs/denoise_sweep.py`, in subprocesses at low priority:
  1. calibrate: a 200-step run gives its CPU seconds per step (process user + system time,
     every thread, data pipeline included) from `metrics.jsonl` between steps 50 and 200;
  2. train: `train.num_steps = cpu_minutes * 60 / (CPU seconds per step)`, so the cosine
     schedule ends when the budget does, validating on held-out CBSD432 crops;
  3. score: `python -m restorect_jax.evaluate` on CBSD68 at sigma 25 (stored noise, clipped,
     RGB, 8-bit);
then, in this process: parameters, multiply-adds per pixel (XLA's FLOPs of a 512x512 restore
over 2 x 512^2) and seconds per 512x512 image (median of `--reps`). A finished step is not
redone, so the command resumes after an interruption. Writes `<out>.json`, `<out>.md` and
`<out>_curve.png` (validation PSNR against CPU minutes).
"""

import json
import os
import pathlib
import subprocess
import sys

from absl import app, flags

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from bench_common import param_count, seconds_per_512, write_report  # noqa: E402

from restorect_jax import inference, writers  # noqa: E402

CANDIDATES = ("unshuffle_cnn", "res_unet", "time_unet", "rgformer")
_CANDIDATES = flags.DEFINE_list("candidates", list(CANDIDATES), "configs/denoise_sweep.py names")
_CPU_MINUTES = flags.DEFINE_float("cpu_minutes", 30.0, "training CPU minutes per candidate")
_WORKDIR = flags.DEFINE_string("workdir", "runs/sweep", "where the runs train")
_OUT = flags.DEFINE_string("out", "tools/results/sweep_denoise_cpu", "output path, no extension")
_REPS = flags.DEFINE_integer("reps", 5, "timed 512x512 restores per candidate")
_NICE = flags.DEFINE_integer("nice", 10, "niceness of the training subprocesses")

CALIBRATION_STEPS, CALIBRATION_FROM = 200, 50
CONFIG = "configs/denoise_sweep.py"


def _run(args: list[str]) -> None:
    """Runs a module of the package at low priority; raises on failure."""
    command = ["nice", "-n", str(_NICE.value), sys.executable, "-m", *args]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=REPO)


def _train(candidate: str, workdir: pathlib.Path, overrides: dict) -> None:
    flags_ = [f"--config.{key}={value}" for key, value in overrides.items()]
    _run(["restorect_jax.main", f"--config={CONFIG}:{candidate}", f"--workdir={workdir}", *flags_])


def cpu_seconds_per_step(workdir: pathlib.Path) -> float:
    """CPU seconds per step between the calibration run's log rows at 50 and 200 steps."""
    rows = {row["step"]: row for row in writers.read_metrics(workdir) if "train/loss" in row}
    first, last = rows[CALIBRATION_FROM], rows[CALIBRATION_STEPS]
    cpu = writers.RunClock.CPU
    return (last[cpu] - first[cpu]) / (CALIBRATION_STEPS - CALIBRATION_FROM)


def planned_steps(cpu_per_step: float, cpu_minutes: float) -> int:
    """Steps that fit the budget, rounded down to a multiple of 100 (at least 500)."""
    return max(500, int(cpu_minutes * 60.0 / cpu_per_step) // 100 * 100)


def curve(workdir: pathlib.Path) -> list[dict]:
    """The run's validation rows: step, CPU and wall minutes, PSNR and SSIM."""
    return [
        {
            "step": row["step"],
            "cpu_minutes": round(row[writers.RunClock.CPU] / 60.0, 2),
            "wall_minutes": round(row[writers.RunClock.WALL] / 60.0, 2),
            "psnr": round(row["val/psnr"], 3),
            "ssim": round(row["val/ssim"], 4),
        }
        for row in writers.read_metrics(workdir)
        if "val/psnr" in row
    ]


def sweep_candidate(candidate: str, root: pathlib.Path) -> dict:
    """Calibrates, trains and scores one candidate (skipping finished steps); its JSON row."""
    calibration = root / f"{candidate}_calibration"
    if not _calibrated(calibration):
        _train(
            candidate,
            calibration,
            {
                "train.num_steps": CALIBRATION_STEPS,
                "train.warmup_steps": 10,
                "train.log_every": CALIBRATION_FROM,
                "train.eval_every": 0,
                "train.checkpoint_every": CALIBRATION_STEPS,
            },
        )
    cpu_per_step = cpu_seconds_per_step(calibration)
    steps = planned_steps(cpu_per_step, _CPU_MINUTES.value)
    run = root / candidate
    every = max(100, steps // 8 // 100 * 100)
    if not (run / "final_metrics.json").exists():
        _train(
            candidate,
            run,
            {
                "train.num_steps": steps,
                "train.warmup_steps": min(500, steps // 10),
                "train.eval_every": every,
                "train.checkpoint_every": every,
            },
        )
    scores_path = run / "eval_cbsd68" / "results.json"
    if not scores_path.exists():
        _run(
            [
                "restorect_jax.evaluate",
                f"--workdir={run}",
                "--datasets=CBSD68",
                "--sigma=25",
                f"--output={scores_path.parent}",
            ]
        )
    model = inference.load_run(run)
    timing = run / "timing.json"
    rows = writers.read_metrics(run)
    return {
        "candidate": candidate,
        "model": model.config.model.to_dict(),
        "batch_size": model.config.train.batch_size,
        "patch_size": model.config.data.patch_size,
        "learning_rate": model.config.train.learning_rate,
        "calibration_cpu_seconds_per_step": round(cpu_per_step, 4),
        "steps": steps,
        "cpu_minutes": round(rows[-1][writers.RunClock.CPU] / 60.0, 2),
        "wall_minutes": round(rows[-1][writers.RunClock.WALL] / 60.0, 2),
        "params": param_count(model.params),
        "macs_per_pixel": round(model.flops(512, 512) / 2 / 512**2),
        "seconds_per_512": _cached_seconds(model, timing),
        "cbsd68_sigma25": _scores(scores_path),
        "curve": curve(run),
    }


def _calibrated(workdir: pathlib.Path) -> bool:
    steps = {row["step"] for row in writers.read_metrics(workdir)}
    return CALIBRATION_STEPS in steps


def _cached_seconds(model: inference.LoadedModel, path: pathlib.Path) -> float:
    """Seconds per 512x512 image, measured once per run (kept in `path`)."""
    if not path.exists():
        seconds = seconds_per_512(model, None, _REPS.value)
        path.write_text(json.dumps({"seconds_per_512": round(seconds, 4)}))
    return json.loads(path.read_text())["seconds_per_512"]


def _scores(path: pathlib.Path) -> dict:
    """PSNR and SSIM of CBSD68 at sigma 25 from an evaluate results.json."""
    results = json.loads(path.read_text())["results"]
    (means,) = [row["means"] for row in results if (row["dataset"], row["sigma"]) == ("CBSD68", 25)]
    return {"psnr": round(means["psnr"], 3), "ssim": round(means["ssim"], 4)}


def table(report: dict) -> list[str]:
    lines = [
        "| candidate | params | M MACs/px | s / 512² image | batch x crop | steps | CPU min | "
        "wall min | CBSD68 σ25 PSNR / SSIM |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(report["rows"], key=lambda r: -r["cbsd68_sigma25"]["psnr"]):
        scores = row["cbsd68_sigma25"]
        lines.append(
            f"| {row['candidate']} | {row['params'] / 1e6:.2f}M | "
            f"{row['macs_per_pixel'] / 1e6:.3f} | {row['seconds_per_512']:.3f} | "
            f"{row['batch_size']} x {row['patch_size']}² | {row['steps']} | "
            f"{row['cpu_minutes']:.1f} | {row['wall_minutes']:.1f} | "
            f"{scores['psnr']:.2f} / {scores['ssim']:.4f} |"
        )
    return lines


def plot_curves(report: dict, path: pathlib.Path) -> None:
    """Validation PSNR against CPU minutes, one line per candidate."""
    import matplotlib  # noqa: PLC0415 (only the plot needs it)

    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: PLC0415

    figure, axes = pyplot.subplots(figsize=(6, 4))
    for row in report["rows"]:
        points = row["curve"]
        axes.plot(
            [p["cpu_minutes"] for p in points], [p["psnr"] for p in points], "o-", label=row["candidate"]
        )
    axes.set_xlabel("training CPU minutes (2 cores)")
    axes.set_ylabel("held-out CBSD432 PSNR, σ25 (dB)")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv: list[str]) -> None:
    del argv
    if not os.environ.get("RESTORECT_DATA_DIR"):
        raise app.UsageError("set RESTORECT_DATA_DIR to the benchmark data (../shared/data)")
    unknown = sorted(set(_CANDIDATES.value) - set(CANDIDATES))
    if unknown:
        raise app.UsageError(f"--candidates: unknown {unknown}; choose from {CANDIDATES}")
    root = pathlib.Path(_WORKDIR.value).absolute()
    try:
        rows = [sweep_candidate(candidate, root) for candidate in _CANDIDATES.value]
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"error: {' '.join(error.cmd[3:])} exited with {error.returncode}") from None
    report = {
        "command": " ".join(["python tools/sweep_denoise.py", *sys.argv[1:]]),
        "cpu_minutes_budget": _CPU_MINUTES.value,
        "machine": f"{os.cpu_count()}-core CPU",
        "rows": rows,
    }
    out = pathlib.Path(_OUT.value)
    write_report(out, report, table(report))
    plot_curves(report, out.with_name(out.name + "_curve.png"))


if __name__ == "__main__":
    app.run(main)
