"""Writes a run's training curve as JSON: validation scores against steps, wall and CPU time.

  python tools/run_curve.py --pack tools/packs/denoiser.pack --out tools/results/denoiser_curve_cpu
  python tools/run_curve.py --workdir runs/denoiser --out tools/results/denoiser_curve_cpu

Reads the run's `metrics.jsonl` (from its folder, or from a pack of `tools/pack_run.py`): every
validation row (`val/psnr`, `val/ssim`, with `time/wall_seconds` and `time/cpu_seconds`, which
add up over every resumed piece of the run) and the training loss at each validation step.
`tools/report.py` draws the curve and its table from the JSON. Writes `<out>.json`.
"""

import json
import pathlib
import sys
import tarfile

from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from restorect_jax import writers  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "a run folder")
_PACK = flags.DEFINE_string("pack", None, "a run pack (tools/pack_run.py)")
_OUT = flags.DEFINE_string("out", None, "output path, no extension", required=True)


def _rows_of_pack(path: pathlib.Path) -> tuple[list[dict], dict]:
    try:
        with tarfile.open(path) as tar:
            metrics = tar.extractfile("metrics.jsonl").read().decode()
            config = json.loads(tar.extractfile("config.json").read())
    except (OSError, KeyError, tarfile.TarError) as error:
        raise app.UsageError(f"--pack {path}: {error}") from None
    return [json.loads(line) for line in metrics.splitlines() if line], config


def _rows_of_run(workdir: pathlib.Path) -> tuple[list[dict], dict]:
    if not (workdir / "config.json").is_file():
        raise app.UsageError(f"--workdir {workdir}: no config.json (not a training run)")
    return writers.read_metrics(workdir), json.loads((workdir / "config.json").read_text())


def curve_points(rows: list[dict]) -> list[dict]:
    """One point per validation row, with the newest training loss logged at or before it."""
    points, loss = [], None
    for row in rows:
        loss = row.get("train/loss", loss)
        if "val/psnr" not in row:
            continue
        points.append(
            {
                "step": int(row["step"]),
                "wall_hours": round(row.get(writers.RunClock.WALL, 0.0) / 3600.0, 4),
                "cpu_hours": round(row.get(writers.RunClock.CPU, 0.0) / 3600.0, 4),
                "psnr": round(row["val/psnr"], 3),
                "ssim": round(row["val/ssim"], 4),
                "train_loss": None if loss is None else round(loss, 6),
            }
        )
    return points


def main(argv: list[str]) -> None:
    del argv
    if (_WORKDIR.value is None) == (_PACK.value is None):
        raise app.UsageError("give exactly one of --workdir and --pack")
    if _PACK.value:
        rows, config = _rows_of_pack(pathlib.Path(_PACK.value))
        source = _PACK.value
    else:
        rows, config = _rows_of_run(pathlib.Path(_WORKDIR.value))
        source = _WORKDIR.value
    report = {
        "command": " ".join(["python tools/run_curve.py", *sys.argv[1:]]),
        "source": source,
        "model": config["model"],
        "batch_size": config["train"]["batch_size"],
        "patch_size": config["data"]["patch_size"],
        "num_steps": config["train"]["num_steps"],
        "validation": f"{config['data']['val_dir']} records {config['data']['val_range']}",
        "points": curve_points(rows),
    }
    out = pathlib.Path(_OUT.value).with_suffix(".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out} ({len(report['points'])} validation points)")


if __name__ == "__main__":
    app.run(main)
