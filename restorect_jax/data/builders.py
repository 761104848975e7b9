"""TFDS datasets built from a local folder of images, with no TensorFlow.

A folder of images becomes an ArrayRecord TFDS dataset with one split, ``train``, whose
records are read back at random through ``builder.as_data_source('train')``:

* clean folder: every image of the folder gives ``{'gt': uint8 (H, W, 3), 'name': bytes}``;
* paired folder: two subfolders (for example Rain100H ``rain``/``norain``) holding images with
  the same file names give ``{'lq': uint8 (H, W, 3), 'gt': uint8 (H, W, 3), 'name': bytes}``.

Records follow the file names in sorted order, so record ``i`` is always the ``i``-th file.
Each image is opened with PIL, fully decoded (which validates it), turned upright by its EXIF
orientation and converted to 3-channel RGB (grey images repeat their channel), then stored as
raw uint8 bytes: the pixels read back equal the decoded source pixels. Raw storage takes more
disk than PNG (481x321 RGB: 463 KB against about 250 KB) but reads about 6x faster, because a
training step crops a small patch from a whole decoded image.

The dataset's config name is a fingerprint of the folder (relative paths, sizes and
modification times of its images, hashed), so a changed folder or another folder gets its own
dataset under the same ``tfds_dir`` and a stale dataset is never read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import io
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, ImageOps

BuilderT = TypeVar("BuilderT", bound=tfds.core.DatasetBuilder)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
SPLIT = "train"
_MISSING_FOLDER_HINT = (
    "set the config key data.root or the environment variable RESTORECT_DATA_DIR to the "
    "benchmark data directory, and data.train_dir / data.val_dir relative to it"
)


class CorruptImageError(ValueError):
    """An image file that PIL cannot open or fully decode."""


@dataclasses.dataclass(frozen=True)
class FolderSpec:
    """What a dataset is built from.

    Attributes:
      folder: the image folder (clean) or the folder holding the two subfolders (paired).
      paired: whether LQ and GT images come from ``lq_subdir`` and ``gt_subdir``.
      lq_subdir: subfolder of degraded inputs (paired only).
      gt_subdir: subfolder of ground truths (paired only).
    """

    folder: Path
    paired: bool = False
    lq_subdir: str = "rain"
    gt_subdir: str = "norain"

    def image_dirs(self) -> dict[str, Path]:
        """Maps each image feature name to the folder its files come from."""
        if self.paired:
            return {"lq": self.folder / self.lq_subdir, "gt": self.folder / self.gt_subdir}
        return {"gt": self.folder}


def list_images(folder: Path) -> list[Path]:
    """Returns the image files directly inside ``folder``, sorted by file name."""
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: p.name,
    )


def list_records(spec: FolderSpec) -> list[dict[str, Path]]:
    """Returns one ``{feature: path}`` dict per record, in sorted file-name order.

    For a paired folder, every GT file needs an LQ file of the same name and vice versa.
    """
    if not spec.folder.is_dir():
        raise FileNotFoundError(f"image folder {spec.folder} is missing; {_MISSING_FOLDER_HINT}")
    dirs = spec.image_dirs()
    for key, folder in dirs.items():
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder} does not exist: the paired folder {spec.folder} needs it for its "
                f"{key} images (config key data.{key}_subdir)"
            )
    listings = {key: {p.name: p for p in list_images(d)} for key, d in dirs.items()}
    names = sorted(set().union(*listings.values()))
    for key, files in listings.items():
        for name in names:
            if name not in files:
                partner = next(listings[k][name] for k in listings if name in listings[k])
                raise FileNotFoundError(
                    f"{partner} has no partner {dirs[key] / name} in the paired folder "
                    f"{spec.folder} ({key} images come from {dirs[key]})"
                )
    if not names:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise FileNotFoundError(f"no images ({suffixes}) in {', '.join(map(str, dirs.values()))}")
    return [{key: listings[key][name] for key in dirs} for name in names]


def folder_fingerprint(spec: FolderSpec) -> str:
    """Hashes the layout and the listing of the folder into 16 hex characters.

    The hash covers the builder kind (clean or paired and the subfolder names) and, for every
    image, its path relative to ``spec.folder``, its size in bytes and its modification time
    in nanoseconds: editing, adding, removing or renaming an image changes the fingerprint.
    """
    digest = hashlib.sha256(repr((spec.paired, spec.lq_subdir, spec.gt_subdir)).encode())
    for record in list_records(spec):
        for path in record.values():
            stat = path.stat()
            entry = f"{path.relative_to(spec.folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
            digest.update(entry.encode())
    return digest.hexdigest()[:16]


def load_image(path: Path, mode: str = "RGB") -> Image.Image:
    """Opens and fully decodes ``path``, applies its EXIF orientation, converts it to ``mode``.

    ``mode`` is "RGB" (grey images repeat their channel) or "L" (RGB images become BT.601
    luma). 8-bit images only: 16-bit and float modes (PIL ``I*``, ``F``) would not convert
    without loss, so they raise a ``ValueError``.
    """
    try:
        with Image.open(path) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)  # A new image, valid after closing the file.
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise CorruptImageError(f"cannot read image {path}: {err}") from err
    if upright.mode.startswith(("I", "F")):
        raise ValueError(f"image {path} has the {upright.mode} mode; only 8-bit is supported")
    return upright.convert(mode)


def _config_name(spec: FolderSpec) -> str:
    """A readable, unique config name: the folder's name, the kind and the fingerprint."""
    slug = re.sub(r"[^a-z0-9]+", "_", spec.folder.name.lower()).strip("_") or "images"
    kind = "paired" if spec.paired else "clean"
    return f"{slug}_{kind}_{folder_fingerprint(spec)}"


@contextlib.contextmanager
def quiet_tfds() -> Iterator[None]:
    """Silences TFDS inside the block: its stdout messages, progress bars and absl warnings."""
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        absl_logger.setLevel(level)


class ImageFolderBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """TFDS builder over one local image folder (see the module docstring for the records)."""

    name = "restorect_image_folder"
    VERSION = tfds.core.Version("1.0.0")  # Bump when the records change: old builds go unread.
    # No checksum or metadata files live next to this code. Also avoids TFDS 4.9.10's lookup
    # of the code's location, which imports the absent `importlib_resources` package.
    code_path = None

    def __init__(
        self,
        *,
        spec: FolderSpec,
        data_dir: str | Path,
        config: tfds.core.BuilderConfig | None = None,
        version: str | None = None,
    ):
        """Opens (not builds) the dataset of ``spec`` under ``data_dir``.

        ``config`` defaults to the folder's fingerprint config; it is passed explicitly only
        when a pickled builder (for example in a grain worker process) is restored, so that the
        restored builder reads the same dataset without listing the folder again.
        """
        self._spec = spec
        if config is None:
            config = tfds.core.BuilderConfig(name=_config_name(spec), description=str(spec.folder))
        with quiet_tfds():  # TFDS warns of a "custom data configuration" on every construction.
            super().__init__(
                data_dir=data_dir, config=config, version=version, file_format="array_record"
            )
        # TFDS pickles a builder as the keyword arguments of its __init__.
        self._original_state["spec"] = spec

    def _info(self) -> tfds.core.DatasetInfo:
        image = tfds.features.Tensor(shape=(None, None, 3), dtype=np.uint8, encoding="bytes")
        features = {key: image for key in self._spec.image_dirs()}
        features["name"] = tfds.features.Text()
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"Images of {self._spec.folder}, sorted by file name.",
            features=tfds.features.FeaturesDict(features),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Local files only.
        return {SPLIT: self._generate_examples()}

    def _generate_examples(self) -> Iterator[tuple[int, dict[str, object]]]:
        for index, record in enumerate(list_records(self._spec)):
            images = {key: np.asarray(load_image(path)) for key, path in record.items()}
            if len({image.shape for image in images.values()}) > 1:
                sizes = ", ".join(f"{p} is {images[k].shape}" for k, p in record.items())
                raise ValueError(f"paired images differ in shape (H, W, C): {sizes}")
            yield index, {**images, "name": record["gt"].name}


def build_image_folder(
    folder: str | Path,
    tfds_dir: str | Path,
    *,
    paired: bool = False,
    lq_subdir: str = "rain",
    gt_subdir: str = "norain",
) -> ImageFolderBuilder:
    """Builds the dataset of ``folder`` under ``tfds_dir`` unless it is already built.

    Args:
      folder: the image folder (clean) or the folder holding ``lq_subdir`` and ``gt_subdir``.
      tfds_dir: TFDS data directory; datasets live in
        ``<tfds_dir>/restorect_image_folder/<folder name>_<kind>_<fingerprint>/1.0.0``.
      paired: read LQ/GT pairs from the two subfolders instead of clean images.
      lq_subdir: subfolder of degraded inputs (paired only).
      gt_subdir: subfolder of ground truths (paired only).

    Returns:
      The builder; ``builder.as_data_source('train')`` gives the records by index.

    Raises:
      FileNotFoundError: the folder (or a subfolder, or a pair partner) is missing, or empty.
      CorruptImageError: an image cannot be decoded (the message names the file).
    """
    spec = FolderSpec(Path(folder), paired, lq_subdir, gt_subdir)
    return prepare_locked(lambda: ImageFolderBuilder(spec=spec, data_dir=tfds_dir), tfds_dir)


def prepare_locked(make_builder: Callable[[], BuilderT], tfds_dir: str | Path) -> BuilderT:
    """Opens a builder and builds its dataset unless built, holding the `tfds_dir` build lock.

    The builder is opened inside the lock, so it sees a dataset another process just finished.
    Local files only: TFDS's "download" step reads nothing from the network here.
    """
    with build_lock(Path(tfds_dir)), quiet_tfds():
        builder = make_builder()
        builder.download_and_prepare(download_dir=Path(tfds_dir) / "downloads")
    return builder


@contextlib.contextmanager
def build_lock(tfds_dir: Path) -> Iterator[None]:
    """Serialises dataset builds of the processes on this host that share `tfds_dir`.

    Two runs starting together would otherwise both build a dataset, and the second one's final
    rename fails on the first one's finished copy.
    """
    tfds_dir.mkdir(parents=True, exist_ok=True)
    with open(tfds_dir / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
