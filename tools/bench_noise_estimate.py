"""Benchmark: the blind noise-level estimator on test images of known sigma.

  RESTORECT_DATA_DIR=../shared/data python tools/bench_noise_estimate.py \
      --out tools/results/noise_estimate_cpu

For each set and sigma, every image's stored noisy version (`data/benchmarks.py`), clipped to
[0, 1] as `evaluate` feeds it, is estimated by `restorect_jax.noise_level.estimate_sigma`
(0-255 scale); reported: the mean estimate, its bias, the mean and largest absolute error,
and the seconds per image. Writes `<out>.json` and `<out>.md`.
"""

import os
import pathlib
import sys
import time

import jax.numpy as jnp
import numpy as np
from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from bench_common import write_report  # noqa: E402

from restorect_jax import noise_level  # noqa: E402
from restorect_jax.data import benchmarks  # noqa: E402
from restorect_jax.data.pipeline import DATA_DIR_ENV  # noqa: E402

_DATASETS = flags.DEFINE_list("datasets", ["CBSD68"], "AWGN test sets")
_SIGMAS = flags.DEFINE_list("sigmas", ["5", "15", "25", "50"], "noise levels (0-255)")
_TFDS_DIR = flags.DEFINE_string("tfds_dir", "~/.cache/restorect_jax/tfds", "TFDS directory")
_OUT = flags.DEFINE_string("out", "tools/results/noise_estimate_cpu", "output path, no extension")


def estimate_set(dataset: str, sigma: int, root: str) -> dict:
    """Estimates of every image of `dataset` at `sigma`, summarised."""
    tfds_dir = os.path.expanduser(_TFDS_DIR.value)
    records = benchmarks.load_benchmark(dataset, root, tfds_dir, sigma=sigma)
    estimates, seconds = [], []
    for record in records:
        lq = jnp.asarray(np.clip(record["lq"], 0.0, 1.0)[None])
        start = time.perf_counter()
        estimates.append(float(noise_level.estimate_sigma(lq)[0]) * 255.0)
        seconds.append(time.perf_counter() - start)
    errors = np.asarray(estimates) - sigma
    return {
        "dataset": dataset,
        "sigma": sigma,
        "images": len(records),
        "mean_estimate": round(float(np.mean(estimates)), 3),
        "bias": round(float(np.mean(errors)), 3),
        "mean_abs_error": round(float(np.mean(np.abs(errors))), 3),
        "max_abs_error": round(float(np.max(np.abs(errors))), 3),
        "seconds_per_image": round(float(np.median(seconds[1:] or seconds)), 4),
    }


def table(report: dict) -> list[str]:
    lines = [
        "| set | σ | images | mean estimate | bias | mean abs error | max abs error | s / image |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['dataset']} | {row['sigma']} | {row['images']} | "
            f"{row['mean_estimate']:.2f} | {row['bias']:+.2f} | {row['mean_abs_error']:.2f} | "
            f"{row['max_abs_error']:.2f} | {row['seconds_per_image']:.3f} |"
        )
    return lines


def main(argv: list[str]) -> None:
    del argv
    root = os.environ.get(DATA_DIR_ENV)
    if not root:
        raise app.UsageError(f"set {DATA_DIR_ENV} to the benchmark data (../shared/data)")
    try:
        sigmas = [int(value) for value in _SIGMAS.value]
    except ValueError:
        raise app.UsageError(f"--sigmas {_SIGMAS.value}: integers on the 0-255 scale") from None
    rows = [
        estimate_set(dataset, sigma, root) for dataset in _DATASETS.value for sigma in sigmas
    ]
    report = {
        "command": " ".join(["python tools/bench_noise_estimate.py", *sys.argv[1:]]),
        "estimator": "restorect_jax.noise_level.estimate_sigma (inputs clipped to [0, 1])",
        "rows": rows,
    }
    write_report(pathlib.Path(_OUT.value), report, table(report))


if __name__ == "__main__":
    app.run(main)
