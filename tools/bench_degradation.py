"""The cost of making one training batch noisy, beside the cost of the train step it feeds.

  python tools/bench_degradation.py --out tools/results/bench_degradation_cpu

Times `data.degrade_with_level` (single-threaded numpy, as the input pipeline runs it) on a
batch of `configs/denoiser.py`'s shape (16 crops of 64x64 from the embedded photos) for AWGN,
camera noise without JPEG, and camera noise with JPEG every time (the worst case; the config
saves half its images as JPEG). The train step's CPU seconds come from the committed curve of
the long run of that config (`tools/results/denoiser_curve_cpu.json`). Writes `<out>.json` and
`<out>.md`.
"""

import dataclasses
import json
import pathlib
import sys
import time

import numpy as np
from absl import app, flags

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from configs import denoiser  # noqa: E402
from restorect_jax import data  # noqa: E402
from tools.bench_common import write_report  # noqa: E402

_REPS = flags.DEFINE_integer("reps", 5, "timed batches per degradation (the median is kept)")
_OUT = flags.DEFINE_string("out", "tools/results/bench_degradation_cpu", "output, no extension")
CURVE = REPO / "tools" / "results" / "denoiser_curve_cpu.json"


def crops(batch: int, size: int) -> list[np.ndarray]:
    """`batch` crops of the embedded photos, as the training pipeline cuts them."""
    from skimage import data as photos  # the embedded photos' package

    rng = np.random.default_rng(0)
    images = [photos.astronaut(), photos.coffee(), photos.chelsea()]
    out = []
    for index in range(batch):
        image = images[index % len(images)].astype(np.float32) / 255.0
        top = rng.integers(0, image.shape[0] - size)
        left = rng.integers(0, image.shape[1] - size)
        out.append(image[top : top + size, left : left + size])
    return out


def seconds_per_batch(batch: list[np.ndarray], spec: data.DegradationSpec) -> float:
    """Median CPU seconds of degrading every crop of `batch` once."""
    times = []
    for rep in range(_REPS.value):
        rng = np.random.default_rng(rep)
        start = time.process_time()
        for crop in batch:
            data.degrade_with_level(crop, spec, rng)
        times.append(time.process_time() - start)
    return float(np.median(times))


def train_step_cpu_seconds() -> tuple[float, int]:
    """CPU seconds per step of the denoiser's long run, and the steps they average over."""
    points = json.loads(CURVE.read_text())["points"]
    last = points[-1]
    return last["cpu_hours"] * 3600.0 / last["step"], last["step"]


def main(argv: list[str]) -> None:
    del argv
    config = denoiser.get_config()
    batch = crops(config.train.batch_size, config.data.patch_size)
    base = data.DegradationSpec.from_config(config.data)
    camera = dataclasses.replace(base.camera, awgn_fraction=0.0)
    variants = {
        "awgn, sigma ~ U(0, 75)": base,
        "camera, no JPEG": dataclasses.replace(
            base, name="camera", camera=dataclasses.replace(camera, jpeg_probability=0.0)
        ),
        "camera, always JPEG": dataclasses.replace(
            base, name="camera", camera=dataclasses.replace(camera, jpeg_probability=1.0)
        ),
    }
    step, steps = train_step_cpu_seconds()
    rows = []
    for name, spec in variants.items():
        seconds = seconds_per_batch(batch, spec)
        rows.append(
            {
                "degradation": name,
                "ms_per_batch": round(seconds * 1e3, 2),
                "share_of_train_step": round(seconds / step, 4),
            }
        )
    report = {
        "command": " ".join(["python tools/bench_degradation.py", *sys.argv[1:]]),
        "batch": f"{config.train.batch_size} x {config.data.patch_size}^2",
        "train_step_cpu_seconds": round(step, 3),
        "train_step_source": f"{CURVE.relative_to(REPO)} (mean over {steps} steps)",
        "rows": rows,
    }
    table = ["| degradation | ms per batch (CPU) | share of a train step |", "|---|---|---|"]
    table += [
        f"| {r['degradation']} | {r['ms_per_batch']:.1f} | {100 * r['share_of_train_step']:.2f}% |"
        for r in rows
    ]
    write_report(pathlib.Path(_OUT.value), report, table)


if __name__ == "__main__":
    app.run(main)
