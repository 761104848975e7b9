"""What a person sees on the terminal, and what goes to a log file.

The terminal (absl's stderr handler) shows this project's log lines, and other libraries'
warnings and errors that carry no traceback. It never shows Orbax's lines: its INFO lines run to
a thousand characters, and a failed background write logs one traceback per thread, while the
same failure reaches the main thread as an exception that the command reports in one line.
`--verbosity=1` (`-v 1`) shows everything.

A log file (`add_file`; training writes `<workdir>/train.log`) keeps every record, tracebacks
included.
"""

from __future__ import annotations

import logging
import pathlib
import sys

from absl import logging as absl_logging

_PACKAGE_DIR = str(pathlib.Path(__file__).resolve().parent)
_LIBRARY_MARKERS = ("site-packages", "dist-packages")


def is_project_record(record: logging.LogRecord) -> bool:
    """Whether a record comes from this package or a script beside it (not a library)."""
    path = record.pathname
    if path.startswith(_PACKAGE_DIR):
        return True
    return not (any(m in path for m in _LIBRARY_MARKERS) or path.startswith(sys.base_prefix))


class TerminalFilter(logging.Filter):
    """Keeps the project's records; of the others, warnings and errors without a traceback,
    and nothing of Orbax's. Lets everything through at absl verbosity 1 or more."""

    def filter(self, record: logging.LogRecord) -> bool:
        if absl_logging.get_verbosity() >= 1 or is_project_record(record):
            return True
        if "orbax" in record.pathname:
            return False
        return record.levelno >= logging.WARNING and not record.exc_info


_FILTER = TerminalFilter()


def quiet_terminal() -> None:
    """Installs `TerminalFilter` on absl's stderr handler (once)."""
    handler = absl_logging.get_absl_handler()
    if _FILTER not in handler.filters:
        handler.addFilter(_FILTER)


class _QuietFileHandler(logging.FileHandler):
    """A FileHandler that stops writing after its first failure (a full disk) instead of
    printing logging's own traceback for every record; the failure itself surfaces where the
    program writes its data."""

    def handleError(self, record: logging.LogRecord) -> None:
        del record
        self.setLevel(logging.CRITICAL + 1)


def add_file(path: pathlib.Path) -> logging.Handler:
    """Appends every log record, tracebacks included, to `path`; returns the handler, which the
    caller removes (`remove_file`) when done."""
    handler = _QuietFileHandler(path, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(filename)s:%(lineno)d] %(message)s")
    )
    logging.getLogger().addHandler(handler)
    return handler


def remove_file(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()
