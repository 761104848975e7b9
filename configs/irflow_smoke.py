"""Tiny IR-Flow run for tests: a few steps on the embedded photos, rollout with gradients."""

import ml_collections

from configs import irflow_common, tasks


def get_config(variant: str = "cumulative") -> ml_collections.ConfigDict:
    config = irflow_common.irflow_config(tasks.smoke(), variant)
    config.model.width = 4
    config.model.num_blocks = (1, 1, 1)
    config.model.attention = (False, False, True)
    config.irflow.msc.max_steps = 4
    return config
