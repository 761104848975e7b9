"""RestoRect student for colour denoising (CBSD432 -> CBSD68, AWGN sigma 25).

Needs the teacher of configs/teacher_denoise.py in runs/teacher_denoise (or
--config.frozen.teacher=DIR). Baselines: --config.restorect.distill=feature_mse or
--config.restorect.distill=none.
Paper scale on a GPU/TPU: a paper-scale teacher (see teacher_denoise.py) and e.g.
  --config.model.width=32 --config.model.num_blocks='(2,2,2,2)' --config.model.num_heads='(1,2,4,8)'
  --config.model.condition_features=32 --config.model.condition_res_blocks=3
  --config.model.velocity_hidden=256 --config.data.patch_size=192
  --config.train.learning_rate=2e-4 --config.train.num_steps=150000 --config.restorect.phase1_steps=15000
"""

import ml_collections

from configs import restorect_common, teacher_denoise


def get_config() -> ml_collections.ConfigDict:
    return restorect_common.student_config(teacher_denoise.get_config(), "runs/teacher_denoise")
