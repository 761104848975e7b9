"""FLUX-IR for colour denoising (AWGN sigma 25): the data and schedule of
teacher_denoise.py; variants, phase split and paper scale in configs/fluxir_common.py.
"""

import ml_collections

from configs import fluxir_common, tasks


def get_config(variant: str = "two_step") -> ml_collections.ConfigDict:
    return fluxir_common.fluxir_config(tasks.bench("denoise"), variant)
