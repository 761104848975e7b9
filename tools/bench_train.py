"""Benchmark: compile time, training throughput and achieved FLOP/s of configs on this machine.

  python tools/bench_train.py --configs smoke,default --steps 20 --out tools/results/bench_train_cpu
  python tools/bench_train.py --configs configs/teacher_denoise_blind.py \
      --override data.patch_size=128 --override train.batch_size=32 --peak_tflops 790 \
      --out /tmp/bench_gpu

For each config (a name under configs/ or a path) it builds the real jitted train step (same
code as `train_and_evaluate`), times the cold compile (persistent cache off unless
`--keep_cache`), then times steps on a fixed device batch (model speed) and, with
`--pipeline`, steps fed by the real grain pipeline (end-to-end speed). FLOPs per step come from
XLA's cost analysis of the compiled step; achieved TFLOP/s = FLOPs per step x model steps/s,
reported as a fraction of `--peak_tflops` when given (H200: 790 dense bf16 measured here).
Writes `<out>.json` and `<out>.md`.
"""

import dataclasses
import json
import os
import pathlib
import platform
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from restorect_jax import (
    config_lib,  # pylint: disable=g-import-not-at-top
    inference,
    train,
)
from restorect_jax import data as data_lib
from restorect_jax import sharding as sharding_lib

_CONFIGS = flags.DEFINE_list("configs", ["smoke", "default"], "config names or .py paths")
_OVERRIDES = flags.DEFINE_multi_string(
    "override", [], "a.b=value setting for every config (repeatable)"
)
_STEPS = flags.DEFINE_integer("steps", 20, "timed steps per measurement")
_PIPELINE = flags.DEFINE_bool("pipeline", True, "also time steps fed by the grain pipeline")
_PEAK_TFLOPS = flags.DEFINE_float("peak_tflops", 0.0, "device peak for the fraction column")
_KEEP_CACHE = flags.DEFINE_bool("keep_cache", False, "keep the persistent compilation cache on")
_OUT = flags.DEFINE_string("out", "tools/results/bench_train_cpu", "output path, no extension")


def load_config(name_or_path: str) -> ml_collections.ConfigDict:
    """`configs/<name>.py`'s config, or the config of the .py file at `name_or_path`."""
    path = pathlib.Path(name_or_path)
    if path.suffix != ".py":
        path = pathlib.Path(__file__).resolve().parents[1] / "configs" / f"{name_or_path}.py"
    try:
        config = config_lib.load_config_file(path)
        config_lib.apply_overrides(config, _OVERRIDES.value)
    except (FileNotFoundError, ValueError) as error:
        raise app.UsageError(f"config {name_or_path}: {error}") from error
    return config


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    jax.block_until_ready(out)
    return out, time.perf_counter() - start


def _steps_per_sec(compiled, state, frozen, batches) -> tuple[float, object, dict]:
    """Steps/s over the batches `batches()` yields; returns the new state and last metrics."""
    start = time.perf_counter()
    count = 0
    for batch in batches():
        state, metrics = compiled(state, batch, frozen)
        count += 1
    jax.block_until_ready(state)
    return count / (time.perf_counter() - start), state, metrics


@dataclasses.dataclass
class PreparedStep:
    """A config's compiled train step with a state, frozen models and one fixed device batch."""

    config: ml_collections.ConfigDict
    steps: train.StepFunctions
    compiled: jax.stages.Compiled
    state: Any
    frozen: Any
    batch: dict
    phase: str
    init_seconds: float
    compile_seconds: float


def prepare_step(name: str) -> PreparedStep:
    """Builds, initialises and compiles config `name`'s train step (the same code as
    `train_and_evaluate`) for the phase most of its steps train in."""
    config = load_config(name)
    mesh = sharding_lib.create_mesh(config.mesh)
    batch_size, patch = config.train.batch_size, config.data.patch_size
    example = {key: jnp.zeros((batch_size, patch, patch, 3), jnp.float32) for key in ("lq", "gt")}
    steps = train.build_step_functions(config, mesh, example)
    state, init_seconds = _timed(lambda: steps.init(jax.random.PRNGKey(config.seed), example))
    frozen = jax.device_put(steps.method.frozen_params(), sharding_lib.replicated(mesh))
    frozen = train.with_copies(steps.method, frozen, state.params)

    shape = (batch_size, patch, patch, 3)
    gt = jax.random.uniform(jax.random.PRNGKey(1), shape)
    fixed = sharding_lib.global_batch(
        {
            "gt": np.asarray(gt),
            "lq": np.asarray(gt + 0.1 * jax.random.normal(jax.random.PRNGKey(2), shape)),
        },
        steps.batch_sharding,
    )
    phase = steps.method.phase_at(config.train.num_steps - 1)
    start = time.perf_counter()
    compiled = steps.train_step.lower(state, fixed, frozen, phase).compile()
    compile_seconds = time.perf_counter() - start
    return PreparedStep(
        config, steps, compiled, state, frozen, fixed, phase, init_seconds, compile_seconds
    )


def bench_config(name: str, num_steps: int) -> dict:
    """Compile time, steps/s and FLOPs per step of config `name` on the current devices."""
    prepared = prepare_step(name)
    config, steps, compiled = prepared.config, prepared.steps, prepared.compiled
    state, frozen, fixed, phase = prepared.state, prepared.frozen, prepared.batch, prepared.phase
    batch_size, patch = config.train.batch_size, config.data.patch_size
    batch_sharding = steps.batch_sharding
    init_seconds, compile_seconds = prepared.init_seconds, prepared.compile_seconds
    flops = inference.compiled_flops(compiled)

    _, state, _ = _steps_per_sec(compiled, state, frozen, lambda: [fixed])  # warm-up
    model_rate, state, metrics = _steps_per_sec(
        compiled, state, frozen, lambda: [fixed] * num_steps
    )
    row = {
        "config": name,
        "phase": phase,
        "params": sum(int(np.prod(x.shape)) for x in jax.tree.leaves(steps.abstract_state.params)),
        "batch_size": batch_size,
        "patch_size": patch,
        "init_seconds_including_compile": round(init_seconds, 2),
        "train_step_compile_seconds": round(compile_seconds, 2),
        "model_steps_per_sec": round(model_rate, 3),
        "gflop_per_step": round(flops / 1e9, 2),
        "achieved_tflops": round(flops * model_rate / 1e12, 3),
        "final_loss": float(metrics["loss"]),
    }
    if _PEAK_TFLOPS.value > 0:
        row["fraction_of_peak"] = round(row["achieved_tflops"] / _PEAK_TFLOPS.value, 4)
    if _PIPELINE.value:
        iterator = data_lib.make_train_iterator(
            config.data, batch_size=batch_size, seed=config.seed
        )
        pipeline_rate, _, _ = _steps_per_sec(
            compiled,
            state,
            frozen,
            lambda: (
                sharding_lib.global_batch(next(iterator), batch_sharding) for _ in range(num_steps)
            ),
        )
        row["pipeline_steps_per_sec"] = round(pipeline_rate, 3)
    return row


def markdown_table(rows: list[dict]) -> str:
    header = (
        "| config | params | batch x patch | init+compile s | step compile s | steps/s (model) | "
        "steps/s (with data) | GFLOP/step | TFLOP/s | of peak |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    return header + "".join(
        f"| {r['config']} | {r['params']:,} | {r['batch_size']} x {r['patch_size']}^2 | "
        f"{r['init_seconds_including_compile']} | {r['train_step_compile_seconds']} | "
        f"{r['model_steps_per_sec']} | {r.get('pipeline_steps_per_sec', '-')} | "
        f"{r['gflop_per_step']} | {r['achieved_tflops']} | "
        f"{r.get('fraction_of_peak', '-')} |\n"
        for r in rows
    )


def main(argv: list[str]) -> None:
    del argv
    if not _KEEP_CACHE.value:
        jax.config.update("jax_compilation_cache_dir", None)  # cold compiles
    rows = [bench_config(name, _STEPS.value) for name in _CONFIGS.value]
    device = jax.devices()[0]
    report = {
        "command": " ".join(["python tools/bench_train.py", *sys.argv[1:]]),
        "machine": {
            "platform": device.platform,
            "device_kind": device.device_kind,
            "device_count": jax.device_count(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "jax": jax.__version__,
        },
        "timed_steps": _STEPS.value,
        "overrides": _OVERRIDES.value,
        "peak_tflops": _PEAK_TFLOPS.value or None,
        "results": rows,
    }
    out = pathlib.Path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    text = f"Device: {device.device_kind} x{jax.device_count()} ({device.platform})\n\n"
    text += markdown_table(rows)
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    app.run(main)
