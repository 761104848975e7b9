"""Device mesh and the shardings of train states and batches.

The mesh has two axes, `data` and `model`. By default batches are split along `data` and the
parameters, EMA and optimiser state are replicated (pure data parallelism; devices on the
`model` axis repeat the same work). With `config.mesh.shard_params` (FSDP) each leaf of the train
state is split along `model` (`fsdp_spec`: over its largest axis divisible by the `model` axis
size, the last such axis on a tie; leaves with fewer than `config.mesh.shard_min_size` elements,
scalars and leaves with no divisible axis stay replicated) and batches are split along both axes,
so every device has its own slice of the batch. XLA gathers the parameters each computation
needs inside the jitted step and reduce-scatters the gradients: the step computes what the
replicated one does. Orbax saves the shards; a checkpoint restores onto any mesh.
"""

import math

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"
MODEL_AXIS = "model"


def create_mesh(mesh_config: ml_collections.ConfigDict, devices=None) -> Mesh:
    """Builds a (data, model) mesh over `devices` (default: all) from `config.mesh`.

    `mesh.data = -1` takes every device not used by the model axis.
    """
    devices = list(jax.devices() if devices is None else devices)
    model = mesh_config.model
    data = mesh_config.data
    if model < 1 or len(devices) % model:
        raise ValueError(
            f"config.mesh.model={model} must be >= 1 and divide the {len(devices)} devices."
        )
    if data == -1:
        data = len(devices) // model
    if data < 1 or data * model > len(devices):
        raise ValueError(
            f"config.mesh.data={mesh_config.data} times config.mesh.model={model} needs "
            f"{data * model} devices; {len(devices)} are available."
        )
    grid = np.asarray(devices[: data * model]).reshape(data, model)
    return Mesh(grid, (DATA_AXIS, MODEL_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """A sharding that places a full copy of an array on every device of the mesh."""
    return NamedSharding(mesh, PartitionSpec())


def _batch_axes(shard_params: bool) -> tuple[str, ...]:
    return (DATA_AXIS, MODEL_AXIS) if shard_params else (DATA_AXIS,)


def batch_sharding(mesh: Mesh, shard_params: bool = False) -> NamedSharding:
    """A sharding that splits the leading (batch) axis over the mesh's data axis.

    With sharded parameters (`config.mesh.shard_params`) it splits it over both axes.
    """
    return NamedSharding(mesh, PartitionSpec(_batch_axes(shard_params)))


def batch_split(mesh: Mesh, shard_params: bool = False) -> int:
    """How many slices `batch_sharding` cuts a batch into (the batch size must be a multiple)."""
    return math.prod(mesh.shape[axis] for axis in _batch_axes(shard_params))


def fsdp_spec(shape: tuple[int, ...], axis_size: int, min_size: int) -> PartitionSpec:
    """Where one state leaf of `shape` goes when parameters are sharded over `axis_size` devices.

    Its largest axis divisible by `axis_size` (the last such axis on a tie) is split along the
    mesh's model axis. Leaves with fewer than `min_size` elements, scalars, leaves with no such
    axis, and any leaf when `axis_size` is 1 are replicated (`PartitionSpec()`).
    """
    candidates = [(size, axis) for axis, size in enumerate(shape) if size % axis_size == 0]
    if axis_size == 1 or not shape or math.prod(shape) < min_size or not candidates:
        return PartitionSpec()
    _, axis = max(candidates)
    return PartitionSpec(*([None] * axis), MODEL_AXIS)


def state_shardings(mesh: Mesh, abstract_state, *, shard_params: bool = False, min_size: int = 0):
    """The shardings of a train state (any pytree of arrays or ShapeDtypeStructs).

    Every leaf is replicated, or with `shard_params` placed by `fsdp_spec` over the mesh's model
    axis (`min_size`: leaves with fewer elements stay replicated).
    """
    if not shard_params:
        return jax.tree.map(lambda _: replicated(mesh), abstract_state)
    axis_size = mesh.shape[MODEL_AXIS]
    return jax.tree.map(
        lambda leaf: NamedSharding(mesh, fsdp_spec(leaf.shape, axis_size, min_size)),
        abstract_state,
    )


def global_batch(
    local_batch: dict[str, np.ndarray], sharding: NamedSharding
) -> dict[str, jax.Array]:
    """Assembles this process's part of the batch into global arrays split along `data`."""
    return {
        key: jax.make_array_from_process_local_data(sharding, value)
        for key, value in local_batch.items()
    }
