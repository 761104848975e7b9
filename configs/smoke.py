"""Tiny teacher run for tests: a few steps on the embedded photos, every feature switched on."""

import ml_collections

from configs import restorect_common, tasks


def get_config() -> ml_collections.ConfigDict:
    config = restorect_common.teacher_config(tasks.smoke(), "main")
    config.model.width = 8
    config.model.num_heads = (1, 1, 2, 2)
    config.model.prior_features = 8
    config.model.prior_res_blocks = 1
    config.model.decomp_features = 8
    config.model.head_features = 8
    config.model.prior_dim = 32
    config.model.retinex_split = 24
    return config
