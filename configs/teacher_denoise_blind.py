"""RestoRect teacher for blind colour denoising: CBSD432 with AWGN of sigma ~ U(0, 55) per image.

Validation draws one sigma per CBSD68 image from the same range (seeded); the evaluator scores
fixed levels (`--sigma 15`, `25`, `50`). Sizes and paper-scale flags as in teacher_denoise.py.
"""

import ml_collections

from configs import restorect_common, tasks


def get_config() -> ml_collections.ConfigDict:
    return restorect_common.teacher_config(tasks.bench("denoise_blind"))
