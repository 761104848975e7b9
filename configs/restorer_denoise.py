"""A plain LQ-only restorer for the teacher_denoise task (same data and schedule).

`--config configs/restorer_denoise.py` is teacher-sized, `...restorer_denoise.py:student` is
student-sized; sizes and paper scale in configs/restorer_common.py.
"""

import ml_collections

from configs import restorer_common, tasks


def get_config(size: str = "teacher") -> ml_collections.ConfigDict:
    return restorer_common.restorer_config(tasks.bench("denoise"), size)
