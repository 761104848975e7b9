"""The test sets of `../shared/data` as TFDS datasets, degraded once and stored, with no TensorFlow.

Every benchmark becomes an ArrayRecord TFDS dataset with one split, ``test``, whose records
follow the sorted file names:

* AWGN sets (Set12, BSD68 grey; CBSD68, Kodak24, McMaster colour), one dataset per sigma:
  ``{'gt': uint8 (H, W, C), 'lq': float32 (H, W, C), 'name'}`` with C = 1 for grey sets and
  ``lq = gt / 255 + sigma / 255 * n``, ``n ~ N(0, 1)`` drawn by a generator seeded with
  ``(NOISE_SEED, sigma, record index)``. LQ is stored unclipped and unquantised, as the
  denoising papers' test scripts feed it, so every run of every model sees the same noisy images;
* CBSD68-lowlight: CBSD68 darkened once by the low-light model of ``data/degradations.py``
  with its default parameters, ``{'gt': uint8, 'lq': float32 (H, W, 3), 'name'}``, drawn by a
  generator seeded with ``(NOISE_SEED, record index)``: a synthetic low-light set with ground
  truth, alongside the real ones;
* Rain100H: the paired ``rain``/``norain`` images, ``{'lq', 'gt': uint8 (H, W, 3), 'name'}``;
  ``Rain100H-heldout`` is its pairs 80-99 in file-name order, never seen by the derain configs'
  training (which uses pairs 0-79);
* DICM, LIME (real low light) and U45 (real underwater): ``{'lq': uint8 (H, W, 3), 'name'}``,
  with no ground truth.

The dataset's config name holds the benchmark, the noise level and seed, and the fingerprint of
the source folder, so an edited folder or another noise seed builds a new dataset.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from restorect_jax.data.builders import (
    FolderSpec,
    folder_fingerprint,
    list_records,
    load_image,
    prepare_locked,
    quiet_tfds,
)
from restorect_jax.data.degradations import LowLightParams, darken_low_light

NOISE_SEED = 2025  # Seeds the stored AWGN: changing it builds new datasets.
TEST_SPLIT = "test"


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """One test set of the benchmark data directory.

    Attributes:
      name: the name users pass (``--datasets CBSD68``).
      task: denoise | derain | lowlight | underwater.
      folder: the folder, relative to the data root.
      grey: single-channel images.
      degradation: "awgn" (LQ synthesised from GT at a given sigma), "lowlight" (LQ
        synthesised from GT by the default low-light model), "paired" (LQ and GT files) or
        "real" (degraded photos without ground truth).
      records: ``(start, stop)``: only the records ``start..stop-1`` of the sorted files.
      subfolders: the (degraded, clean) subfolders of a paired set.
    """

    name: str
    task: str
    folder: str
    grey: bool = False
    degradation: str = "awgn"
    records: tuple[int, int] | None = None
    subfolders: tuple[str, str] = ("rain", "norain")  # paired: (degraded, clean) subfolders

    @property
    def has_gt(self) -> bool:
        return self.degradation != "real"

    @property
    def channels(self) -> int:
        return 1 if self.grey else 3


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("Set12", "denoise", "denoise/test/Set12", grey=True),
        Benchmark("BSD68", "denoise", "denoise/test/BSD68", grey=True),
        Benchmark("CBSD68", "denoise", "denoise/test/CBSD68"),
        Benchmark("Kodak24", "denoise", "denoise/test/Kodak24"),
        Benchmark("McMaster", "denoise", "denoise/test/McMaster"),
        Benchmark("Rain100H", "derain", "derain/test/Rain100H", degradation="paired"),
        Benchmark(
            "Rain100H-heldout",
            "derain",
            "derain/test/Rain100H",
            degradation="paired",
            records=(80, 100),
        ),
        # Real camera noise: 512x512 JPEG crops, each against the mean of many shots.
        Benchmark(
            "PolyU",
            "denoise",
            "denoise/test/PolyU",
            degradation="paired",
            subfolders=("real", "mean"),
        ),
        Benchmark("CBSD68-lowlight", "lowlight", "denoise/test/CBSD68", degradation="lowlight"),
        Benchmark("DICM", "lowlight", "lowlight/test/DICM", degradation="real"),
        Benchmark("LIME", "lowlight", "lowlight/test/LIME", degradation="real"),
        Benchmark("U45", "underwater", "underwater/test/U45", degradation="real"),
    )
}
AWGN_SIGMAS = (15, 25, 50)


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called `name` (case-insensitive); a ValueError lists the known names."""
    by_lower = {key.lower(): value for key, value in BENCHMARKS.items()}
    if name.lower() not in by_lower:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(BENCHMARKS)}")
    return by_lower[name.lower()]


@dataclasses.dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark at one noise level (None for sets that carry their own degradation)."""

    benchmark: Benchmark
    folder: Path
    sigma: int | None = None

    def folder_spec(self) -> FolderSpec:
        lq, gt = self.benchmark.subfolders
        paired = self.benchmark.degradation == "paired"
        return FolderSpec(self.folder, paired=paired, lq_subdir=lq, gt_subdir=gt)

    def config_name(self) -> str:
        variant = "stored"
        if self.sigma is not None:
            variant = f"sigma{self.sigma}_seed{NOISE_SEED}"
        elif self.benchmark.degradation == "lowlight":
            variant = f"lowlight_seed{NOISE_SEED}"
        # Named by folder, not benchmark: sets that slice one folder share its dataset.
        slug = re.sub(r"[^a-z0-9]+", "_", self.benchmark.folder.lower())
        return f"{slug}_{variant}_{folder_fingerprint(self.folder_spec())}"


class BenchmarkBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """TFDS builder of one benchmark at one noise level (see the module docstring)."""

    name = "restorect_benchmark"
    VERSION = tfds.core.Version("1.0.0")  # Bump when the records change.
    code_path = None  # As in builders.ImageFolderBuilder: no metadata files next to the code.

    def __init__(self, *, spec: BenchmarkSpec, data_dir: str | Path):
        self._spec = spec
        config = tfds.core.BuilderConfig(name=spec.config_name(), description=str(spec.folder))
        with quiet_tfds():
            super().__init__(data_dir=data_dir, config=config, file_format="array_record")

    def _info(self) -> tfds.core.DatasetInfo:
        channels = self._spec.benchmark.channels
        uint8 = tfds.features.Tensor(shape=(None, None, channels), dtype=np.uint8, encoding="bytes")
        features: dict[str, Any] = {"name": tfds.features.Text()}
        degradation = self._spec.benchmark.degradation
        if degradation in ("awgn", "lowlight"):
            features["gt"] = uint8
            features["lq"] = tfds.features.Tensor(
                shape=(None, None, channels), dtype=np.float32, encoding="bytes"
            )
        elif degradation == "paired":
            features["gt"] = features["lq"] = uint8
        else:
            features["lq"] = uint8
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"{self._spec.benchmark.name} from {self._spec.folder}",
            features=tfds.features.FeaturesDict(features),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Local files only.
        return {TEST_SPLIT: self._generate_examples()}

    def _generate_examples(self) -> Iterator[tuple[int, dict[str, Any]]]:
        benchmark, sigma = self._spec.benchmark, self._spec.sigma
        mode = "L" if benchmark.grey else "RGB"
        for index, record in enumerate(list_records(self._spec.folder_spec())):
            images = {
                key: _with_channel_axis(np.asarray(load_image(path, mode)))
                for key, path in record.items()
            }
            if benchmark.degradation == "awgn":
                images["lq"] = add_stored_noise(images["gt"], sigma, index)
            elif benchmark.degradation == "lowlight":
                images["lq"] = add_stored_darkening(images["gt"], index)
            elif benchmark.degradation == "real":
                images = {"lq": images.pop("gt")}
            elif images["lq"].shape != images["gt"].shape:
                raise ValueError(
                    f"{record['lq']} is {images['lq'].shape} but {record['gt']} is "
                    f"{images['gt'].shape}: paired images must have the same size"
                )
            yield index, {**images, "name": record["gt"].name}


def _with_channel_axis(image: np.ndarray) -> np.ndarray:
    """(H, W) grey as (H, W, 1); (H, W, C) unchanged."""
    return image[..., None] if image.ndim == 2 else image


def add_stored_noise(gt: np.ndarray, sigma: int, index: int) -> np.ndarray:
    """`gt / 255 + sigma / 255 * n` in float32, n drawn by the `(NOISE_SEED, sigma, index)` seed."""
    rng = np.random.default_rng([NOISE_SEED, sigma, index])
    noise = rng.standard_normal(gt.shape, dtype=np.float32)
    return gt.astype(np.float32) / 255.0 + np.float32(sigma / 255.0) * noise


def add_stored_darkening(gt: np.ndarray, index: int) -> np.ndarray:
    """`gt` darkened by the default low-light model, drawn by the `(NOISE_SEED, index)` seed."""
    rng = np.random.default_rng([NOISE_SEED, index])
    return darken_low_light(gt.astype(np.float32) / 255.0, rng, LowLightParams())


def build_benchmark(
    name: str, data_root: str | Path, tfds_dir: str | Path, *, sigma: int | None = None
) -> BenchmarkBuilder:
    """Builds (once) and returns the dataset of benchmark `name`, at `sigma` for AWGN sets.

    Raises:
      ValueError: an unknown name, or a sigma missing for an AWGN set or given for another.
      FileNotFoundError: the benchmark's folder is missing under `data_root` (the message names
        it and the settings that choose the root).
    """
    benchmark = get_benchmark(name)
    if benchmark.degradation == "awgn" and sigma is None:
        raise ValueError(f"{benchmark.name} is degraded with AWGN: give a noise sigma")
    if benchmark.degradation != "awgn" and sigma is not None:
        sigma = None  # Its degradation is in its files.
    folder = Path(data_root) / benchmark.folder
    if not folder.is_dir():
        raise FileNotFoundError(
            f"dataset {benchmark.name}: folder {folder} is missing (set --data_root, the config "
            f"key data.root or the environment variable RESTORECT_DATA_DIR to the benchmark "
            f"data directory)"
        )
    spec = BenchmarkSpec(benchmark, folder, sigma)
    return prepare_locked(lambda: BenchmarkBuilder(spec=spec, data_dir=tfds_dir), tfds_dir)


def load_benchmark(
    name: str, data_root: str | Path, tfds_dir: str | Path, *, sigma: int | None = None
) -> list[dict[str, Any]]:
    """The records of a benchmark as `{'name': str, 'lq': float32, 'gt': float32 or absent}`.

    Images are (H, W, C) in [0, 1] (AWGN LQ goes beyond it: it is unclipped).
    """
    source = build_benchmark(name, data_root, tfds_dir, sigma=sigma).as_data_source(TEST_SPLIT)
    start, stop = get_benchmark(name).records or (0, len(source))
    if stop > len(source):
        raise ValueError(
            f"dataset {name} takes records {start}..{stop - 1} but its folder has {len(source)}"
        )
    records = []
    for index in range(start, stop):
        record = source[index]
        item: dict[str, Any] = {"name": record["name"].decode()}
        for key in ("lq", "gt"):
            if key in record:
                image = record[key]
                item[key] = image if image.dtype == np.float32 else image.astype(np.float32) / 255
        records.append(item)
    return records
