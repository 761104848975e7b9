"""SLKD student for colour denoising (AWGN sigma 25, CBSD432 -> CBSD68), from Teacher A
`runs/restorer_denoise` (configs/restorer_denoise.py) and Teacher B `runs/slkd_autoencoder`
(configs/slkd_autoencoder.py). Variants and paper scale in configs/slkd_common.py.
"""

import ml_collections

from configs import slkd_common, tasks


def get_config(variant: str = "slkd") -> ml_collections.ConfigDict:
    return slkd_common.slkd_config(tasks.bench("denoise"), "runs/restorer_denoise", variant=variant)
