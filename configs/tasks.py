"""The tasks: each sets only the data and its degradation on the method-neutral base.

A method's config builds on a task (`restorer_common.restorer_config(tasks.bench("denoise"))`).
`bench(name)` adds the CPU benchmarks' schedule; `smoke()` is the tiny run the tests use.
"""

from collections.abc import Callable

import ml_collections

from configs import base


def embedded() -> ml_collections.ConfigDict:
    """Colour denoising, AWGN sigma 25, on the photos inside scikit-image (the main job's)."""
    return base.get_config()


def smoke() -> ml_collections.ConfigDict:
    """A few steps on the embedded photos at tiny crops: the tests' runs."""
    config = base.get_config()
    config.compilation_cache_dir = ""
    config.data.patch_size = 24
    config.data.val_crop = 40
    config.data.val_count = 2
    config.train.batch_size = 8
    config.train.num_steps = 6
    config.train.warmup_steps = 2
    config.train.log_every = 2
    config.train.eval_every = 3
    config.train.checkpoint_every = 3
    config.eval.sample_images = 2
    return config


def denoise() -> ml_collections.ConfigDict:
    """Colour denoising: CBSD432 -> CBSD68 (full-size validation), AWGN sigma 25."""
    config = base.get_config()
    data = config.data
    data.source = "folder"
    data.train_dir = "denoise/train/CBSD432"
    data.val_dir = "denoise/test/CBSD68"
    data.degradation = "awgn"
    data.noise_sigma = 25.0
    data.val_crop = 0  # full 481x321 images
    data.val_count = 0  # all 68
    return config


def denoise_blind() -> ml_collections.ConfigDict:
    """Blind colour denoising: AWGN of sigma ~ U(0, 55) per image (validation seeded alike)."""
    config = denoise()
    config.data.noise_sigma = 0.0
    config.data.noise_sigma_max = 55.0
    return config


def derain() -> ml_collections.ConfigDict:
    """Deraining: Rain100H pairs 0-79 plus synthetic rain over CBSD432 (half the crops each);
    pairs 80-99 held out (`--datasets Rain100H-heldout`). Pairs are counted in file-name order
    (1.png, 10.png, 100.png, 11.png, ...)."""
    config = denoise()
    data = config.data
    data.train_dir = "derain/test/Rain100H"
    data.val_dir = "derain/test/Rain100H"
    data.paired = True
    data.lq_subdir = "rain"
    data.gt_subdir = "norain"
    data.train_range = (0, 80)
    data.val_range = (80, 100)
    data.clean_train_dir = "denoise/train/CBSD432"
    data.clean_train_share = 0.5
    data.degradation = "rain"
    return config


def lowlight() -> ml_collections.ConfigDict:
    """Low-light enhancement: CBSD432 darkened (random gamma and scale, Poisson-Gaussian noise)
    -> CBSD68 darkened the same way with fixed seeds."""
    config = denoise()
    config.data.degradation = "lowlight"
    return config


TASKS: dict[str, Callable[[], ml_collections.ConfigDict]] = {
    "denoise": denoise,
    "denoise_blind": denoise_blind,
    "derain": derain,
    "lowlight": lowlight,
}


def bench(name: str) -> ml_collections.ConfigDict:
    """Task `name` with the CPU benchmarks' schedule: 2000 steps, validation every 1000,
    checkpoints every 500."""
    if name not in TASKS:
        raise ValueError(f"task {name!r} is unknown; choose one of {sorted(TASKS)}")
    config = TASKS[name]()
    config.train.num_steps = 2000
    config.train.eval_every = 1000
    config.train.checkpoint_every = 500
    return config
