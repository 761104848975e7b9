"""Tiny SLKD run for tests: a few steps on the embedded photos; the tests set the teachers."""

import ml_collections

from configs import slkd_common, tasks


def get_config(variant: str = "slkd") -> ml_collections.ConfigDict:
    config = slkd_common.slkd_config(tasks.smoke(), "", "", variant)
    config.model.width = 4
    config.model.num_blocks = (1, 1, 1, 1)
    config.model.num_heads = (1, 1, 1, 2)
    config.data.patch_size = 32
    return config
