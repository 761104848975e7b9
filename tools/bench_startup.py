"""What a user waits for before a photo is restored: import times and one `restore`'s timeline.

  python tools/bench_startup.py --out tools/results/bench_startup_cpu
  python tools/bench_startup.py --source /tmp/before --label before --out ...   # another checkout

Each measurement runs in a fresh Python process (the median of `--reps`), with the checkout
at `--source` first on `sys.path`:
- the import of `restorect_jax.restore`, `restorect_jax.evaluate` and `restorect_jax.main`;
- one `restore` of a 512x512 photo with the shipped `denoise` bundle, phase by phase (import,
  bundle load, the first prediction, which compiles or loads the program from the bundle's
  persistent cache, a second prediction, image read, noise-level estimate, write), with the
  compile cache warm;
- the whole command line, `python -m restorect_jax.restore --task denoise photo.png`, warm.
Writes `<out>.json` and `<out>.md`; a second `--label` adds its rows beside the first's.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools.bench_common import write_report  # noqa: E402

_SOURCE = flags.DEFINE_string("source", str(REPO), "the checkout whose package is timed")
_LABEL = flags.DEFINE_string("label", "now", "the name of this checkout's rows")
_REPS = flags.DEFINE_integer("reps", 3, "fresh processes per measurement (the median is kept)")
_OUT = flags.DEFINE_string("out", "tools/results/bench_startup_cpu", "output, no extension")
MODULES = ("restorect_jax.restore", "restorect_jax.evaluate", "restorect_jax.main")

# Run in a fresh process: prints the seconds of each phase of restoring PHOTO into OUT.
TIMELINE = """
import json, pathlib, sys, time
start = time.perf_counter()
marks = {}
def mark(name):
    global start
    now = time.perf_counter(); marks[name] = now - start; start = now
from restorect_jax import image_io, inference, restore, tiling, cli
mark("import")
model = inference.load_model(task="denoise")
cli.enable_compilation_cache(model.config.get("compilation_cache_dir"))
mark("bundle load")
image = image_io.read_image(sys.argv[1])
mark("image read")
level = restore.image_noise_level(model, image.pixels, None)
mark("noise-level estimate")
predict = lambda batch: model.predict(batch, noise_level=level)
tiling.restore_pixels(image.pixels, predict, model.stride, 512, 32)
mark("first prediction (cache load or compile)")
pixels = tiling.restore_pixels(image.pixels, predict, model.stride, 512, 32)
mark("model")
image_io.write_image(pathlib.Path(sys.argv[2]) / "out.png", pixels, image)
mark("write")
print(json.dumps(marks))
"""


def _run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    # Outside the checkout: `python -c` puts the working folder first on sys.path.
    return subprocess.run(
        args, capture_output=True, text=True, env=env, check=True, cwd=tempfile.gettempdir()
    )


def _env(source: pathlib.Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(source), "JAX_PLATFORMS": "cpu"}


def import_seconds(module: str, env: dict) -> float:
    """Median wall seconds of `python -c "import module"`, interpreter start-up included."""
    times = []
    for _ in range(_REPS.value):
        start = time.perf_counter()
        _run([sys.executable, "-c", f"import {module}"], env)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def timeline(photo: pathlib.Path, env: dict) -> dict[str, float]:
    """Median seconds of each phase of one restore (the cache warmed by a first run)."""
    runs = []
    for rep in range(_REPS.value + 1):
        with tempfile.TemporaryDirectory() as out:
            marks = json.loads(_run([sys.executable, "-c", TIMELINE, str(photo), out], env).stdout)
        if rep:  # the first run fills the compile cache
            runs.append(marks)
    return {name: float(np.median([run[name] for run in runs])) for name in runs[0]}


def command_seconds(photo: pathlib.Path, env: dict) -> float:
    """Median wall seconds of the whole `restore` command on one photo, cache warm."""
    times = []
    for _ in range(_REPS.value):
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, "-m", "restorect_jax.restore", "--task=denoise"]
            start = time.perf_counter()
            _run([*command, str(photo), f"--output={out}"], env)
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def table(report: dict) -> list[str]:
    labels = [entry["label"] for entry in report["checkouts"]]
    lines = ["| seconds | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    names = list(report["checkouts"][0]["seconds"])
    for name in names:
        cells = [f"{entry['seconds'].get(name, float('nan')):.2f}" for entry in report["checkouts"]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str]) -> None:
    del argv
    source = pathlib.Path(_SOURCE.value).resolve()
    env = _env(source)
    with tempfile.TemporaryDirectory() as folder:
        photo = pathlib.Path(folder) / "photo.png"
        rng = np.random.default_rng(0)
        pixels = np.clip(rng.normal(128, 40, (512, 512, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(photo)
        seconds = {f"import {m}": import_seconds(m, env) for m in MODULES}
        seconds |= {f"restore: {k}": v for k, v in timeline(photo, env).items()}
        seconds["restore command, 512x512, cache warm"] = command_seconds(photo, env)
    out = pathlib.Path(_OUT.value)
    earlier = (
        json.loads(out.with_suffix(".json").read_text())
        if out.with_suffix(".json").exists()
        else {}
    )
    checkouts = [c for c in earlier.get("checkouts", []) if c["label"] != _LABEL.value]
    checkouts.append(
        {
            "label": _LABEL.value,
            "commit": _run(
                ["git", "-C", str(source), "rev-parse", "--short", "HEAD"], env
            ).stdout.strip(),
            "command": " ".join(["python tools/bench_startup.py", *sys.argv[1:]]),
            "seconds": {name: round(value, 3) for name, value in seconds.items()},
        }
    )
    report = {"machine": f"{os.cpu_count()}-core CPU", "checkouts": checkouts}
    write_report(out, report, table(report))


if __name__ == "__main__":
    app.run(main)
