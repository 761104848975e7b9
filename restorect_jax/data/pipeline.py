"""The grain training pipeline and the validation images, driven by the data config.

Training (``make_train_iterator``), per process::

    source (TFDS ArrayRecord, records in file-name order)
      -> [start:stop]                          data.train_range
      -> [shard_index::shard_count]            this process's records, before shuffling
      -> seed(seed, shard_index) -> shuffle -> repeat forever
      -> random_map: random crop, dihedral transform, degradation
      -> batch(batch_size, drop_remainder) -> iterator (threads, prefetch, optional workers)

Paired data can be mixed with clean images degraded on the fly (``data.clean_train_dir``, e.g.
Rain100H pairs plus synthetic rain over CBSD432): each source is sharded, shuffled and
repeated on its own, and ``mix`` interleaves them, a fraction ``data.clean_train_share`` of the
elements from the clean source, before the same ``random_map`` and ``batch``.

Sharding slices the records *before* shuffling, so the processes read disjoint records. The
pipeline seed is derived from ``(seed, shard_index)``, so the processes also draw different
crops and noise. Grain's global shuffle reseeds every epoch (epoch ``e`` uses shuffle seed
``s + e``) and ``random_map`` seeds each element's generator from the pipeline seed and the
element's position in the infinite stream, so every epoch has a new order, new crops and new
noise, all deterministic given the seed. The iterator's ``get_state()`` is a small JSON-friendly
dict; ``set_state`` on a fresh iterator resumes the exact same batch sequence.

Validation (``load_eval_images``): full images (or centre crops), degraded with a generator
seeded by ``(seed, record index)``, so every run sees the same degraded images.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import grain
import numpy as np

from restorect_jax.data.builders import SPLIT, build_image_folder
from restorect_jax.data.degradations import NOISES, DegradationSpec, degrade_with_level
from restorect_jax.data.embedded import build_embedded
from restorect_jax.image_ops import dihedral

DATA_DIR_ENV = "RESTORECT_DATA_DIR"
SOURCES = ("embedded", "folder")


def resolve_data_root(data_config: Any) -> Path:
    """Returns the benchmark data directory.

    In order: ``data.root`` if set, else ``$RESTORECT_DATA_DIR`` if set, else ``../shared/data``
    relative to the working directory if it exists.
    """
    candidates = ((data_config.root, "data.root"), (os.environ.get(DATA_DIR_ENV), DATA_DIR_ENV))
    for value, origin in candidates:
        if value:
            root = Path(value).expanduser()
            if not root.is_dir():
                raise FileNotFoundError(f"data directory {root} (from {origin}) does not exist")
            return root
    fallback = Path.cwd().parent / "shared" / "data"
    if fallback.is_dir():
        return fallback
    raise FileNotFoundError(
        f"no data directory: set the config key data.root or the environment variable "
        f"{DATA_DIR_ENV} (the fallback {fallback} does not exist)"
    )


def resolve_tfds_dir(data_config: Any) -> Path:
    """Returns ``data.tfds_dir``, or ``~/.cache/restorect_jax/tfds`` when it is empty."""
    return Path(data_config.tfds_dir or "~/.cache/restorect_jax/tfds").expanduser()


def open_split(data_config: Any, split: str) -> grain.MapDataset:
    """Builds if needed and returns the records of ``split`` ('train' or 'val'), range applied.

    The source is the embedded photos or ``<root>/data.train_dir`` / ``<root>/data.val_dir``;
    ``data.train_range`` / ``data.val_range`` = ``(start, stop)`` keeps records
    ``start..stop-1`` of the sorted files, ``(0, 0)`` keeps all.
    """
    tfds_dir = resolve_tfds_dir(data_config)
    if data_config.source == "embedded":
        if data_config.paired:
            raise ValueError("data.paired must be False for data.source 'embedded' (clean photos)")
        builder = build_embedded(tfds_dir, split)
    elif data_config.source == "folder":
        subdir = data_config.train_dir if split == "train" else data_config.val_dir
        builder = build_image_folder(
            resolve_data_root(data_config) / subdir,
            tfds_dir,
            paired=bool(data_config.paired),
            lq_subdir=data_config.lq_subdir,
            gt_subdir=data_config.gt_subdir,
        )
    else:
        raise ValueError(f"data.source must be one of {SOURCES}, got {data_config.source!r}")
    source = grain.MapDataset.source(builder.as_data_source(SPLIT))
    key = f"data.{split}_range"
    start, stop = data_config.train_range if split == "train" else data_config.val_range
    if (start, stop) == (0, 0):
        return source
    if not 0 <= start < stop <= len(source):
        raise ValueError(f"{key}={(start, stop)} is not a non-empty range of {len(source)} records")
    return source[start:stop]


def _clean_train_dir(data_config: Any) -> str:
    """``data.clean_train_dir``; "" for configs saved before the key existed."""
    return data_config.get("clean_train_dir", "")


def open_clean_train(data_config: Any) -> grain.MapDataset:
    """The clean training images of ``<root>/data.clean_train_dir`` (all of them)."""
    builder = build_image_folder(
        resolve_data_root(data_config) / _clean_train_dir(data_config),
        resolve_tfds_dir(data_config),
        paired=False,
    )
    return grain.MapDataset.source(builder.as_data_source(SPLIT))


def prepare_datasets(data_config: Any) -> None:
    """Builds, unless built, every dataset a training run reads: train, clean train and val."""
    open_split(data_config, "train")
    open_split(data_config, "val")
    if _clean_train_dir(data_config):
        open_clean_train(data_config)


def random_crop_or_pad(
    images: list[np.ndarray], size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Crops the same random ``size`` x ``size`` window from each image (all of one shape).

    A side shorter than ``size`` is first reflect-padded at its end up to ``size``.
    """
    height, width = images[0].shape[:2]
    pad = ((0, max(size - height, 0)), (0, max(size - width, 0)), (0, 0))
    if any(p[1] for p in pad):
        images = [np.pad(image, pad, mode="reflect") for image in images]
        height, width = images[0].shape[:2]
    top = rng.integers(height - size + 1)
    left = rng.integers(width - size + 1)
    return [image[top : top + size, left : left + size] for image in images]


def _to_float(image: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> contiguous float32 [0, 1]."""
    return np.ascontiguousarray(image, dtype=np.float32) / np.float32(255.0)


@dataclasses.dataclass(frozen=True)
class TrainTransform:
    """Turns one record into a training pair ``{'lq', 'gt'}`` of float32 (P, P, 3) in [0, 1].

    Draws, in this order from the element's generator: the crop window, the dihedral index
    (the same window and transform for LQ and GT), then the degradation of GT (clean data)
    into LQ; paired records keep their stored LQ. With ``noise_level`` the pair also holds
    ``'noise_level'``, the drawn AWGN sigma / 255 (float32 scalar).
    """

    patch_size: int
    degradation: DegradationSpec
    noise_level: bool = False

    def __call__(self, record: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
        keys = ["gt", "lq"] if "lq" in record else ["gt"]
        patches = random_crop_or_pad([record[k] for k in keys], self.patch_size, rng)
        k = int(rng.integers(8))
        out = {key: _to_float(dihedral(p, k)) for key, p in zip(keys, patches)}
        level = None
        if "lq" not in out:
            out["lq"], level = degrade_with_level(out["gt"], self.degradation, rng)
        pair = {"lq": out["lq"], "gt": out["gt"]}
        if self.noise_level:
            pair["noise_level"] = np.float32(level)
        return pair


def reads_noise_level(data_config: Any) -> bool:
    """``data.noise_level``: batches carry each image's noise level as ``noise_level`` (the
    AWGN sigma / 255, or the standard deviation of camera noise).

    Only noise added to clean images has one; raises ValueError naming the key otherwise.
    """
    wanted = bool(data_config.get("noise_level", False))
    if wanted and (data_config.degradation not in NOISES or data_config.paired):
        raise ValueError(
            f"data.noise_level needs data.degradation in {NOISES} on clean images "
            f"(data.paired=False), got {data_config.degradation!r}, paired={data_config.paired}"
        )
    return wanted


def _degradation_spec(data_config: Any) -> DegradationSpec:
    """Reads the degradation of the clean images.

    Paired data brings its own LQ, so it takes 'none', unless ``data.clean_train_dir`` adds
    clean training images, which the degradation (then not 'none') turns into LQ.
    """
    spec = DegradationSpec.from_config(data_config)
    if _clean_train_dir(data_config):
        if not data_config.paired or spec.name == "none":
            raise ValueError(
                "data.clean_train_dir needs data.paired=True and a data.degradation other than "
                f"'none' for its clean images, got paired={data_config.paired}, {spec.name!r}"
            )
    elif data_config.paired and spec.name != "none":
        raise ValueError(
            f"data.degradation must be 'none' when data.paired is True (and no "
            f"data.clean_train_dir), got {spec.name!r}"
        )
    return spec


def _shard(records: grain.MapDataset, shard_index: int, shard_count: int, name: str):
    """Records ``shard_index::shard_count`` of ``records``; an error if none are left."""
    records = records[shard_index::shard_count]
    if len(records) == 0:
        raise ValueError(f"shard {shard_index} of {shard_count} has no {name} records")
    return records


def make_train_iterator(
    data_config: Any,
    *,
    batch_size: int,
    seed: int,
    shard_index: int = 0,
    shard_count: int = 1,
) -> grain.DatasetIterator:
    """Returns the infinite iterator of training batches of this process.

    Args:
      data_config: the ``data`` config.
      batch_size: batch size of this process (global batch size / process count).
      seed: pipeline seed; the same seed and shard give the same batches.
      shard_index, shard_count: this process's share, records ``shard_index::shard_count``.

    Returns:
      A grain iterator of ``{'lq', 'gt'}`` float32 ``(batch_size, P, P, 3)`` in [0, 1], with
      ``get_state()`` / ``set_state(state)`` (the state is a JSON-serialisable dict).

    ``data.prefetch`` batches are prepared ahead, each by its own thread (0: synchronous).
    ``data.num_workers`` > 0 adds grain worker processes (``mp_prefetch``); they are started
    with the spawn method, so the program's entry point must run under
    ``if __name__ == '__main__'`` (absl ``app.run``). The batches do not depend on either.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"need 0 <= shard_index < shard_count, got {shard_index}, {shard_count}")
    if data_config.patch_size < 1:
        raise ValueError(f"data.patch_size must be >= 1, got {data_config.patch_size}")
    transform = TrainTransform(
        int(data_config.patch_size), _degradation_spec(data_config), reads_noise_level(data_config)
    )
    records = _shard(open_split(data_config, "train"), shard_index, shard_count, "training")
    pipeline_seed = int(np.random.SeedSequence([seed, shard_index]).generate_state(1)[0])
    records = records.seed(pipeline_seed).shuffle().repeat(None)
    if _clean_train_dir(data_config):
        share = float(data_config.clean_train_share)
        if not 0 < share < 1:
            raise ValueError(f"data.clean_train_share must be in (0, 1), got {share}")
        clean = _shard(open_clean_train(data_config), shard_index, shard_count, "clean training")
        clean = clean.shuffle(seed=pipeline_seed + 1).repeat(None)
        records = grain.MapDataset.mix([records, clean], [1 - share, share]).seed(pipeline_seed)
    dataset = (
        records.random_map(transform)
        .batch(batch_size, drop_remainder=True)
        .to_iter_dataset(
            grain.ReadOptions(
                num_threads=data_config.prefetch, prefetch_buffer_size=data_config.prefetch
            )
        )
    )
    if data_config.num_workers > 0:
        options = grain.MultiprocessingOptions(num_workers=data_config.num_workers)
        dataset = dataset.mp_prefetch(options)
    return iter(dataset)


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` window (each side at most the image's)."""
    height, width = image.shape[:2]
    top, left = (height - min(size, height)) // 2, (width - min(size, width)) // 2
    return image[top : top + min(size, height), left : left + min(size, width)]


def load_eval_images(data_config: Any, *, seed: int) -> list[dict[str, Any]]:
    """Returns the validation images ``{'name': str, 'lq', 'gt': float32 (H, W, 3)}``.

    Keeps the first ``data.val_count`` records (0 = all) of ``data.val_range``, centre-crops
    them to ``data.val_crop`` (0 = full size), and degrades GT (clean data) with a generator
    seeded by ``(seed, record index)``: the same seed always gives the same LQ images. With
    ``data.noise_level`` each also holds its ``noise_level`` (sigma / 255, float32 scalar).
    """
    spec = _degradation_spec(data_config)
    with_level = reads_noise_level(data_config)
    records = open_split(data_config, "val")
    count = min(data_config.val_count or len(records), len(records))
    images = []
    for index in range(count):
        record = records[index]
        pair = {key: record[key] for key in ("lq", "gt") if key in record}
        if data_config.val_crop:
            pair = {key: _centre_crop(image, data_config.val_crop) for key, image in pair.items()}
        pair = {key: _to_float(image) for key, image in pair.items()}
        if "lq" not in pair:
            rng = np.random.default_rng([seed, index])
            pair["lq"], level = degrade_with_level(pair["gt"], spec, rng)
            if with_level:
                pair["noise_level"] = np.float32(level)
        images.append({"name": record["name"].decode(), **pair})
    return images
