"""IR-Flow for colour denoising: CBSD432 crops with AWGN sigma 25, validated on CBSD68.

Data and schedule of teacher_denoise.py; variants (`...irflow_denoise.py:one_step`), sizes and
paper scale in configs/irflow_common.py.
"""

import ml_collections

from configs import irflow_common, tasks


def get_config(variant: str = "cumulative") -> ml_collections.ConfigDict:
    return irflow_common.irflow_config(tasks.bench("denoise"), variant)
