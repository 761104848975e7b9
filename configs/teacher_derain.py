"""RestoRect teacher for deraining: Rain100H pairs 0-79 plus synthetic rain over CBSD432 train,
Rain100H pairs 80-99 are held out for validation and testing (`--datasets Rain100H-heldout`).

Rain100H is the only paired deraining set available offline here (see shared/data/README.md),
and 80 pairs are few, so half of the training crops come from clean CBSD432 photos with
synthetic rain streaks and veil (restorect_jax/data/degradations.py). Pairs are counted in
file-name order (1.png, 10.png, 100.png, 11.png, ...); the held-out 20 are never seen in training.
"""

import ml_collections

from configs import restorect_common, tasks


def get_config() -> ml_collections.ConfigDict:
    return restorect_common.teacher_config(tasks.bench("derain"))
