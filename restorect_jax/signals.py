"""Ctrl-C and SIGTERM: how each command stops cleanly.

- `restore`, `evaluate` and `export` treat SIGTERM as Ctrl-C (`Terminated`, a KeyboardInterrupt),
  so the same clean-up runs: no partial file, the count done, exit 128 + the signal number.
- Training turns SIGTERM into a flag (`StopSignal`) checked at log steps, where it checkpoints
  and stops (a pre-empted job resumes from there).
- While a checkpoint is being written, both signals wait (`deferred`): an interrupted Orbax write
  leaves a half-written folder and a flood of background-thread tracebacks.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

_STOPPING = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C's KeyboardInterrupt is."""


def interrupt_exit_code(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal's number: 143 for SIGTERM, 130 for Ctrl-C."""
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


def raise_terminated(signum: int, frame: Any) -> None:
    """A SIGTERM handler: raises `Terminated`."""
    raise Terminated


def ignore_from_now_on() -> None:
    """Ignores Ctrl-C and SIGTERM for the rest of the process: it is already on its way out, and
    a signal during the interpreter's exit hooks (JAX clears its caches there) would print a
    traceback instead of stopping anything sooner."""
    for signum in _STOPPING:
        _install(signum, signal.SIG_IGN)


def _install(signum: int, handler: Callable | int) -> Callable | int | None:
    """`signal.signal`, or None outside the main thread (where no signal is delivered)."""
    try:
        return signal.signal(signum, handler)
    except ValueError:
        return None


class StopSignal:
    """Turns SIGTERM (a pre-empted or killed job) into a flag the loop checks between steps."""

    def __init__(self):
        self.requested = False
        self._previous = _install(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        del signum, frame
        self.requested = True

    def restore(self) -> None:
        """Puts the previous handler back (the command line then ignores further signals on its
        way out: `ignore_from_now_on`)."""
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


@contextlib.contextmanager
def deferred(notice: str, *, replay: bool = True) -> Iterator[None]:
    """Holds Ctrl-C and SIGTERM back for the enclosed block (a checkpoint being written).

    A signal that arrives prints `notice` once. With `replay`, it is delivered to the previous
    handler when the block ends (Ctrl-C then raises KeyboardInterrupt there); without, it is
    dropped, for a block that already runs on the way out.
    """
    received: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        if not received:
            print(notice, file=sys.stderr, flush=True)
        received.append(signum)

    previous = {signum: _install(signum, hold) for signum in _STOPPING}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)
    if replay:
        for signum in dict.fromkeys(received):
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
