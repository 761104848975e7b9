"""RestoRect student for low-light enhancement (synthetically darkened CBSD432 -> CBSD68).

Needs the teacher of configs/teacher_lowlight.py in runs/teacher_lowlight; sizes as in
restorect_denoise.py.
"""

import ml_collections

from configs import restorect_common, teacher_lowlight


def get_config() -> ml_collections.ConfigDict:
    return restorect_common.student_config(teacher_lowlight.get_config(), "runs/teacher_lowlight")
