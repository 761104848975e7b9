"""Tiny plain restorer for tests: a few steps on the embedded photos."""

import ml_collections

from configs import restorer_common, tasks


def get_config() -> ml_collections.ConfigDict:
    config = restorer_common.restorer_config(tasks.smoke(), "student")
    config.model.width = 4
    config.model.num_blocks = (1, 1, 1, 1)
    config.model.num_heads = (1, 1, 1, 2)
    config.restorer.loss.psnr = 0.1
    config.restorer.loss.hvi = 0.05
    return config
