"""RestoRect teacher for colour denoising: train on CBSD432, validate on CBSD68, AWGN sigma 25.

The model has the paper's shape (4 levels, R-blocks, T-block refinement, Retinex head) at a
width and depth that train on a 2-core CPU. Paper scale on a GPU/TPU:
  --config.model.width=64 --config.model.num_blocks='(3,3,3,3)' --config.model.num_heads='(1,2,4,8)'
  --config.model.num_refinement_blocks=3 --config.model.prior_features=64
  --config.model.prior_res_blocks=5 --config.model.decomp_features=32
  --config.model.head_features=64 --config.data.patch_size=192 --config.train.learning_rate=2e-4
  --config.train.num_steps=300000
"""

import ml_collections

from configs import restorect_common, tasks


def get_config() -> ml_collections.ConfigDict:
    return restorect_common.teacher_config(tasks.bench("denoise"))
