"""Scalar and image summaries: TensorBoard event files (tensorboardX), a JSON-lines log, PNGs.

`clu.metric_writers` needs TensorFlow; tensorboardX writes the same event files without it.
Only process 0 writes.
"""

import contextlib
import fcntl
import json
import logging
import os
import pathlib
import tempfile
import time
from collections.abc import Iterator, Mapping

import jax
import numpy as np
from PIL import Image

from restorect_jax import safe_files

class MetricWriter:
    """Writes scalars to `<workdir>/metrics.jsonl`, TensorBoard events and the log."""

    def __init__(self, workdir: str | pathlib.Path):
        self._active = jax.process_index() == 0
        self._dir = pathlib.Path(workdir)
        self._tensorboard = None
        if self._active:
            self._dir.mkdir(parents=True, exist_ok=True)
            try:  # imported here: the commands that only restore never load it
                from tensorboardX import SummaryWriter
            except ImportError:  # scalars still go to metrics.jsonl and the log
                SummaryWriter = None
            if SummaryWriter is not None:
                self._tensorboard = SummaryWriter(str(self._dir / "tensorboard"))

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        if not self._active:
            return
        values = {key: float(value) for key, value in scalars.items()}
        with open(self._dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self._tensorboard is not None:
            for key, value in values.items():
                self._tensorboard.add_scalar(key, value, step)
            self._tensorboard.flush()

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()


def read_metrics(workdir: str | pathlib.Path) -> list[dict]:
    """Reads back every row written by `MetricWriter.write_scalars`."""
    path = pathlib.Path(workdir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


class RunClock:
    """Wall and CPU seconds a run has spent, summed over every process that resumed it.

    CPU seconds are this process's user + system time (all its threads): on an idle 2-core
    machine about twice the wall seconds; less than that when other work shares the cores, so
    the pair shows contention. A resumed run starts from the last values in `metrics.jsonl`.
    """

    WALL, CPU = "time/wall_seconds", "time/cpu_seconds"

    def __init__(self, workdir: str | pathlib.Path):
        rows = [row for row in read_metrics(workdir) if self.WALL in row]
        self._wall0 = rows[-1][self.WALL] if rows else 0.0
        self._cpu0 = rows[-1][self.CPU] if rows else 0.0
        self._wall_start, self._cpu_start = time.perf_counter(), time.process_time()

    def scalars(self) -> dict[str, float]:
        """`{time/wall_seconds, time/cpu_seconds}` so far."""
        return {
            self.WALL: self._wall0 + time.perf_counter() - self._wall_start,
            self.CPU: self._cpu0 + time.process_time() - self._cpu_start,
        }


def image_grid(rows: list[list[np.ndarray]], pad: int = 4) -> np.ndarray:
    """Tiles rows of (H, W, 3) images in [0, 1] into one uint8 image, each row scaled to one height."""
    height = max(image.shape[0] for row in rows for image in row)
    tiles = []
    for row in rows:
        cells = []
        for image in row:
            image = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
            pil = Image.fromarray((image * 255.0 + 0.5).astype(np.uint8))
            width = max(1, round(pil.width * height / pil.height))
            cells.append(np.asarray(pil.resize((width, height), Image.BICUBIC)))
            cells.append(np.full((height, pad, 3), 255, np.uint8))
        tiles.append(np.concatenate(cells[:-1], axis=1))
    width = max(tile.shape[1] for tile in tiles)
    canvas = []
    for tile in tiles:
        canvas.append(
            np.pad(tile, ((0, pad), (0, width - tile.shape[1]), (0, 0)), constant_values=255)
        )
    return np.concatenate(canvas, axis=0)[:-pad]


def save_png(
    path: str | pathlib.Path,
    image: np.ndarray,
    *,
    overwrite: bool = False,
    on_taken: safe_files.OnTaken = "error",
) -> None:
    """Writes a uint8 (H, W, 3) image as PNG (process 0 only), by `safe_files.write_new`."""
    if jax.process_index() != 0:
        return
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = safe_files.write_new(
        path,
        lambda temporary: Image.fromarray(image).save(temporary, format="PNG"),
        overwrite=overwrite,
        on_taken=on_taken,
    )
    logging.info("Wrote %s", written)


class FolderError(ValueError):
    """An output folder that cannot be used; the message names the flag and the path."""


def ensure_writable_folder(folder: pathlib.Path, flag: str) -> None:
    """Creates `folder` if needed and checks a file can be written in it.

    Raises FolderError (`<flag> <folder>: ...`) for a path that is a file or cannot be written,
    before any work is done.
    """
    if folder.exists() and not folder.is_dir():
        raise FolderError(f"{flag} {folder}: is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise FolderError(f"{flag} {folder}: cannot write there ({err.strerror})") from None


class WorkdirInUseError(ValueError):
    """Another live process trains in the same workdir."""


@contextlib.contextmanager
def workdir_lock(workdir: pathlib.Path) -> Iterator[None]:
    """Holds an exclusive lock on `<workdir>/.lock` (its PID inside) for the enclosed run.

    `flock` locks end with the process that holds them, so a run killed with -9 leaves no
    stale lock behind. Raises WorkdirInUseError naming the holder when the lock is taken.
    """
    file = (workdir / ".lock").open("a+")
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.seek(0)
        holder = file.read().strip() or "unknown"
        file.close()
        raise WorkdirInUseError(
            f"workdir {workdir} is in use by process {holder}; wait for it to end or pass "
            "another --workdir"
        ) from None
    try:
        file.seek(0)
        file.truncate()
        file.write(str(os.getpid()))
        file.flush()
        yield
    finally:
        fcntl.flock(file, fcntl.LOCK_UN)
        file.close()
