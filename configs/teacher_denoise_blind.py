"""RestoRect teacher for blind colour denoising: CBSD432 with AWGN of sigma ~ U(0, 55) per image.

Validation draws one sigma per CBSD68 image from the same range (seeded); the evaluator scores
fixed levels (`--sigma 15`, `25`, `50`). Sizes and paper-scale flags as in teacher_denoise.py.
"""

import ml_collections

from configs import teacher_denoise


def get_config() -> ml_collections.ConfigDict:
    config = teacher_denoise.get_config()
    config.data.noise_sigma = 0.0
    config.data.noise_sigma_max = 55.0
    return config
