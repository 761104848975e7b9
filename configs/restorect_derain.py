"""RestoRect student for deraining (Rain100H pairs 0-79 train, 80-99 held out).

Needs the teacher of configs/teacher_derain.py in runs/teacher_derain; sizes as in
restorect_denoise.py.
"""

import ml_collections

from configs import restorect_common, teacher_derain


def get_config() -> ml_collections.ConfigDict:
    return restorect_common.student_config(teacher_derain.get_config(), "runs/teacher_derain")
