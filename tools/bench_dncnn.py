"""Benchmark: the bundled denoiser against a DnCNN of the published shape, on this CPU, in one run.

  python tools/bench_dncnn.py --out tools/results/bench_dncnn_cpu
  python tools/bench_dncnn.py --workdir runs/denoiser --out tools/results/bench_dncnn_denoiser_cpu

DnCNN (Zhang et al. 2017, the colour model): 17 layers of 3x3 convolutions at 64 channels,
conv + ReLU, 15 x (conv + BatchNorm + ReLU), conv to 3 channels, predicting the noise
(`x^ = y - net(y)`); random weights, inference-mode BatchNorm: speed only. Both models restore one
512x512 image (batch 1) in this process, jitted, timed as medians over `--reps` calls after two
warm-ups. FLOPs per pixel are XLA's cost analysis of each compiled program over the pixel count
(the bundled denoiser's ODE loop body is counted once: its velocity MLPs are under 0.1% of the
work), and DnCNN's hand count for an interior pixel `2 * 9 * (3*64 + 15*64*64 + 64*3)` beside
it (XLA skips the taps on the zero padding at the borders). The fraction is of
the XLA fp32 matmul peak measured in the same run. Writes `<out>.json` and `<out>.md`.
"""

import pathlib
import platform
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench_common import median_seconds, param_count, write_report

from restorect_jax import inference

_TASK = flags.DEFINE_string("task", "denoise", "bundled model to time")
_WORKDIRS = flags.DEFINE_list("workdir", [], "runs or bundle folders to time as well")
_REPS = flags.DEFINE_integer("reps", 10, "timed calls per model")
_SIZE = flags.DEFINE_integer("size", 512, "image side")
_MATMUL_SIZE = flags.DEFINE_integer("matmul_size", 2048, "side of the peak-measuring matmul")
_OUT = flags.DEFINE_string("out", "tools/results/bench_dncnn_cpu", "output path, no extension")

DNCNN_DEPTH, DNCNN_WIDTH = 17, 64
DNCNN_FLOPS_PER_PIXEL = 2 * 9 * (3 * DNCNN_WIDTH + 15 * DNCNN_WIDTH**2 + DNCNN_WIDTH * 3)


class DnCNN(nn.Module):
    """`x^ = y - f(y)`, f: conv-ReLU, (depth - 2) x conv-BN-ReLU, conv (3x3, `width` channels)."""

    depth: int = DNCNN_DEPTH
    width: int = DNCNN_WIDTH

    @nn.compact
    def __call__(self, y: jax.Array) -> jax.Array:
        h = nn.relu(nn.Conv(self.width, (3, 3))(y))
        for _ in range(self.depth - 2):
            h = nn.Conv(self.width, (3, 3), use_bias=False)(h)
            h = nn.relu(nn.BatchNorm(use_running_average=True)(h))
        return y - nn.Conv(y.shape[-1], (3, 3))(h)


def matmul_gflops(n: int, reps: int) -> float:
    """GFLOP/s of a jitted n x n fp32 matrix product."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    return 2 * n**3 / median_seconds(lambda: matmul(a, a), reps) / 1e9


def dncnn_row(image: np.ndarray, reps: int) -> dict:
    model = DnCNN()
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), image)
    compiled = jax.jit(model.apply).lower(variables, image).compile()
    return {
        "model": f"DnCNN ({DNCNN_DEPTH} layers, {DNCNN_WIDTH} channels, random weights)",
        "params": param_count(variables["params"]),
        "seconds": median_seconds(lambda: compiled(variables, image), reps),
        "xla_flops": inference.compiled_flops(compiled),
        "hand_flops_per_pixel": DNCNN_FLOPS_PER_PIXEL,
    }


def model_row(image: np.ndarray, reps: int, workdir: str | None = None) -> dict:
    """The bundled model of --task, or the run (bundle) in `workdir`."""
    if workdir is None:
        model = inference.load_model(task=_TASK.value)
        label = f"bundled {_TASK.value} model ({model.name}, its default sampler)"
    else:
        model = inference.load_model(workdir=workdir)
        label = f"{model.name} ({model.config.model.name})"
    _, height, width, _ = image.shape
    return {
        "model": label,
        "params": param_count(model.params),
        "seconds": median_seconds(lambda: model.predict(image), reps),
        "xla_flops": model.flops(height, width),
    }


def markdown(report: dict) -> list[str]:
    lines = [
        f"`{report['command']}`",
        "",
        (
            f"Machine: {report['machine']}; XLA fp32 matmul {report['matmul_gflops']:.1f} GFLOP/s. "
            f"One {report['size']}x{report['size']} image, batch 1."
        ),
        "",
        "| model | params | s per image | FLOPs per pixel (XLA) | GFLOP/s (of peak) |",
        "|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['model']} | {row['params']:,} | {row['seconds']:.3f} | "
            f"{row['flops_per_pixel']:,.0f} | {row['gflops']:.1f} ({row['fraction_of_peak']:.1%}) |"
        )
    *models, dncnn = report["rows"]
    lines.append("")
    lines += [
        f"{dncnn['model']} takes {dncnn['seconds'] / row['seconds']:.2f}x the time of {row['model']}."
        for row in models
    ]
    return lines


def main(argv: list[str]) -> None:
    del argv
    size, reps = _SIZE.value, _REPS.value
    image = np.random.default_rng(0).uniform(size=(1, size, size, 3)).astype(np.float32)
    peak = matmul_gflops(_MATMUL_SIZE.value, reps)
    rows = [model_row(image, reps)]
    rows += [model_row(image, reps, workdir) for workdir in _WORKDIRS.value]
    rows.append(dncnn_row(image, reps))
    for row in rows:
        row["flops_per_pixel"] = row["xla_flops"] / size**2
        row["gflops"] = row["xla_flops"] / row["seconds"] / 1e9
        row["fraction_of_peak"] = row["gflops"] / peak
    report = {
        "command": " ".join(["python tools/bench_dncnn.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {jax.devices()[0].platform} x {jax.device_count()}",
        "size": size,
        "matmul_gflops": peak,
        "rows": rows,
    }
    write_report(pathlib.Path(_OUT.value), report, markdown(report))


if __name__ == "__main__":
    app.run(main)
