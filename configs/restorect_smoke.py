"""Tiny RestoRect student for tests: both phases in 6 steps on the embedded photos.

The teacher is the smoke teacher (configs/smoke.py); tests set --config.frozen.teacher to one
they made.
"""

import ml_collections

from configs import restorect_common, smoke


def get_config() -> ml_collections.ConfigDict:
    config = restorect_common.student_config(smoke.get_config(), teacher_workdir="")
    config.model.width = 4
    config.model.num_heads = (1, 1, 2, 2)
    config.model.head_features = 4
    config.model.condition_features = 4
    config.model.condition_embed_dim = 16
    config.model.condition_mlp_hidden = 16
    config.model.decomp_features = 4
    config.model.num_blocks = (1, 1, 1, 1)
    config.model.velocity_hidden = 16
    config.model.time_dim = 8
    config.restorect.phase1_steps = 3
    return config
