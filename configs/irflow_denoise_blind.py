"""IR-Flow for blind colour denoising: CBSD432 with AWGN sigma ~ U(0, 55) per image.

Data of teacher_denoise_blind.py; variants, sizes and paper scale in configs/irflow_common.py.
"""

import ml_collections

from configs import irflow_common, tasks


def get_config(variant: str = "cumulative") -> ml_collections.ConfigDict:
    return irflow_common.irflow_config(tasks.bench("denoise_blind"), variant)
