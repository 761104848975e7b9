"""Data: TFDS builders over local image folders, degradation synthesis, the grain pipeline.

The names below load their module on first use (PEP 562), so that importing one submodule
(`restorect_jax.data.degradations`, as the config checks do) does not import TFDS and grain,
which only the builders and the training pipeline need.
"""

import importlib

_EXPORTS = {
    "CorruptImageError": "builders",
    "build_image_folder": "builders",
    "DegradationSpec": "degradations",
    "LowLightParams": "degradations",
    "RainParams": "degradations",
    "add_gaussian_noise": "degradations",
    "add_rain": "degradations",
    "darken_low_light": "degradations",
    "degrade": "degradations",
    "degrade_with_level": "degradations",
    "streak_kernel": "degradations",
    "build_embedded": "embedded",
    "load_eval_images": "pipeline",
    "make_train_iterator": "pipeline",
    "prepare_datasets": "pipeline",
    "reads_noise_level": "pipeline",
    "resolve_data_root": "pipeline",
    "resolve_tfds_dir": "pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
