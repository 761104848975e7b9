"""SLKD student for deraining (Rain100H pairs 0-79 plus synthetic rain; pairs 80-99 held out),
from Teacher A `runs/restorer_derain` (configs/restorer_derain.py) and Teacher B
`runs/slkd_autoencoder`. Variants and paper scale in configs/slkd_common.py.
"""

import ml_collections

from configs import slkd_common, tasks


def get_config(variant: str = "slkd") -> ml_collections.ConfigDict:
    return slkd_common.slkd_config(tasks.bench("derain"), "runs/restorer_derain", variant=variant)
