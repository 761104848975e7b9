"""What every command line shares: one-line errors, tracebacks only when asked for."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable

DEBUG_ENV = "RESTORECT_DEBUG"  # set to 1 to see the Python traceback of any error


def one_line_errors(main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
    """`main` with any uncaught error printed as `error: <type>: <message>` (exit 1) and
    Ctrl-C as `interrupted` (exit 130); with RESTORECT_DEBUG=1 errors propagate unchanged."""

    @functools.wraps(main)
    def wrapped(argv: list[str]) -> None:
        try:
            main(argv)
        except KeyboardInterrupt:
            if os.environ.get(DEBUG_ENV):
                raise
            print("\ninterrupted", file=sys.stderr)
            raise SystemExit(130) from None
        except Exception as error:
            if os.environ.get(DEBUG_ENV):
                raise
            first = (str(error).strip().splitlines() or [""])[0]
            print(
                f"error: {type(error).__name__}: {first} ({DEBUG_ENV}=1 shows the traceback)",
                file=sys.stderr,
            )
            raise SystemExit(1) from None

    return wrapped
