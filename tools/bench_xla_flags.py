"""Benchmark: a config's train step under each XLA:CPU flag set this jaxlib offers.

  python tools/bench_xla_flags.py --config teacher_denoise --out tools/results/bench_xla_flags_cpu

Each flag set runs `tools/bench_train.py` for `--config` in a fresh process (XLA reads its flags
once, at start-up) with `XLA_FLAGS` set to it, and reports the compile time, model steps/s and
the speed relative to the first set that ran (`none`: XLA's defaults). A set this jaxlib refuses
is reported with its last error line, not skipped. The sets (`FLAG_SETS`, `--sets` picks some):
YNNPACK fusions off, XNNPACK off, oneDNN on, fast math, 512-bit vectors, the
concurrency-optimised scheduler, and the fusion emitters off.
Writes `<out>.json` and `<out>.md`.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from bench_common import write_report

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags, defined only when run as a script: the tests import this module
    beside others that define flags of the same names."""
    flags.DEFINE_string("config", "teacher_denoise", "config name or .py path")
    flags.DEFINE_multi_string("override", [], "a.b=value for the config (repeatable)")
    flags.DEFINE_integer("steps", 10, "timed steps per flag set")
    flags.DEFINE_list("sets", [], "names of the flag sets to run (default: all)")
    flags.DEFINE_string("out", "tools/results/bench_xla_flags_cpu", "output path, no extension")


REPO = pathlib.Path(__file__).resolve().parents[1]
FLAG_SETS = {  # name: (what it does, XLA_FLAGS)
    "none": ("XLA's defaults", ""),
    "no_ynn": ("YNNPACK fusions off", "--xla_cpu_experimental_ynn_fusion_type="),
    "no_xnnpack": ("XNNPACK off", "--xla_cpu_use_xnnpack=false"),
    "onednn": ("oneDNN on", "--xla_cpu_use_onednn=true"),
    "fast_math": ("fast math", "--xla_cpu_enable_fast_math=true"),
    "vector512": ("512-bit vectors", "--xla_cpu_prefer_vector_width=512"),
    "concurrency": (
        "concurrency-optimised scheduler",
        "--xla_cpu_enable_concurrency_optimized_scheduler=true",
    ),
    "no_fusion_emitters": ("fusion emitters off", "--xla_cpu_use_fusion_emitters=false"),
}


def run_set(config: str, overrides: list[str], steps: int, xla_flags: str) -> dict:
    """bench_train's result row for `config` (with `overrides`, timing `steps` steps) under
    `xla_flags`, or {"error": the last line of its stderr}."""
    with tempfile.TemporaryDirectory() as folder:
        out = pathlib.Path(folder) / "train"
        command = [
            sys.executable,
            str(REPO / "tools" / "bench_train.py"),
            f"--configs={config}",
            "--pipeline=false",
            f"--steps={steps}",
            f"--out={out}",
            *(f"--override={override}" for override in overrides),
        ]
        env = {**os.environ, "XLA_FLAGS": xla_flags}
        result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        if result.returncode != 0:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            return {"error": lines[-1][:300] if lines else f"exit {result.returncode}"}
        return json.loads(out.with_suffix(".json").read_text())["results"][0]


def markdown(report: dict) -> list[str]:
    lines = [
        f"`{report['command']}`",
        "",
        "| flag set | XLA_FLAGS | step compile s | steps/s | relative |",
        "|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        flags_cell = f"`{row['xla_flags']}`" if row["xla_flags"] else "-"
        if "error" in row:
            lines.append(
                f"| {row['description']} | {flags_cell} | refused: {row['error']} | - | - |"
            )
            continue
        lines.append(
            f"| {row['description']} | {flags_cell} | {row['train_step_compile_seconds']:.1f} | "
            f"{row['model_steps_per_sec']:.3f} | {row['relative']:.2f}x |"
        )
    return lines


def main(argv: list[str]) -> None:
    del argv
    unknown = set(FLAGS.sets) - set(FLAG_SETS)
    if unknown:
        raise app.UsageError(f"--sets: unknown {sorted(unknown)}; known: {sorted(FLAG_SETS)}")
    names = [name for name in FLAG_SETS if not FLAGS.sets or name in FLAGS.sets]
    rows = []
    for name in names:
        description, xla_flags = FLAG_SETS[name]
        row = {"name": name, "description": description, "xla_flags": xla_flags}
        row.update(run_set(FLAGS.config, FLAGS.override, FLAGS.steps, xla_flags))
        rows.append(row)
        print(json.dumps(row), flush=True)
    baseline = next((row for row in rows if "error" not in row), None)
    for row in rows:
        if "error" not in row:
            row["relative"] = row["model_steps_per_sec"] / baseline["model_steps_per_sec"]
    report = {
        "command": " ".join(["python tools/bench_xla_flags.py", *sys.argv[1:]]),
        "config": FLAGS.config,
        "overrides": FLAGS.override,
        "rows": rows,
    }
    write_report(pathlib.Path(FLAGS.out), report, markdown(report))


if __name__ == "__main__":
    define_flags()
    app.run(main)
