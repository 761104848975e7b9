"""Command line: `python -m restorect_jax.main --config configs/<name>.py --workdir DIR`.

Any config field can be overridden, e.g. `--config.train.num_steps=10`. Re-running the same
command resumes from the newest checkpoint in DIR.

Multi-process jobs (TPU pods, multi-node GPU) run the same command on every process with
`--distributed`, which calls `jax.distributed.initialize()` first. On TPU pods, SLURM and Open
MPI it finds the coordinator, the process count and this process's id by itself; elsewhere pass
`--coordinator_address=HOST:PORT --num_processes=N --process_id=I` (I = 0 on HOST).

A mistake in the request (a bad or unknown config key, a missing data folder, a workdir that
cannot be written, a workdir whose run has another model) is one line on stderr and exit status
2; a checkpoint that cannot be written (a full disk) is one line and exit 1, with the partial
checkpoint removed. Ctrl-C saves a checkpoint and exits 130; SIGTERM saves one at the next log
step and exits 143. `RESTORECT_DEBUG=1` shows the traceback instead.
"""

import os
import pathlib
import re
import sys
import threading

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from restorect_jax import checkpoint as checkpoint_lib
from restorect_jax import cli, command_line, methods, signals, train, writers

_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize().")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "HOST:PORT of process 0 (--distributed; default: detected)."
)
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Number of processes (--distributed; default: detected)."
)
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's id, 0..num_processes-1 (--distributed; default: detected)."
)
_TIMEOUT = flags.DEFINE_integer(
    "initialization_timeout", 300, "Seconds to wait for every process to join (--distributed)."
)
_COMPILE_ONLY = flags.DEFINE_bool(
    "compile_only", False, "Compile the run's programs into the persistent cache, then exit."
)
config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])
# JAX's own connection deadline comes this long after ours, so ours is the one that fires.
_JAX_DEADLINE_MARGIN_S = 30


class DistributedSetupError(RuntimeError):
    """The processes of a --distributed job could not connect."""


def _setup_error(
    coordinator_address: str | None, num_processes: int | None, timeout: int, why: str
) -> DistributedSetupError:
    """The one-line error of a failed connection: what went wrong and which flags to check."""
    return DistributedSetupError(
        f"jax.distributed.initialize: {why}; check --coordinator_address={coordinator_address}, "
        f"that all --num_processes={num_processes} processes started within "
        f"--initialization_timeout={timeout} s, and that each has its own --process_id"
    )


def initialize_distributed(
    coordinator_address: str | None, num_processes: int | None, process_id: int | None, timeout: int
) -> None:
    """Calls `jax.distributed.initialize`; raises DistributedSetupError with a one-line message.

    Unset arguments are detected by JAX (TPU pods, SLURM, Open MPI). A wrong coordinator
    address, a missing process or a process count that does not match the processes started
    make JAX abort the process after its own deadline, with a C++ stack trace; a watchdog
    thread ends the process first, after `timeout` seconds, with a one-line error and status 2.
    """
    if coordinator_address is not None and not re.fullmatch(r".+:\d+", coordinator_address):
        raise DistributedSetupError(
            f"--coordinator_address={coordinator_address}: must be HOST:PORT"
        )
    if num_processes is not None and num_processes < 1:
        raise DistributedSetupError(f"--num_processes={num_processes}: must be >= 1")
    if None not in (num_processes, process_id) and not 0 <= process_id < num_processes:
        raise DistributedSetupError(
            f"--process_id={process_id}: must be in 0..{num_processes - 1} (--num_processes)"
        )
    connected = threading.Event()

    def watchdog() -> None:
        if not connected.wait(timeout):
            why = f"not all processes connected within {timeout} s"
            error = _setup_error(coordinator_address, num_processes, timeout, why)
            print(f"error: {error}", file=sys.stderr, flush=True)
            os._exit(2)  # the main thread is blocked inside JAX and cannot be interrupted

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        jax.distributed.initialize(
            coordinator_address,
            num_processes,
            process_id,
            initialization_timeout=timeout + _JAX_DEADLINE_MARGIN_S,
        )
    except (ValueError, TypeError, RuntimeError) as error:  # JaxRuntimeError is a RuntimeError
        why = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise _setup_error(coordinator_address, num_processes, timeout, why) from None
    finally:
        connected.set()


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    cluster_flags = (_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    if not _DISTRIBUTED.value and cluster_flags != (None, None, None):
        print(
            "error: --coordinator_address, --num_processes and --process_id need --distributed",
            file=sys.stderr,
        )
        raise SystemExit(2)
    if _DISTRIBUTED.value:
        try:
            initialize_distributed(
                _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, _TIMEOUT.value
            )
        except DistributedSetupError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
    logging.info(
        "JAX process %d/%d, devices: %s", jax.process_index(), jax.process_count(), jax.devices()
    )
    config = flags.FLAGS.config
    try:
        methods.validate(config)
        if _COMPILE_ONLY.value:
            train.compile_programs(config)
            return
        writers.ensure_writable_folder(pathlib.Path(_WORKDIR.value), "--workdir")
        result = train.train_and_evaluate(config, _WORKDIR.value)
    except (ValueError, FileNotFoundError) as error:
        if os.environ.get(cli.DEBUG_ENV):
            raise
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except checkpoint_lib.CheckpointWriteError as error:  # not the request's fault: exit 1
        if os.environ.get(cli.DEBUG_ENV):
            raise
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    if result["preempted"]:
        # 128 + SIGTERM, as if the signal had ended the process: schedulers see an unfinished job.
        # A second SIGTERM on the way out would only print a traceback from the exit hooks.
        signals.ignore_from_now_on()
        raise SystemExit(143)


def run() -> None:
    """The `restorect-train` console command (`python -m restorect_jax.main` is the same)."""
    error = (
        None if os.environ.get(cli.DEBUG_ENV) else command_line.check_training_command(sys.argv[1:])
    )
    if error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2)
    cli.console_command(__name__, main)


if __name__ == "__main__":
    run()
