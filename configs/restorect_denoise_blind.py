"""RestoRect student for blind colour denoising (AWGN sigma 0-55), the bundled denoiser.

Needs the teacher of configs/teacher_denoise_blind.py in runs/teacher_denoise_blind; sizes as
in restorect_denoise.py.
"""

import ml_collections

from configs import restorect_common, teacher_denoise_blind


def get_config() -> ml_collections.ConfigDict:
    return restorect_common.student_config(
        teacher_denoise_blind.get_config(), "runs/teacher_denoise_blind"
    )
