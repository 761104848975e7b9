"""Device mesh and the shardings of train states and batches.

The mesh has two axes, `data` and `model`. Batches are split along `data`; parameters, EMA and
optimiser state are replicated (pure data parallelism). The `model` axis exists so that configs
and checkpoints keep their shape when parameter sharding is added.
"""

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


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """A sharding that splits the leading (batch) axis over the mesh's data axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def state_shardings(mesh: Mesh, abstract_state):
    """The shardings of a train state: every leaf replicated over the mesh."""
    return jax.tree.map(lambda _: replicated(mesh), abstract_state)


def global_batch(
    local_batch: dict[str, np.ndarray], sharding: NamedSharding
) -> dict[str, jax.Array]:
    """Assembles this process's part of the batch into global arrays split along `data`."""
    return {
        key: jax.make_array_from_process_local_data(sharding, value)
        for key, value in local_batch.items()
    }
