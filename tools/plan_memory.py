"""Memory and FLOPs of a config's train step, planned ahead of time: no data, no parameters.

  python tools/plan_memory.py --config configs/teacher_denoise.py --mesh 1,1 --batch 8 \
      --patch 192 --json tools/results/plan_memory/teacher_denoise_b8_p192.json \
      [--config.model.width=64 ...]

Builds the real jitted train step (`train.build_step_functions`, with the state shardings of
`config.mesh`, e.g. `--config.mesh.shard_params=True`), lowers and compiles it for
ShapeDtypeStructs of the state, the batch and the frozen inputs (a student's teacher), and prints
per device what `compiled.memory_analysis()` reports (arguments, outputs, the donated state
aliased between them, temporaries, generated code; total = arguments + outputs - aliased +
temporaries + code) and the FLOPs of `compiled.cost_analysis()`, which are those of one device's
partitioned program: they are divided by the devices the batch is split over (the data axis,
and the model axis too with shard_params); without shard_params the model axis's devices repeat
the same computation. Each training phase (`method.phase_at`) compiles once. A student config
needs its teacher run (`config.frozen.teacher`), whose shapes the plan reads.

On CPU the mesh may ask for more devices than this machine has: the tool gives the host platform
`data * model` devices (XLA_FLAGS=--xla_force_host_platform_device_count) before JAX starts, so a
GPU node's or a pod's per-device figures are planned here, as the CPU compiler lays them out
(its fusion and layouts differ from a GPU's or TPU's: take the figures as estimates). On an
accelerator the mesh must fit the devices there.
"""

import math
import os
import re
import sys

_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def _mesh_argument(argv: list[str]) -> str | None:
    """The value of `--mesh` in `argv` (either `--mesh=V` or `--mesh V`), or None."""
    for index, arg in enumerate(argv):
        if arg.startswith("--mesh="):
            return arg.split("=", 1)[1]
        if arg == "--mesh" and index + 1 < len(argv):
            return argv[index + 1]
    return None


def _force_host_devices(argv: list[str]) -> None:
    """Gives the host platform at least data * model devices; must run before JAX is imported."""
    try:
        needed = math.prod(int(part) for part in (_mesh_argument(argv) or "1,1").split(","))
    except ValueError:
        needed = 0
    if needed < 1:
        return  # parse_mesh reports the bad value once the flags are parsed
    xla_flags = os.environ.get("XLA_FLAGS", "")
    found = re.search(rf"{_DEVICE_COUNT_FLAG}=(\d+)", xla_flags)
    if found and int(found.group(1)) >= needed:
        return
    xla_flags = re.sub(rf"{_DEVICE_COUNT_FLAG}=\d+", "", xla_flags)
    os.environ["XLA_FLAGS"] = f"{xla_flags} {_DEVICE_COUNT_FLAG}={needed}".strip()


_force_host_devices(sys.argv)  # before JAX is imported, hence the imports below it


import json
import pathlib

import jax
import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from restorect_jax import checkpoint as checkpoint_lib
from restorect_jax import inference, methods, train
from restorect_jax import sharding as sharding_lib

config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
_MESH = flags.DEFINE_string("mesh", "1,1", "data,model: devices on each mesh axis.")
_BATCH = flags.DEFINE_integer("batch", None, "Global batch size (default: train.batch_size).")
_PATCH = flags.DEFINE_integer("patch", None, "Square crop size (default: data.patch_size).")
_JSON = flags.DEFINE_string("json", None, "Also write the figures to this JSON file.")
flags.mark_flags_as_required(["config"])

_MEMORY_FIELDS = {  # JSON name: attribute of compiled.memory_analysis()
    "argument_bytes": "argument_size_in_bytes",
    "output_bytes": "output_size_in_bytes",
    "alias_bytes": "alias_size_in_bytes",
    "temp_bytes": "temp_size_in_bytes",
    "generated_code_bytes": "generated_code_size_in_bytes",
}


def parse_mesh(value: str) -> tuple[int, int]:
    """`"data,model"` -> (data, model), both positive; ValueError naming --mesh otherwise."""
    try:
        data, model = (int(part) for part in value.split(","))
    except ValueError:
        data = model = 0
    if data < 1 or model < 1:
        raise ValueError(f"--mesh={value!r}: expected two positive integers, data,model")
    return data, model


def _bytes_per_device(abstract_tree, shardings) -> int:
    """Bytes of `abstract_tree` that one device holds when placed by `shardings`."""
    return sum(
        math.prod(sharding.shard_shape(leaf.shape)) * np.dtype(leaf.dtype).itemsize
        for leaf, sharding in zip(jax.tree.leaves(abstract_tree), jax.tree.leaves(shardings))
    )


def _compiled_figures(compiled) -> dict:
    """Per-device bytes of `compiled.memory_analysis()` and FLOPs of `cost_analysis()`."""
    memory = compiled.memory_analysis()
    figures = {name: int(getattr(memory, field)) for name, field in _MEMORY_FIELDS.items()}
    # Peak-style total: the donated state is counted once (in the arguments, not the outputs).
    figures["total_bytes"] = (
        figures["argument_bytes"]
        + figures["output_bytes"]
        - figures["alias_bytes"]
        + figures["temp_bytes"]
        + figures["generated_code_bytes"]
    )
    figures["flops_per_device"] = inference.compiled_flops(compiled)
    return figures


def plan(
    config: ml_collections.ConfigDict, mesh_shape: tuple[int, int], batch_size: int, patch: int
) -> dict:
    """Compiles `config`'s train step for abstract inputs; returns its per-device figures."""
    config = config.copy_and_resolve_references()
    config.mesh.data, config.mesh.model = mesh_shape
    config.train.batch_size, config.data.patch_size = batch_size, patch
    methods.validate(config)
    mesh = sharding_lib.create_mesh(config.mesh)
    split = sharding_lib.batch_split(mesh, config.mesh.shard_params)
    if batch_size % split:
        raise ValueError(f"--batch={batch_size} must be a multiple of the {split} batch slices")
    steps = train.build_step_functions(config, mesh, train.example_batch())
    state = checkpoint_lib.abstract_with_shardings(steps.abstract_state, steps.state_sharding)
    batch = train.abstract_batch(steps, batch_size, patch)
    replicated = sharding_lib.replicated(mesh)
    frozen = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=replicated),
        train.with_copies(
            steps.method,
            jax.eval_shape(steps.method.frozen_params),
            steps.abstract_state.params,
        ),
    )
    phases = train.training_phases(steps.method, config.train.num_steps)
    return {
        "params": sum(leaf.size for leaf in jax.tree.leaves(steps.abstract_state.params)),
        "state_bytes_per_device": _bytes_per_device(steps.abstract_state, steps.state_sharding),
        "phases": {
            phase: _compiled_figures(steps.train_step.lower(state, batch, frozen, phase).compile())
            for phase in phases
        },
    }


def _size(num_bytes: float) -> str:
    if num_bytes >= 2**30:
        return f"{num_bytes / 2**30:9.2f} GiB"
    return f"{num_bytes / 2**20:9.2f} MiB"


def format_plan(result: dict) -> str:
    """A few lines per phase: bytes per device and GFLOP per step (per device and in all)."""
    data, model = result["mesh"]["data"], result["mesh"]["model"]
    devices = data * model
    header = (
        f"{result['config']}: batch {result['batch_size']}, patch {result['patch_size']}, "
        f"mesh data={data} model={model}, shard_params={result['shard_params']}, "
        f"{result['params'] / 1e6:.2f} M params, {result['platform']}"
    )
    lines = [
        header,
        f"  train state per device: {_size(result['state_bytes_per_device'])}",
    ]
    for phase, figures in result["phases"].items():
        lines.append(f"  phase {phase!r}, per device:")
        for name in (*_MEMORY_FIELDS, "total_bytes"):
            lines.append(f"    {name:<24}{_size(figures[name])}")
        gflops = figures["flops_per_device"] / 1e9
        lines.append(
            f"    {'GFLOP per step':<24}{gflops:9.2f} (all devices: {gflops * devices:.2f})"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = flags.FLAGS.config
    mesh_shape = parse_mesh(_MESH.value)
    batch_size = _BATCH.value or config.train.batch_size
    patch = _PATCH.value or config.data.patch_size
    result = {
        "config": config_flags.get_config_filename(flags.FLAGS["config"]),
        "overrides": [arg for arg in sys.argv[1:] if arg.startswith("--config.")],
        "mesh": {"data": mesh_shape[0], "model": mesh_shape[1]},
        "shard_params": bool(config.mesh.shard_params),
        "batch_size": batch_size,
        "patch_size": patch,
        "platform": f"{jax.default_backend()} ({jax.devices()[0].device_kind})",
        **plan(config, mesh_shape, batch_size, patch),
    }
    print(format_plan(result))
    if _JSON.value:
        path = pathlib.Path(_JSON.value)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    app.run(main)
