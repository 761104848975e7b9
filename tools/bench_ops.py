"""Benchmark: this machine's matmul peak and the speed of the models' hot ops, in each form.

  python tools/bench_ops.py --out tools/results/bench_ops_cpu
  python tools/bench_ops.py --batch 1 --levels 48:256,254:256 --reps 3 \
      --out tools/results/bench_ops_1x256_cpu

The peak is a jitted fp32 matmul (XLA) and numpy's, at `--matmul_size`. Each hot op runs at the
shapes of `configs/teacher_denoise.py`'s training batch (4 x 48x48 crops; levels 1-4 at 24, 48,
96, 192 channels and 48, 24, 12, 6 pixels; the second command: its full-resolution maps in a
1 x 256x256 crop, 48 channels and the FFN's 254), forward and value-and-grad, in every form the
code offers:
  depthwise 3x3: `layers.DepthwiseConv3x3` (nine shifted multiply-adds, its gradient in the same
    form), the same forward with XLA's gradient of the slices, and the grouped convolution it
    replaces (`nn.Conv(C, (3, 3), feature_group_count=C)`);
  1x1: `layers.Pointwise` (a matrix product) and `nn.Conv(F, (1, 1))`;
  L2 norm over pixels (the transposed attention's, one head): `layers.l2_normalize` (its sums as
    contractions, its gradient written out) and the plain sum of squares XLA differentiates;
  layer norm over channels (the attention's QK-norm): `layers.LayerNorm` (its parameter
    gradients as plain sums) and `nn.LayerNorm`.
Times are medians over `--reps` calls after two warm-up calls. Every form of an op is credited
the same work, counted by hand: forward `2 B H W C k` (multiply-adds x 2) with k = 9 for the
depthwise 3x3 and k = F for a C -> F 1x1, `3 B H W C` for the L2 norm; value-and-grad three
times that (forward, input gradient, weight gradient). XLA's own count is recorded too, but it
is not comparable across forms (it counts the grouped convolution's gradient as a dense one).
The fraction is of the XLA matmul peak. Writes `<out>.json` and `<out>.md`.
"""

import json
import pathlib
import platform
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench_common import median_seconds, write_report

from restorect_jax import inference
from restorect_jax.models.layers import DepthwiseConv3x3, LayerNorm, Pointwise, l2_normalize

_MATMUL_SIZE = flags.DEFINE_integer("matmul_size", 2048, "side of the peak-measuring matmul")
_REPS = flags.DEFINE_integer("reps", 10, "timed calls per measurement")
_BATCH = flags.DEFINE_integer("batch", 4, "images per op call")
_LEVELS = flags.DEFINE_list(
    "levels", ["24:48", "48:24", "96:12", "192:6"], "channels:pixels of each U-Net level"
)
_OUT = flags.DEFINE_string("out", "tools/results/bench_ops_cpu", "output path, no extension")
DEPTHWISE = "depthwise 3x3"
PIXEL_L2 = "L2 norm over pixels"
LAYER_NORM = "layer norm over channels"
# Hand-counted FLOPs per input element of each op's forward (C: the channel count).
FORWARD_FLOPS_PER_ELEMENT = {
    DEPTHWISE: lambda c: 2 * 9,
    "1x1": lambda c: 2 * c,
    PIXEL_L2: lambda c: 3,
    LAYER_NORM: lambda c: 7,
}


class PixelL2Norm(nn.Module):
    """The transposed attention's L2 normalisation of q and k over the pixel axis, on one head:
    (B, H, W, C) -> (B, 1, HW, C), each channel divided by its norm over the HW pixels."""

    contraction: bool  # layers.l2_normalize; False: the plain formula, differentiated by XLA

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        heads = x.reshape(x.shape[0], 1, -1, x.shape[-1])
        if self.contraction:
            return l2_normalize(heads, 2)
        sq_norm = jnp.sum(heads * heads, axis=2, keepdims=True)
        return heads * jax.lax.rsqrt(jnp.maximum(sq_norm, 1e-24))


def timed(fn) -> float:
    """Median seconds of `fn()` over `--reps` calls after two warm-ups."""
    return median_seconds(fn, _REPS.value)


def matmul_peak() -> dict[str, float]:
    """GFLOP/s of a jitted fp32 matmul (XLA) and of numpy's, n x n times n x n."""
    n = _MATMUL_SIZE.value
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    xla = 2 * n**3 / timed(lambda: matmul(a, a)) / 1e9
    a_np = np.asarray(a)
    numpy = 2 * n**3 / timed(lambda: a_np @ a_np) / 1e9
    return {"xla_gflops": xla, "numpy_gflops": numpy}


def op_forms(channels: int) -> dict[str, dict[str, nn.Module]]:
    """The forms of each hot op at `channels` wide, the plain op first: {op: {form: module}}."""
    return {
        DEPTHWISE: {
            "grouped conv (nn.Conv, plain)": nn.Conv(
                channels, (3, 3), feature_group_count=channels
            ),
            "shift-add, XLA's gradient": DepthwiseConv3x3(channels, custom_backward=False),
            "shift-add, shift-add gradient (DepthwiseConv3x3)": DepthwiseConv3x3(channels),
        },
        "1x1": {
            "conv (nn.Conv 1x1, plain)": nn.Conv(channels, (1, 1)),
            "matmul (Pointwise)": Pointwise(channels),
        },
        PIXEL_L2: {
            "sum of squares (plain)": PixelL2Norm(contraction=False),
            "contractions, written-out gradient (layers.l2_normalize)": PixelL2Norm(
                contraction=True
            ),
        },
        LAYER_NORM: {
            "nn.LayerNorm (plain)": nn.LayerNorm(epsilon=1e-5),
            "parameter gradients as sums (layers.LayerNorm)": LayerNorm(1e-5),
        },
    }


def time_form(module: nn.Module, x: jax.Array) -> dict[str, float]:
    """Forward and value-and-grad (w.r.t. params and input) ms and XLA FLOPs of one module."""
    params = module.init(jax.random.PRNGKey(1), x)

    def loss(params, x):
        return jnp.sum(module.apply(params, x) ** 2)

    row = {}
    for name, fn in (("forward", module.apply), ("grad", jax.value_and_grad(loss, (0, 1)))):
        compiled = jax.jit(fn).lower(params, x).compile()
        seconds = timed(lambda compiled=compiled: compiled(params, x))
        flops = inference.compiled_flops(compiled)
        row[f"{name}_ms"] = seconds * 1e3
        row[f"{name}_xla_flops"] = flops
    return row


def markdown(report: dict) -> list[str]:
    peak = report["peak"]
    machine = (
        f"Machine: {report['machine']}; XLA fp32 matmul {peak['xla_gflops']:.1f} GFLOP/s, "
        f"numpy {peak['numpy_gflops']:.1f} GFLOP/s ({_MATMUL_SIZE.value}^2)."
    )
    lines = [
        machine,
        "",
        (
            "| op | form | shape | forward ms | GFLOP/s (of peak) | value+grad ms "
            "| GFLOP/s (of peak) |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["ops"]:
        cells = [row["op"], row["form"], row["shape"]]
        for name in ("forward", "grad"):
            share = row[f"{name}_gflops"] / peak["xla_gflops"]
            cells += [f"{row[f'{name}_ms']:.2f}", f"{row[f'{name}_gflops']:.2f} ({share:.1%})"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str]) -> None:
    del argv
    report = {
        "machine": f"{platform.machine()}, {jax.devices()[0].platform} x {jax.device_count()}",
        "command": " ".join(["python tools/bench_ops.py", *sys.argv[1:]]),
        "peak": matmul_peak(),
        "ops": [],
    }
    for level in _LEVELS.value:
        channels, pixels = (int(v) for v in level.split(":"))
        x = jax.random.normal(jax.random.PRNGKey(2), (_BATCH.value, pixels, pixels, channels))
        for op, forms in op_forms(channels).items():
            forward_flops = x.size * FORWARD_FLOPS_PER_ELEMENT[op](channels)
            for form, module in forms.items():
                shape = f"{_BATCH.value}x{pixels}x{pixels}x{channels}"
                row = {"op": op, "form": form, "shape": shape, **time_form(module, x)}
                for name, flops in (("forward", forward_flops), ("grad", 3 * forward_flops)):
                    row[f"{name}_gflops"] = flops / (row[f"{name}_ms"] / 1e3) / 1e9
                report["ops"].append(row)
                print(json.dumps(row), flush=True)
    write_report(pathlib.Path(_OUT.value), report, markdown(report))


if __name__ == "__main__":
    app.run(main)
