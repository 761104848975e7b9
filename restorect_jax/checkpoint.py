"""The one wrapper over Orbax: train state and data-iterator state saved and restored together."""

import contextlib
import json
import logging
import os
import pathlib
import shutil
import sys
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from restorect_jax import tree_shapes

# Key of the `data` item that lists the data-iterator state of every process, in process order.
PROCESS_STATES = "process_states"

# Orbax writes a checkpoint under `<step>.orbax-checkpoint-tmp...` and renames it when done.
_PARTIAL_GLOB = "*.orbax-checkpoint-tmp*"


# Orbax's per-checkpoint files besides the arrays (metadata, OCDBT manifests): about 3 MB.
_METADATA_BYTES = 4 * 2**20


def _nbytes(tree: Any) -> int:
    return sum(int(getattr(leaf, "nbytes", 0)) for leaf in jax.tree.leaves(tree))


def _is_closed_loop(error: BaseException | None) -> bool:
    return isinstance(error, RuntimeError) and str(error) == "Event loop is closed"


def _quiet_closed_loop_callbacks() -> None:
    """Drops the "Event loop is closed" errors that tensorstore's threads report (one traceback
    per pending array write) once Orbax has abandoned a failed write; installed once."""
    previous = sys.unraisablehook
    if getattr(previous, "quiets_closed_loops", False):
        return

    def hook(unraisable: Any) -> None:
        if not _is_closed_loop(unraisable.exc_value):
            previous(unraisable)

    hook.quiets_closed_loops = True
    sys.unraisablehook = hook


class CheckpointMismatchError(ValueError):
    """A checkpoint of another network than the config builds (not a damaged one)."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk, a lost mount); the message says which,
    why, and which checkpoint is the newest good one."""


def _item_handlers() -> dict[str, ocp.CheckpointHandler]:
    return {
        "state": ocp.StandardCheckpointHandler(),
        "data": ocp.JsonCheckpointHandler(),
        "copies": ocp.StandardCheckpointHandler(),
    }


class Checkpointer:
    """Saves `(state, data_iterator_state)` under `<directory>/<step>/`, keeping the last K.

    The state is any pytree of arrays (restored with the shardings of a given abstract target); the
    data state is the JSON-serialisable dict of the grain iterator, so a resumed run sees exactly
    the batches an uninterrupted run would have seen. In a multi-process job every process reads
    its own shard, so the `data` item holds every process's state (`{PROCESS_STATES: [...]}`)
    and each process restores its own; Orbax writes the arrays and that item once.
    """

    def __init__(self, directory: str | pathlib.Path, *, keep: int, async_save: bool = True):
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, enable_async_checkpointing=async_save, create=True
        )
        self.directory = pathlib.Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_handlers=_item_handlers()
        )
        self._writing: int | None = None  # the step of a save that may still be in the background
        self._failed = False
        _quiet_closed_loop_callbacks()

    def latest_step(self) -> int | None:
        """The newest fully written checkpoint's step, or None."""
        return self._manager.latest_step()

    def save(self, step: int, state: Any, data_state: dict, copies: Any = None) -> None:
        """Starts writing a checkpoint (in the background when async); returns once arrays are copied.

        `copies`: a method's frozen copies of its params (`train.FrozenCopies`), if it has any.
        Raises CheckpointWriteError when this write, or the previous background one, failed.
        """
        data = {PROCESS_STATES: _gather_process_states(data_state)}
        items = {"state": ocp.args.StandardSave(state), "data": ocp.args.JsonSave(data)}
        if copies:
            items["copies"] = ocp.args.StandardSave(copies)
        with self._reporting_failures():
            self._manager.wait_until_finished()  # the previous write's failure, if any
            self._writing = step
            self._check_free_space(step, _nbytes(state) + _nbytes(copies))
            self._manager.save(step, args=ocp.args.Composite(**items), force=True)
        logging.info("Checkpoint for step %d started in %s", step, self.directory)

    def _check_free_space(self, step: int, state_bytes: int) -> None:
        """Raises CheckpointWriteError before writing when the disk has clearly too little room.

        A checkpoint takes about its arrays' bytes plus a few MB of Orbax metadata; the older
        ones are deleted only once it is complete. Refusing up front leaves nothing to clean up;
        a disk that fills during the write is still handled (`_reporting_failures`).
        """
        needed = int(1.25 * state_bytes) + _METADATA_BYTES
        free = shutil.disk_usage(self.directory).free
        if free < needed:
            raise CheckpointWriteError(
                f"could not write the checkpoint of step {step} in {self.directory} (no space "
                f"left on the device: it needs about {needed / 1e6:.0f} MB, "
                f"{free / 1e6:.0f} MB are free); {self._newest_good()}"
            )

    @contextlib.contextmanager
    def _reporting_failures(self) -> Iterator[None]:
        """Turns a failed write (here or in Orbax's background threads) into one
        CheckpointWriteError, after removing the partial checkpoint it left."""
        try:
            yield
        except CheckpointWriteError:
            self._failed = True
            raise
        except (OSError, ValueError) as error:  # tensorstore reports ENOSPC as a ValueError
            self._failed = True
            with contextlib.suppress(Exception):  # let the other background writes end
                self._manager.wait_until_finished()
            self._remove_partial()
            why = _first_line(error)
            if "RESOURCE_EXHAUSTED" in why or "No space left" in why:
                why = "no space left on the device"
            raise CheckpointWriteError(
                f"could not write the checkpoint of step {self._writing} in {self.directory} "
                f"({why}); {self._newest_good()}"
            ) from None

    def _newest_good(self) -> str:
        latest = self._manager.latest_step()
        return "no checkpoint yet" if latest is None else f"newest good checkpoint: step {latest}"

    def _remove_partial(self) -> None:
        """Deletes Orbax's unfinished `<step>.orbax-checkpoint-tmp*` folders (process 0)."""
        if jax.process_index() != 0:
            return
        for partial in self.directory.glob(_PARTIAL_GLOB):
            shutil.rmtree(partial, ignore_errors=True)

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
        """Restores the checkpoint at `step` into the structure, dtypes and shardings of `abstract_state`.

        Returns the state and this process's data-iterator state.
        """
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()
            ),
        )
        return restored["state"], _own_process_state(restored["data"], step)

    def restore_copies(self, step: int, abstract_copies: Any) -> Any:
        """The frozen copies saved with the checkpoint at `step`, shaped like `abstract_copies`."""
        restored = self._manager.restore(
            step, args=ocp.args.Composite(copies=ocp.args.StandardRestore(abstract_copies))
        )
        return restored["copies"]

    def restore_newest(
        self, abstract_state: Any, abstract_copies: Any = None
    ) -> tuple[int, Any, dict, Any] | None:
        """(step, state, data state, copies) of the newest checkpoint that restores, or None.

        A checkpoint that fails to restore (a truncated or missing file) is moved to
        `<directory>_damaged/<step>` (`<step>_2`, ... if taken) with a warning, never deleted,
        and the next older one is tried; the run then resumes from there and writes its later
        steps afresh. A readable checkpoint of another network raises CheckpointMismatchError
        and stays where it is.
        """
        for step in sorted(self._manager.all_steps(), reverse=True):
            try:
                saved = self._manager.item_metadata(step)["state"]
                if saved is None:
                    raise FileNotFoundError("its state metadata is missing")
            except Exception as err:  # noqa: BLE001 (Orbax raises many types for a damaged file)
                self._set_aside(step, err)
                continue
            check_same_network(getattr(saved, "tree", saved), abstract_state, self.directory, step)
            try:
                state, data_state = self.restore(step, abstract_state)
                copies = (
                    None if abstract_copies is None else self.restore_copies(step, abstract_copies)
                )
            except Exception as err:  # noqa: BLE001 (Orbax raises many types for a damaged file)
                self._set_aside(step, err)
                continue
            return step, state, data_state, copies
        return None

    def _set_aside(self, step: int, err: Exception) -> None:
        folder = self.directory.with_name(self.directory.name + "_damaged")
        damaged, index = folder / str(step), 1
        while damaged.exists():  # a step set aside before keeps its place: never nest
            index += 1
            damaged = folder / f"{step}_{index}"
        why = _first_line(err)
        logging.warning(
            "Checkpoint step %d in %s cannot be restored (%s): moved to %s; trying an older one.",
            step,
            self.directory,
            why,
            damaged,
        )
        if jax.process_index() == 0:
            damaged.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self.directory / str(step), damaged)
        self._manager.reload()

    def wait(self) -> None:
        """Blocks until background writes have finished; CheckpointWriteError if one failed."""
        with self._reporting_failures():
            self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for background writes and closes; after a reported failure, closes quietly."""
        if self._failed:
            with contextlib.suppress(Exception):
                self._manager.close()
            self._remove_partial()
            return
        with self._reporting_failures():
            self._manager.wait_until_finished()
            self._manager.close()


def check_same_network(saved: Any, abstract_state: Any, directory: pathlib.Path, step: int):
    """Raises CheckpointMismatchError unless the saved state's params have the names and shapes
    of `abstract_state.params`, and its whole state the same multiset of shapes (optimiser
    included). A checkpoint of another network is refused, never set aside as damaged."""
    saved_params = saved["params"] if isinstance(saved, dict) and "params" in saved else {}
    difference = tree_shapes.first_difference(
        tree_shapes.shapes_by_path(abstract_state.params), tree_shapes.shapes_by_path(saved_params)
    )
    if difference:
        key, found, want = difference
        raise CheckpointMismatchError(
            f"checkpoint step {step} in {directory} is of another network: parameter {key} "
            f"is {found} there, the config builds {want}; resume with the run's own config or "
            "use a new --workdir"
        )
    want_all = sorted(map(str, tree_shapes.shapes_by_path(abstract_state).values()))
    found_all = sorted(map(str, tree_shapes.shapes_by_path(saved).values()))
    if want_all != found_all:
        raise CheckpointMismatchError(
            f"checkpoint step {step} in {directory} holds a train state of {len(found_all)} "
            f"arrays, the config builds {len(want_all)} (another optimiser or method?); resume "
            "with the run's own config or use a new --workdir"
        )


def _gather_process_states(data_state: dict) -> list[dict]:
    """Every process's `data_state`, in process order; all processes must call it together."""
    if jax.process_count() == 1:
        return [data_state]
    encoded = np.frombuffer(json.dumps(data_state).encode(), np.uint8)
    lengths = multihost_utils.process_allgather(np.asarray(encoded.size))
    padded = np.zeros(int(lengths.max()), np.uint8)
    padded[: encoded.size] = encoded
    rows = multihost_utils.process_allgather(padded)
    return [json.loads(row[:length].tobytes()) for row, length in zip(rows, lengths)]


def _own_process_state(data: dict, step: int) -> dict:
    """This process's entry of a saved `data` item (one written before multi-process is one state)."""
    states = data.get(PROCESS_STATES, [data])
    if len(states) != jax.process_count():
        raise ValueError(
            f"The checkpoint of step {step} holds the data positions of {len(states)} processes; "
            f"this job has {jax.process_count()}: resume with the same number of processes."
        )
    return states[jax.process_index()]


def save_params(directory: str | pathlib.Path, step: int, params: Any, data_state: dict) -> None:
    """One checkpoint at `step` whose `params` and `ema_params` are both `params` (no optimiser).

    What evaluation, bundling and a student's teacher read of a run, written without training:
    the tests' runs, a run unpacked from a GPU lease, a teacher's shapes for compiling ahead.
    """
    checkpointer = Checkpointer(directory, keep=1, async_save=False)
    checkpointer.save(step, {"params": params, "ema_params": params}, data_state)
    checkpointer.close()


def load_state(
    directory: str | pathlib.Path, step: int | None = None, item: str = "state"
) -> tuple[int, dict]:
    """Reads a saved train state as nested dicts of numpy arrays (for evaluation or a teacher).

    Works whatever mesh wrote the checkpoint: every array is restored onto one local device.
    Returns `(step, state)` where state has the keys of `train.TrainState` (`params`,
    `ema_params`, ...). `step=None` takes the newest checkpoint that restores: a damaged newer
    one (a truncated file) is skipped with a warning and left on disk. `item="copies"` reads a
    method's frozen copies instead.
    """
    directory = pathlib.Path(directory).absolute()
    if not directory.exists():
        raise FileNotFoundError(f"No checkpoint directory at {directory}")
    with ocp.CheckpointManager(
        directory,
        options=ocp.CheckpointManagerOptions(read_only=True),
        item_handlers=_item_handlers(),
    ) as manager:
        candidates = sorted(manager.all_steps(), reverse=True) if step is None else [step]
        if not candidates:
            raise FileNotFoundError(f"No checkpoint in {directory}")
        for candidate in candidates[:-1]:
            try:
                return candidate, _read_item(manager, candidate, item)
            except Exception:  # noqa: BLE001 (Orbax raises many types for a damaged file)
                logging.warning(
                    "Checkpoint step %d in %s cannot be restored; using an older one.",
                    candidate,
                    directory,
                )
        try:
            return candidates[-1], _read_item(manager, candidates[-1], item)
        except Exception as err:
            raise FileNotFoundError(
                f"checkpoint step {candidates[-1]} in {directory} cannot be restored: "
                f"{_first_line(err)}"
            ) from err


def _first_line(error: Exception) -> str:
    """The first line of an error's message (Orbax's run to pages), or its type's name."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def _read_item(manager: ocp.CheckpointManager, step: int, item: str) -> Any:
    """One item of one step as numpy arrays on this host (whatever mesh wrote it)."""
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
        manager.item_metadata(step)[item],
    )
    restored = manager.restore(
        step, args=ocp.args.Composite(**{item: ocp.args.StandardRestore(abstract)})
    )
    return jax.device_get(restored[item])


def abstract_with_shardings(abstract_tree: Any, shardings: Any) -> Any:
    """ShapeDtypeStructs carrying the target shardings, for `Checkpointer.restore`."""
    return jax.tree.map(
        lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
        abstract_tree,
        shardings,
    )
