"""FLUX-IR for deraining (Rain100H pairs 80-99 held out): the data and schedule of
teacher_derain.py; variants, phase split and paper scale in configs/fluxir_common.py.
"""

import ml_collections

from configs import fluxir_common, tasks


def get_config(variant: str = "two_step") -> ml_collections.ConfigDict:
    return fluxir_common.fluxir_config(tasks.bench("derain"), variant)
