"""Multi-process training: `python -m restorect_jax.main --distributed` with 2 real CPU processes.

The processes talk through a coordinator on 127.0.0.1 (a free port); each has 4 CPU devices, so
the job has the 8 devices of this test session's own single process, and the same mesh.
"""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import smoke
from restorect_jax import checkpoint as checkpoint_lib
from restorect_jax import train, writers

REPO = pathlib.Path(__file__).resolve().parents[1]
DEVICES_PER_PROCESS = 4
# Overrides of configs/smoke.py (6 steps, loss logged every 2, checkpoints every 3). Adam divides
# each gradient by its own RMS, so a parameter whose gradient is at the level of float rounding
# (the all-reduce sums in another order across processes than within one) still moves by up to
# the learning rate: at the smoke 2e-3 the attention q/k-norm scales ended 4.4e-5 apart. At 1e-4
# that noise is 20 times smaller, and a wrong batch would still move parameters by ~1e-4.
OVERRIDES = {"train.learning_rate": 1e-4, "train.keep_checkpoints": 3}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict[str, str]:
    """This session's JAX settings (conftest.py), with 4 CPU devices per process.

    No compilation cache: train.py turns it off in multi-process CPU jobs (see there).
    """
    xla_flags = re.sub(
        r"--xla_force_host_platform_device_count=\d+", "", os.environ.get("XLA_FLAGS", "")
    )
    env = {
        "PYTHONPATH": str(REPO),
        "JAX_PLATFORMS": "cpu",
        "PATH": "/usr/bin:/bin",
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={DEVICES_PER_PROCESS} {xla_flags}",
    }
    if "JAX_THREEFRY_PARTITIONABLE" in os.environ:
        env["JAX_THREEFRY_PARTITIONABLE"] = os.environ["JAX_THREEFRY_PARTITIONABLE"]
    return env


def _wait_for(text: str, log: pathlib.Path, processes: list, deadline: float) -> None:
    """Returns once `log` contains `text` (or a process ended, or the deadline passed)."""
    while time.monotonic() < deadline and all(p.poll() is None for p in processes):
        if text in log.read_text():
            return
        time.sleep(0.5)


def _launch(
    args: list[str],
    logs: pathlib.Path,
    *,
    process_ids=(0, 1),
    sigterm_after: str | None = None,
    timeout: float = 900,
) -> list[tuple[int, str]]:
    """Runs `python -m restorect_jax.main args --process_id=I` for each I; (status, log) each.

    `sigterm_after`: send SIGTERM to the first process once its log shows this text, as a
    scheduler pre-empting the job would. The processes are killed after `timeout` seconds.
    """
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for index in process_ids:
        with open(logs / f"process_{index}.log", "w") as log:
            command = [sys.executable, "-m", "restorect_jax.main", *args, f"--process_id={index}"]
            processes.append(
                subprocess.Popen(command, cwd=REPO, env=_env(), stdout=log, stderr=log)
            )
    deadline = time.monotonic() + timeout
    try:
        if sigterm_after is not None:
            _wait_for(sigterm_after, logs / f"process_{process_ids[0]}.log", processes, deadline)
            processes[0].send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return [
        (process.returncode, (logs / f"process_{index}.log").read_text())
        for index, process in zip(process_ids, processes)
    ]


def _distributed_args(workdir: pathlib.Path, tfds_dir: pathlib.Path) -> list[str]:
    overrides = {**OVERRIDES, "data.tfds_dir": tfds_dir}
    return [
        "--config=configs/smoke.py",
        f"--workdir={workdir}",
        "--distributed",
        f"--coordinator_address=127.0.0.1:{_free_port()}",
        "--num_processes=2",
        "--initialization_timeout=120",
        *(f"--config.{key}={value}" for key, value in overrides.items()),
    ]


class _ConcatenatedShards:
    """The global batches of a 2-process run in one process: shard 0's batch, then shard 1's.

    Process `i` of 2 reads records `i::2` with its own seed; the (data, model) mesh lists
    process 0's devices first, so its rows come first in the global batch.
    """

    def __init__(self, iterators):
        self._iterators = iterators

    def __next__(self) -> dict[str, np.ndarray]:
        batches = [next(iterator) for iterator in self._iterators]
        return {key: np.concatenate([batch[key] for batch in batches]) for key in batches[0]}

    def get_state(self) -> dict:
        return {"shards": [iterator.get_state() for iterator in self._iterators]}

    def set_state(self, state: dict) -> None:
        for iterator, shard_state in zip(self._iterators, state["shards"]):
            iterator.set_state(shard_state)


def _one_process_reference(monkeypatch, workdir: pathlib.Path, tfds_dir: pathlib.Path) -> None:
    """Trains uninterrupted in this process (8 devices) on the global batches of 2 processes."""
    make_train_iterator = train.data_lib.make_train_iterator

    def two_shards(data_config, *, batch_size, seed, shard_index, shard_count):
        assert (shard_index, shard_count) == (0, 1)
        shards = [
            make_train_iterator(
                data_config, batch_size=batch_size // 2, seed=seed, shard_index=i, shard_count=2
            )
            for i in range(2)
        ]
        return _ConcatenatedShards(shards)

    monkeypatch.setattr(train.data_lib, "make_train_iterator", two_shards)
    config = smoke.get_config()
    config.data.tfds_dir = str(tfds_dir)
    for key, value in OVERRIDES.items():
        section, name = key.split(".")
        config[section][name] = value
    train.train_and_evaluate(config, workdir)


def _losses(workdir: pathlib.Path) -> dict[int, float]:
    """Train loss by step from metrics.jsonl; each step must appear once (one writer)."""
    rows = [row for row in writers.read_metrics(workdir) if "train/loss" in row]
    assert len({row["step"] for row in rows}) == len(rows), rows
    return {row["step"]: row["train/loss"] for row in rows}


def _data_item(workdir: pathlib.Path, step: int) -> dict:
    """The `data` item of a checkpoint, as Orbax's JSON handler wrote it."""
    return json.loads((workdir / "checkpoints" / str(step) / "data" / "metadata").read_text())


def _assert_all_succeeded(results: list[tuple[int, str]], status: int, what: str) -> None:
    for index, (returncode, log) in enumerate(results):
        assert returncode == status, (
            f"process {index} of {what}: status {returncode}\n{log[-3000:]}"
        )


@pytest.mark.slow  # Two 2-process launches and a reference run: 3-10 min on 2 cores.
def test_two_processes_match_one_process_and_resume(tmp_path, monkeypatch):
    assert jax.device_count() == 2 * DEVICES_PER_PROCESS
    tfds_dir, workdir, reference = tmp_path / "tfds", tmp_path / "two", tmp_path / "one"
    args = _distributed_args(workdir, tfds_dir)

    # SIGTERM to process 0 before its first step: both processes save at step 2 (the first log
    # step) and exit with status 143; the same command then resumes and finishes the 6 steps.
    preempted = _launch(args, tmp_path / "logs_preempted", sigterm_after="Training teacher")
    _assert_all_succeeded(preempted, 143, "the pre-empted run")
    saved = _data_item(workdir, 2)[checkpoint_lib.PROCESS_STATES]
    resumed = _launch(_distributed_args(workdir, tfds_dir), tmp_path / "logs_resumed")
    _assert_all_succeeded(resumed, 0, "the resumed run")
    for index, (_, log) in enumerate(resumed):
        resume_line = f"Resumed from step 2 in {workdir / 'checkpoints'} (process {index} data "
        assert f"{resume_line}position {saved[index]})" in log, log[-3000:]
    # Process 0 alone writes samples (and metrics: `_losses` checks each step is logged once).
    samples = f"Wrote {workdir / 'samples'}"
    assert samples in resumed[0][1] and samples not in resumed[1][1]

    _one_process_reference(monkeypatch, reference, tfds_dir)

    losses, reference_losses = _losses(workdir), _losses(reference)
    assert sorted(losses) == sorted(reference_losses) == [2, 4, 6]
    for step in (2, 4, 6):
        np.testing.assert_allclose(losses[step], reference_losses[step], rtol=0, atol=1e-5)
    for step in (3, 6):
        _, state = checkpoint_lib.load_state(workdir / "checkpoints", step)
        _, expected = checkpoint_lib.load_state(reference / "checkpoints", step)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-5), state, expected
        )
        # Every process's data position was saved, in process order.
        (reference_state,) = _data_item(reference, step)[checkpoint_lib.PROCESS_STATES]
        assert _data_item(workdir, step)[checkpoint_lib.PROCESS_STATES] == reference_state["shards"]


# One process of a 2-process job that prepares the data and saves and restores a checkpoint.
_CHECKPOINT_WORKER = """
import json, pathlib, sys
import jax, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

address, index, root = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
jax.distributed.initialize(address, 2, index, initialization_timeout=120)
from configs import smoke
from restorect_jax import checkpoint, train

config = smoke.get_config()
config.data.tfds_dir = str(root / "tfds")
train._prepare_data_once(config.data)
built = sorted(p.parent.parent.name for p in (root / "tfds").glob("*/*/1.0.0/dataset_info.json"))
split = NamedSharding(Mesh(np.array(jax.devices()), ("data",)), PartitionSpec("data"))
local = np.arange(4, dtype=np.float32) + 4 * index
state = {"x": jax.make_array_from_process_local_data(split, local)}
checkpointer = checkpoint.Checkpointer(root / "checkpoints", keep=1, async_save=False)
checkpointer.save(1, state, {"next_index": 10 + index})
abstract = checkpoint.abstract_with_shardings(jax.eval_shape(lambda: state), {"x": split})
restored, data_state = checkpointer.restore(1, abstract)
checkpointer.close()
rows = [np.asarray(shard.data).tolist() for shard in restored["x"].addressable_shards]
print(json.dumps({"built": built, "data_state": data_state, "x": rows}))
"""


def test_two_processes_prepare_data_once_and_checkpoint_every_data_position(tmp_path):
    port = _free_port()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CHECKPOINT_WORKER,
                f"127.0.0.1:{port}",
                str(index),
                str(tmp_path),
            ],
            cwd=REPO,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for index in range(2)
    ]
    try:
        outputs = [process.communicate(timeout=300)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert [process.returncode for process in processes] == [0, 0], outputs
    results = [json.loads(output.strip().splitlines()[-1]) for output in outputs]
    # Process 1 passed the barrier only after process 0 had built the train and val datasets.
    assert len(results[1]["built"]) == 2, results[1]
    for index, result in enumerate(results):
        assert result["data_state"] == {"next_index": 10 + index}
        # 4 devices per process, one element of the 8-element array each.
        assert result["x"] == [[4.0 * index + i] for i in range(4)]
    saved = _data_item(tmp_path, 1)
    assert saved == {checkpoint_lib.PROCESS_STATES: [{"next_index": 10}, {"next_index": 11}]}


def _one_line_error(status: int, log: str) -> str:
    """The error line of a run that failed as it should: status 2, no traceback."""
    assert status == 2, log[-3000:]
    assert "Traceback" not in log and "Fatal Python error" not in log, log[-3000:]
    last = log.strip().splitlines()[-1]
    assert last.startswith("error: "), log[-3000:]
    return last


def _lone_process_args(tmp_path: pathlib.Path) -> list[str]:
    return [
        "--config=configs/smoke.py",
        f"--workdir={tmp_path / 'run'}",
        "--distributed",
        f"--coordinator_address=127.0.0.1:{_free_port()}",
        "--num_processes=2",
        "--initialization_timeout=3",
    ]


def test_unreachable_coordinator_is_a_one_line_error(tmp_path):
    # Process 1 alone: nobody listens at the coordinator address.
    ((status, log),) = _launch(
        _lone_process_args(tmp_path), tmp_path, process_ids=(1,), timeout=120
    )
    error = _one_line_error(status, log)
    assert "not all processes connected within 3 s" in error and "--coordinator_address" in error


def test_missing_process_is_a_one_line_error(tmp_path):
    # Process 0 alone: it starts the coordinator and waits for a process 1 that never comes.
    ((status, log),) = _launch(
        _lone_process_args(tmp_path), tmp_path, process_ids=(0,), timeout=120
    )
    assert "--num_processes=2" in _one_line_error(status, log)


def test_process_id_out_of_range_is_a_one_line_error(tmp_path):
    ((status, log),) = _launch(
        _lone_process_args(tmp_path), tmp_path, process_ids=(2,), timeout=120
    )
    assert (
        _one_line_error(status, log) == "error: --process_id=2: must be in 0..1 (--num_processes)"
    )


def test_each_process_restores_its_own_data_position(monkeypatch):
    saved = {checkpoint_lib.PROCESS_STATES: [{"next_index": 4}, {"next_index": 5}]}
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    for index in (0, 1):
        monkeypatch.setattr(jax, "process_index", lambda index=index: index)
        assert checkpoint_lib._own_process_state(saved, 6) == {"next_index": 4 + index}
    monkeypatch.setattr(jax, "process_count", lambda: 1)
    with pytest.raises(ValueError, match="holds the data positions of 2 processes; this job has 1"):
        checkpoint_lib._own_process_state(saved, 6)
    # A checkpoint written before the data item listed processes holds one process's state.
    monkeypatch.setattr(jax, "process_index", lambda: 0)
    assert checkpoint_lib._own_process_state({"next_index": 3}, 6) == {"next_index": 3}
