"""Tiny FLUX-IR run for tests: every phase in a few steps on the embedded photos."""

import ml_collections

from configs import fluxir_common, tasks


def get_config(variant: str = "two_step") -> ml_collections.ConfigDict:
    config = fluxir_common.fluxir_config(tasks.smoke(), variant)
    config.model.width = 4
    config.model.num_blocks = (1, 1, 1)
    config.model.attention = (False, False, True)
    config.fluxir.sampler = "euler:3"
    config.fluxir.teacher_steps = 3
    config.fluxir.rl.num_samples = 2
    config.fluxir.rl.refresh_every = 1
    return config
