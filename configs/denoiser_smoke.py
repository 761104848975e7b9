"""Tiny run of the shipped denoiser's recipe for tests: noise-level map, blind AWGN, embedded photos."""

import ml_collections

from configs import denoiser, tasks


def get_config() -> ml_collections.ConfigDict:
    config = denoiser.get_config()
    tiny = tasks.smoke()
    config.compilation_cache_dir = ""
    config.data = tiny.data
    config.data.noise_level = True
    config.data.quantize = True
    config.data.noise_sigma = 0.0
    config.data.noise_sigma_max = 75.0
    config.model.width = 8
    config.model.num_blocks = 1
    config.train = tiny.train
    return config
