"""The one wrapper over Orbax: train state and data-iterator state saved and restored together."""

import logging
import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpointer:
    """Saves `(state, data_iterator_state)` under `<directory>/<step>/`, keeping the last K.

    The state is any pytree of arrays (restored with the shardings of a given abstract target); the
    data state is the JSON-serialisable dict of the grain iterator, so a resumed run sees exactly
    the batches an uninterrupted run would have seen.
    """

    def __init__(self, directory: str | pathlib.Path, *, keep: int, async_save: bool = True):
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, enable_async_checkpointing=async_save, create=True
        )
        self.directory = pathlib.Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "data")
        )

    def latest_step(self) -> int | None:
        """The newest fully written checkpoint's step, or None."""
        return self._manager.latest_step()

    def save(self, step: int, state: Any, data_state: dict) -> None:
        """Starts writing a checkpoint (in the background when async); returns once arrays are copied."""
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)
            ),
            force=True,
        )
        logging.info("Checkpoint for step %d started in %s", step, self.directory)

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
        """Restores the checkpoint at `step` into the structure, dtypes and shardings of `abstract_state`."""
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()
            ),
        )
        return restored["state"], restored["data"]

    def wait(self) -> None:
        """Blocks until background writes have finished."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def load_state(directory: str | pathlib.Path, step: int | None = None) -> tuple[int, dict]:
    """Reads a saved train state as nested dicts of numpy arrays (for evaluation or a teacher).

    Works whatever mesh wrote the checkpoint: every array is restored onto one local device.
    Returns `(step, state)` where state has the keys of `train.TrainState` (`params`,
    `ema_params`, ...). `step=None` takes the newest checkpoint.
    """
    directory = pathlib.Path(directory).absolute()
    if not directory.exists():
        raise FileNotFoundError(f"No checkpoint directory at {directory}")
    handlers = {"state": ocp.StandardCheckpointHandler(), "data": ocp.JsonCheckpointHandler()}
    with ocp.CheckpointManager(
        directory,
        options=ocp.CheckpointManagerOptions(read_only=True),
        item_handlers=handlers,
    ) as manager:
        step = manager.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"No checkpoint in {directory}")
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        abstract = jax.tree.map(
            lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
            manager.item_metadata(step)["state"],
        )
        restored = manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
        )
    return step, jax.device_get(restored["state"])


def abstract_with_shardings(abstract_tree: Any, shardings: Any) -> Any:
    """ShapeDtypeStructs carrying the target shardings, for `Checkpointer.restore`."""
    return jax.tree.map(
        lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
        abstract_tree,
        shardings,
    )
