"""Benchmark: compile time and training throughput of configs on this machine.

  python tools/bench_train.py --configs smoke,default --steps 20 --out tools/results/bench_train_cpu

For each config it builds the real jitted train step (same code as `train_and_evaluate`), times
the cold compile (persistent cache off), then times steps on a fixed device batch (model speed)
and steps fed by the real grain pipeline (end-to-end speed). Writes `<out>.json` and `<out>.md`.
"""

import argparse
import importlib
import json
import pathlib
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from restorect_jax import data as data_lib  # pylint: disable=g-import-not-at-top
from restorect_jax import sharding as sharding_lib
from restorect_jax import train


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    jax.block_until_ready(out)
    return out, time.perf_counter() - start


def bench_config(name: str, num_steps: int) -> dict:
    """Compile time and steps/s of `configs/<name>.py` on the current devices."""
    config = importlib.import_module(f"configs.{name}").get_config()
    mesh = sharding_lib.create_mesh(config.mesh)
    batch_size, patch = config.train.batch_size, config.data.patch_size
    example = {key: jnp.zeros((batch_size, patch, patch, 3), jnp.float32) for key in ("lq", "gt")}
    steps = train.build_step_functions(config, mesh, example)
    rng = jax.random.PRNGKey(config.seed)
    state, init_seconds = _timed(lambda: steps.init(rng, example))
    frozen = jax.device_put(steps.method.frozen_params(), sharding_lib.replicated(mesh))

    batch_sharding = sharding_lib.batch_sharding(mesh)
    iterator = data_lib.make_train_iterator(config.data, batch_size=batch_size, seed=config.seed)
    batch = sharding_lib.global_batch(next(iterator), batch_sharding)
    start = time.perf_counter()
    compiled = steps.train_step.lower(state, batch, frozen).compile()
    compile_seconds = time.perf_counter() - start

    (state, _), _ = _timed(lambda: compiled(state, batch, frozen))  # warm-up
    start = time.perf_counter()
    for _ in range(num_steps):
        state, metrics = compiled(state, batch, frozen)
    jax.block_until_ready(state)
    model_steps_per_sec = num_steps / (time.perf_counter() - start)

    start = time.perf_counter()
    for _ in range(num_steps):
        batch = sharding_lib.global_batch(next(iterator), batch_sharding)
        state, metrics = compiled(state, batch, frozen)
    jax.block_until_ready(state)
    pipeline_steps_per_sec = num_steps / (time.perf_counter() - start)
    param_count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(steps.abstract_state.params))
    return {
        "config": name,
        "params": param_count,
        "batch_size": batch_size,
        "patch_size": patch,
        "init_seconds_including_compile": round(init_seconds, 2),
        "train_step_compile_seconds": round(compile_seconds, 2),
        "model_steps_per_sec": round(model_steps_per_sec, 3),
        "pipeline_steps_per_sec": round(pipeline_steps_per_sec, 3),
        "final_loss": float(metrics["loss"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="smoke,default", help="comma-separated config names")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument(
        "--out",
        default="tools/results/bench_train_cpu",
        help="output path without extension (.json and .md are written)",
    )
    args = parser.parse_args()
    jax.config.update("jax_compilation_cache_dir", None)  # cold compiles, whatever the env says
    rows = [bench_config(name, args.steps) for name in args.configs.split(",")]
    device = jax.devices()[0]
    report = {
        "machine": {
            "platform": device.platform,
            "device_kind": device.device_kind,
            "device_count": jax.device_count(),
            "processor": platform.processor(),
            "cpu_count": __import__("os").cpu_count(),
            "jax": jax.__version__,
        },
        "timed_steps": args.steps,
        "results": rows,
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    header = (
        "| config | params | batch x patch | init+compile s | step compile s | "
        "steps/s (model) | steps/s (with data) |\n|---|---|---|---|---|---|---|\n"
    )
    table = header + "".join(
        f"| {r['config']} | {r['params']:,} | {r['batch_size']} x {r['patch_size']}^2 | "
        f"{r['init_seconds_including_compile']} | {r['train_step_compile_seconds']} | "
        f"{r['model_steps_per_sec']} | {r['pipeline_steps_per_sec']} |\n"
        for r in rows
    )
    text = f"Device: {device.device_kind} x{jax.device_count()} ({device.platform})\n\n{table}"
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
