"""The one rule for every file the project writes: nothing existing is replaced unless asked.

A file is written under a temporary name in its target's folder, then published:

- without `overwrite`, by `os.link(temporary, target)`, which fails atomically when `target`
  exists, so two processes writing the same name never replace each other's file. A taken name
  is an error (`on_taken="error"`) or moves on to `<stem>_2<suffix>`, `_3`, ... (`"number"`);
- with `overwrite`, by `os.replace`, which swaps the whole file in one step.

The temporary name is short (`.<pid>-<8 hex>.partial`, under 32 bytes) and unique per process
and call, so it fits beside any legal file name and concurrent writers never share one. On any
error, Ctrl-C or SIGTERM raised as an exception, the temporary file is removed.
"""

from __future__ import annotations

import errno
import os
import pathlib
import secrets
from collections.abc import Callable
from typing import Literal

OnTaken = Literal["error", "number"]

# Filesystems without hard links (FAT, some network mounts) answer os.link with one of these.
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


class FileTakenError(FileExistsError):
    """The target exists and `overwrite` was not given; the message names the file."""

    def __init__(self, path: pathlib.Path):
        super().__init__(errno.EEXIST, f"{path} exists (pass --overwrite to replace it)")
        self.path = path

    def __str__(self) -> str:
        return self.strerror


def temporary_path(target: pathlib.Path) -> pathlib.Path:
    """A fresh hidden name beside `target`, unique to this process and call."""
    return target.with_name(f".{os.getpid()}-{secrets.token_hex(4)}.partial")


def numbered(path: pathlib.Path, index: int) -> pathlib.Path:
    """`path` for index 1, else `<stem>_<index><suffix>`."""
    return path if index == 1 else path.with_name(f"{path.stem}_{index}{path.suffix}")


def _publish(temporary: pathlib.Path, target: pathlib.Path, overwrite: bool) -> None:
    """Gives `temporary`'s file the name `target`; FileExistsError when taken (not overwriting)."""
    if overwrite:
        os.replace(temporary, target)
        return
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        # No hard links: claim the name by exclusive creation, then move the file onto the claim.
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        os.replace(temporary, target)
        return
    os.unlink(temporary)


def write_new(
    target: str | pathlib.Path,
    write: Callable[[pathlib.Path], None],
    *,
    overwrite: bool = False,
    on_taken: OnTaken = "error",
) -> pathlib.Path:
    """Calls `write(temporary_path)`, then publishes that file as `target`; returns its path.

    Args:
      target: the file wanted.
      write: writes the whole file at the path it is given.
      overwrite: replace an existing `target` (atomically) instead of keeping it.
      on_taken: without `overwrite`, a taken `target` raises FileTakenError ("error") or the
        file goes to the first free `<stem>_<n><suffix>`, n = 2, 3, ... ("number").
    """
    target = pathlib.Path(target)
    temporary = temporary_path(target)
    try:
        write(temporary)
        index = 1
        while True:
            candidate = numbered(target, index)
            try:
                _publish(temporary, candidate, overwrite)
            except FileExistsError:
                if on_taken == "error":
                    raise FileTakenError(candidate) from None
                index += 1
                continue
            return candidate
    finally:
        temporary.unlink(missing_ok=True)


def write_text_new(
    target: str | pathlib.Path,
    text: str,
    *,
    overwrite: bool = False,
    on_taken: OnTaken = "error",
) -> pathlib.Path:
    """`write_new` of a text file."""
    return write_new(
        target, lambda path: path.write_text(text), overwrite=overwrite, on_taken=on_taken
    )
