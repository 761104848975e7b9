"""What every command line shares: one-line errors, tracebacks only when asked for, and the
persistent compilation cache."""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable

import jax

from restorect_jax import logs, signals

DEBUG_ENV = "RESTORECT_DEBUG"  # set to 1 to see the Python traceback of any error


def one_line_errors(main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
    """`main` with any uncaught error printed as `error: <type>: <message>` (exit 1) and Ctrl-C
    or SIGTERM as `interrupted` (exit 130 or 143); with RESTORECT_DEBUG=1 errors propagate
    unchanged. SIGTERM raises `signals.Terminated` while `main` runs (training replaces that
    handler with its own, which stops at the next log step). Once interrupted, further signals
    are ignored: a second Ctrl-C would otherwise land in JAX's exit hooks as a traceback.
    Library log chatter is kept off the terminal (`logs.quiet_terminal`)."""

    @functools.wraps(main)
    def wrapped(argv: list[str]) -> None:
        previous = signal.signal(signal.SIGTERM, signals.raise_terminated)
        logs.quiet_terminal()
        try:
            main(argv)
        except KeyboardInterrupt as interrupt:
            signals.ignore_from_now_on()
            if os.environ.get(DEBUG_ENV):
                raise
            print("\ninterrupted", file=sys.stderr)
            raise SystemExit(signals.interrupt_exit_code(interrupt)) from None
        except Exception as error:
            if os.environ.get(DEBUG_ENV):
                raise
            first = (str(error).strip().splitlines() or [""])[0]
            print(
                f"error: {type(error).__name__}: {first} ({DEBUG_ENV}=1 shows the traceback)",
                file=sys.stderr,
            )
            raise SystemExit(1) from None
        finally:
            if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
                signal.signal(signal.SIGTERM, previous)

    return wrapped


def console_command(module: str, main: Callable[[list[str]], None]) -> None:
    """Runs `main` as a console command (`restorect-restore`, ...) the way `python -m module`
    runs it: absl lists a program's own flags under its `--help` by the program's file name,
    so the flags that `module` defines are registered under that name too."""
    from absl import app, flags

    for flag in flags.FLAGS.get_flags_for_module(module):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(one_line_errors(main))


def enable_compilation_cache(cache_dir: str | None) -> None:
    """Turns on JAX's persistent compilation cache in `cache_dir` (a run's or a bundle's
    `compilation_cache_dir`), unless JAX_COMPILATION_CACHE_DIR already sets one.

    Off for multi-process CPU jobs: only process 0 writes the cache, so it can load a program
    the others still compile, and a gloo collective fails when its processes reach it more than
    30 s apart.
    """
    if jax.process_count() > 1 and jax.default_backend() == "cpu":
        jax.config.update("jax_enable_compilation_cache", False)
        return
    if cache_dir and not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(cache_dir))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
