"""The default data: natural photos shipped inside the scikit-image wheel (no download).

The photos are copied as PNG (lossless) into ``<tfds_dir>/embedded_images/{train,val}/`` and
built with the same folder builder as any other folder, so the embedded set and a benchmark
folder travel the same code path.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from PIL import Image

from restorect_jax import safe_files
from restorect_jax.data.builders import ImageFolderBuilder, build_image_folder

# File names in the ``skimage/data`` package directory. Validation never overlaps training.
EMBEDDED_FILES = {
    "train": (
        "astronaut.png",
        "chelsea.png",
        "rocket.jpg",
        "motorcycle_left.png",
        "hubble_deep_field.jpg",
        "ihc.png",
        "coins.png",
        "moon.png",
        "brick.png",
        "grass.png",
        "gravel.png",
        "retina.jpg",
    ),
    "val": ("coffee.png", "camera.png"),
}


def materialise_embedded(tfds_dir: str | Path, split: str) -> Path:
    """Writes the ``split`` photos as PNG into ``<tfds_dir>/embedded_images/<split>/``.

    Files already there are left untouched (so the folder fingerprint stays the same); each new
    file is written by `safe_files.write_new`, so an interrupted run never leaves a truncated
    PNG behind and two processes writing at once never collide. Returns the folder.
    """
    if split not in EMBEDDED_FILES:
        raise ValueError(f"embedded split must be one of {sorted(EMBEDDED_FILES)}, got {split!r}")
    folder = Path(tfds_dir) / "embedded_images" / split
    folder.mkdir(parents=True, exist_ok=True)
    package = importlib.resources.files("skimage.data")
    for file_name in EMBEDDED_FILES[split]:
        target = folder / (Path(file_name).stem + ".png")
        if target.exists():
            continue
        with (
            importlib.resources.as_file(package / file_name) as source,
            Image.open(source) as image,
        ):
            try:
                safe_files.write_new(target, lambda path: image.save(path, format="PNG"))
            except safe_files.FileTakenError:
                pass  # another process wrote the same photo first
    return folder


def build_embedded(tfds_dir: str | Path, split: str) -> ImageFolderBuilder:
    """Materialises the ``split`` ('train' or 'val') photos and builds their clean dataset."""
    return build_image_folder(materialise_embedded(tfds_dir, split), tfds_dir)
