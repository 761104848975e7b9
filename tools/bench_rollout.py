"""Benchmark: IR-Flow's multi-step consistency rollout on this CPU, in each form of the loop.

  python tools/bench_rollout.py --out tools/results/bench_rollout_cpu

The network is the TimeUNet of `configs/irflow_denoise.py` on its training batch (4 x 48x48).
Measured, as medians over `--reps` calls after two warm-up calls:
  the network alone: forward, and value-and-grad of a mean square, at 4 x 48x48; forward at
    1 x 256x256 with XLA's FLOP count and the achieved GFLOP/s;
  value-and-grad of `mean(rollout(y, K)^2)` for K in `--steps`, through a `max_steps = 10`
    rollout (each step rematerialised) in three forms:
    rolled:   `flow.rollout` as a `lax.scan` loop (inactive steps masked);
    unrolled: the same scan with `unroll=True` (what IR-Flow trains with);
    cond:     a rolled scan whose inactive steps skip the network through `lax.cond`.
  and the compile time of each form.
Writes `<out>.json` and `<out>.md`.
"""

import json
import pathlib
import platform
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench_common import median_seconds, param_count

from configs import irflow_denoise
from restorect_jax import flow, inference, methods

_REPS = flags.DEFINE_integer("reps", 5, "timed calls per measurement")
_STEPS = flags.DEFINE_list("steps", ["2", "6", "10"], "rollout step counts K")
_OUT = flags.DEFINE_string("out", "tools/results/bench_rollout_cpu", "output path, no extension")
MAX_STEPS = 10


def timed(fn) -> float:
    """Median seconds of `fn()` over `--reps` calls after two warm-ups."""
    return median_seconds(fn, _REPS.value)


def cond_rollout(network, y: jax.Array, k: jax.Array) -> jax.Array:
    """Uniform cumulative-velocity Euler steps; steps i >= k skip the network via lax.cond."""
    k_float = jnp.maximum(k, 1).astype(y.dtype)

    @jax.checkpoint
    def step(x, i):
        t = 1.0 - i / k_float
        h = 1.0 / k_float

        def move(x):
            return x - (h / t) * network(x, jnp.full(x.shape[:1], t))

        return jax.lax.cond(i < k, move, lambda x: x, x), None

    return jax.lax.scan(step, y, jnp.arange(MAX_STEPS))[0]


def rollout_forms(network) -> dict[str, Callable]:
    def masked(unroll: bool):
        def run(y, k):
            return flow.rollout(
                network, y, k, MAX_STEPS, parametrization="cumulative", unroll=unroll
            )

        return run

    return {
        "rolled": masked(False),
        "unrolled": masked(True),
        "cond": lambda y, k: cond_rollout(network, y, k),
    }


def network_speed(method, params) -> dict[str, float]:
    rng = np.random.default_rng(0)
    small = jnp.asarray(rng.uniform(size=(4, 48, 48, 3)), jnp.float32)
    large = jnp.asarray(rng.uniform(size=(1, 256, 256, 3)), jnp.float32)
    apply = jax.jit(lambda p, x: method.network(p)(x, jnp.ones(x.shape[:1])))
    grad = jax.jit(jax.value_and_grad(lambda p, x: jnp.mean(apply(p, x) ** 2)))
    flops = inference.compiled_flops(apply.lower(params, large).compile())
    forward_256 = timed(lambda: apply(params, large))
    return {
        "forward_4x48_s": timed(lambda: apply(params, small)),
        "value_and_grad_4x48_s": timed(lambda: grad(params, small)),
        "forward_1x256_s": forward_256,
        "forward_1x256_gflop": flops / 1e9,
        "forward_1x256_gflop_per_s": flops / 1e9 / forward_256,
    }


def time_rollouts(method, params) -> dict[str, dict]:
    y = jnp.asarray(np.random.default_rng(1).uniform(size=(4, 48, 48, 3)), jnp.float32)
    results = {}
    for name in ("rolled", "unrolled", "cond"):

        def loss(p, k, name=name):  # params as an argument, so they are not constants
            form = rollout_forms(method.network(p))[name]
            return jnp.mean(form(y, k) ** 2)

        grad = jax.jit(jax.value_and_grad(loss))
        start = time.perf_counter()
        jax.block_until_ready(grad(params, jnp.int32(2)))
        compile_s = time.perf_counter() - start
        results[name] = {"compile_and_first_call_s": compile_s}
        for k in _STEPS.value:
            results[name][f"value_and_grad_K{k}_s"] = timed(
                lambda k=k, grad=grad: grad(params, jnp.int32(int(k)))
            )
    return results


def markdown(report: dict) -> str:
    net = report["network"]
    summary = (
        f"TimeUNet ({report['params']:,} params): forward 4x48^2 {net['forward_4x48_s'] * 1e3:.0f}"
        f" ms, value-and-grad {net['value_and_grad_4x48_s'] * 1e3:.0f} ms; forward 1x256^2 "
        f"{net['forward_1x256_s'] * 1e3:.0f} ms = {net['forward_1x256_gflop_per_s']:.1f} GFLOP/s"
    )
    lines = [
        summary,
        "",
        "| rollout form | compile + first call s | "
        + " | ".join(f"value-and-grad K={k} s" for k in report["steps"])
        + " |",
        "|---|---|" + "---|" * len(report["steps"]),
    ]
    for name, row in report["rollout"].items():
        cells = [f"{row[f'value_and_grad_K{k}_s']:.2f}" for k in report["steps"]]
        lines.append(
            f"| {name} | {row['compile_and_first_call_s']:.1f} | " + " | ".join(cells) + " |"
        )
    lines += ["", f"Machine: {report['machine']}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    del argv
    config = irflow_denoise.get_config()
    method = methods.get_method(config.method)(config)
    batch = {"lq": jnp.zeros((4, 48, 48, 3))}
    params = jax.jit(method.init_params)(jax.random.PRNGKey(0), batch)
    report = {
        "machine": f"{platform.machine()}, {jax.device_count()} x {jax.devices()[0].platform}, "
        f"jax {jax.__version__}",
        "params": param_count(params),
        "steps": _STEPS.value,
        "network": network_speed(method, params),
        "rollout": time_rollouts(method, params),
    }
    out = pathlib.Path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    app.run(main)
