"""IR-Flow for deraining: Rain100H pairs 0-79 plus synthetic rain over CBSD432, pairs 80-99 held
out (`--datasets Rain100H-heldout`), as teacher_derain.py.

Variants, sizes and paper scale in configs/irflow_common.py.
"""

import ml_collections

from configs import irflow_common, tasks


def get_config(variant: str = "cumulative") -> ml_collections.ConfigDict:
    return irflow_common.irflow_config(tasks.bench("derain"), variant)
