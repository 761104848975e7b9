"""Real camera noise: PolyU (and CBSD68 at sigma 25) for the noisy input, models and CBM3D.

  RESTORECT_DATA_DIR=../shared/data python tools/bench_real_noise.py \
      --rows input,task:denoise,workdir:runs/denoiser,bm3d --workdir runs/real_noise \
      --out tools/results/real_noise_cpu

Each row is one `python -m restorect_jax.evaluate` (RGB PSNR/SSIM, outputs rounded to 8 bits):
`input` scores the noisy photo itself, `task:NAME` a shipped bundle, `workdir:PATH` a run (a
noise-map denoiser estimates each photo's noise level, blind), `bm3d` CBM3D (at the level the
noise estimator gives on PolyU, at the true sigma on CBSD68). Each row's report stays in
`<workdir>/<row>/`, so a rerun skips finished rows (CBM3D takes about 25 s a photo here).
Writes `<out>.json` and `<out>.md`, keeping the rows of an earlier `<out>.json` that this run
does not score (so a slow row can be scored on its own, e.g. `--rows bm3d --datasets PolyU`).
"""

import json
import os
import pathlib
import re
import subprocess
import sys

from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tools.bench_common import write_report  # noqa: E402

_ROWS = flags.DEFINE_list(
    "rows", ["input", "task:denoise", "bm3d"], "input | task:NAME | workdir:PATH | bm3d"
)
_DATASETS = flags.DEFINE_list("datasets", ["PolyU", "CBSD68"], "sets to score")
_WORKDIR = flags.DEFINE_string("workdir", "runs/real_noise", "each row's evaluate output")
_OUT = flags.DEFINE_string("out", "tools/results/real_noise_cpu", "output path, no extension")


def row_flags(row: str) -> list[str]:
    """The evaluate flags that choose a row's restorer."""
    kind, _, value = row.partition(":")
    if kind == "input" or kind == "bm3d":
        return [f"--baseline={kind}"]
    if kind == "task" and value:
        return [f"--task={value}"]
    if kind == "workdir" and value:
        return [f"--workdir={value}"]
    raise app.UsageError(f"--rows: {row!r} is not input, bm3d, task:NAME or workdir:PATH")


def evaluate_row(row: str, folder: pathlib.Path) -> dict:
    """Runs (once) and reads the evaluate report of one row."""
    report = folder / "results.json"
    if not report.exists():
        command = [
            sys.executable,
            "-m",
            "restorect_jax.evaluate",
            *row_flags(row),
            f"--datasets={','.join(_DATASETS.value)}",
            "--sigma=25",
            "--metrics=psnr,ssim",
            "--steps_sweep=",
            f"--output={folder}",
        ]
        print("+", " ".join(command[2:]), flush=True)
        subprocess.run(command, check=True, env=os.environ)
    return json.loads(report.read_text())


def table(report: dict) -> list[str]:
    lines = ["| row | model | " + " | ".join(_labels(report)) + " |"]
    lines.append("|---|---|" + "---|" * len(_labels(report)))
    for row in report["rows"]:
        cells = [
            f"{row['scores'][label]['psnr']:.2f} / {row['scores'][label]['ssim']:.4f}"
            if label in row["scores"]
            else ""
            for label in _labels(report)
        ]
        lines.append(f"| {row['row']} | {row['model']} | " + " | ".join(cells) + " |")
    return lines


def _labels(report: dict) -> list[str]:
    labels: list[str] = []
    for row in report["rows"]:
        labels += [label for label in row["scores"] if label not in labels]
    return labels


def main(argv: list[str]) -> None:
    del argv
    root = pathlib.Path(_WORKDIR.value)
    rows = []
    try:
        for row in _ROWS.value:
            evaluated = evaluate_row(row, root / re.sub(r"[^A-Za-z0-9_.-]+", "_", row))
            scores = {
                result["label"]: {
                    "psnr": round(result["means"]["psnr"], 4),
                    "ssim": round(result["means"]["ssim"], 4),
                    "images": result["images"],
                    "seconds_per_image": round(result["restore_seconds_per_image"], 3),
                }
                for result in evaluated["results"]
            }
            rows.append({"row": row, "model": evaluated["model"], "scores": scores})
    except subprocess.CalledProcessError as error:
        raise SystemExit(
            f"error: {' '.join(error.cmd[2:])} exited with {error.returncode}"
        ) from None
    out = pathlib.Path(_OUT.value)
    earlier = (
        json.loads(out.with_suffix(".json").read_text())
        if out.with_suffix(".json").exists()
        else {}
    )
    scored = {row["row"] for row in rows}
    rows = [row for row in earlier.get("rows", []) if row["row"] not in scored] + rows
    # An earlier command keeps the rows it wrote that this run did not score again.
    commands = []
    for command in earlier.get("commands", []):
        kept = [row for row in command["rows"] if row not in scored]
        if kept:
            commands.append({"rows": kept, "command": command["command"]})
    commands.append(
        {
            "rows": _ROWS.value,
            "command": " ".join(["python tools/bench_real_noise.py", *sys.argv[1:]]),
        }
    )
    report = {
        "commands": commands,
        "machine": f"{os.cpu_count()}-core CPU",
        "protocol": "RGB PSNR / SSIM, outputs clipped and rounded to 8 bits; PolyU: each real "
        "photo against the mean of many shots; CBSD68: stored AWGN sigma 25, clipped",
        "rows": rows,
    }
    write_report(out, report, table(report))


if __name__ == "__main__":
    app.run(main)
