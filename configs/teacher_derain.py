"""RestoRect teacher for deraining on Rain100H: pairs 0-79 train, 80-99 held out for validation.

Rain100H is the only paired deraining set available offline here (see shared/data/README.md);
the held-out 20 pairs are never seen in training.
"""

import ml_collections

from configs import teacher_denoise


def get_config() -> ml_collections.ConfigDict:
    config = teacher_denoise.get_config()
    config.data.train_dir = "derain/test/Rain100H"
    config.data.val_dir = "derain/test/Rain100H"
    config.data.paired = True
    config.data.lq_subdir = "rain"
    config.data.gt_subdir = "norain"
    config.data.train_range = (0, 80)
    config.data.val_range = (80, 100)
    config.data.degradation = "none"
    return config
