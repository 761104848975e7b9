"""Data: TFDS builders over local image folders, degradation synthesis, the grain pipeline."""

from restorect_jax.data.builders import CorruptImageError, build_image_folder
from restorect_jax.data.degradations import (
    DegradationSpec,
    LowLightParams,
    RainParams,
    add_gaussian_noise,
    add_rain,
    darken_low_light,
    degrade,
    degrade_with_level,
    streak_kernel,
)
from restorect_jax.data.embedded import build_embedded
from restorect_jax.data.pipeline import (
    load_eval_images,
    make_train_iterator,
    prepare_datasets,
    reads_noise_level,
    resolve_data_root,
    resolve_tfds_dir,
)

__all__ = [
    "CorruptImageError",
    "DegradationSpec",
    "LowLightParams",
    "RainParams",
    "add_gaussian_noise",
    "add_rain",
    "build_embedded",
    "build_image_folder",
    "darken_low_light",
    "degrade",
    "degrade_with_level",
    "load_eval_images",
    "make_train_iterator",
    "prepare_datasets",
    "reads_noise_level",
    "resolve_data_root",
    "resolve_tfds_dir",
    "streak_kernel",
]
