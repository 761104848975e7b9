"""RestoRect teacher for low-light enhancement, trained on synthetically darkened CBSD432.

No paired real low-light data is available offline; clean images are darkened by a random
gamma and scale and given Poisson-Gaussian sensor noise (restorect_jax.data.degradations).
Validation uses CBSD68 darkened the same way with fixed seeds; real low-light sets (DICM, LIME)
have no ground truth and are scored with no-reference metrics by the evaluator.
"""

import ml_collections

from configs import restorect_common, tasks


def get_config() -> ml_collections.ConfigDict:
    return restorect_common.teacher_config(tasks.bench("lowlight"))
