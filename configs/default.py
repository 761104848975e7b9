"""Main job: a RestoRect teacher (stage S1) for colour denoising on the embedded photos.

Runs on a fresh machine with nothing but the installed packages: the training and validation
images are the natural photos that ship inside scikit-image. Sized for a 2-core CPU (about five
minutes); `--config.model.width=48 ...` or the `teacher_*` configs give larger settings.
"""

import ml_collections

from configs import restorect_common, tasks


def get_config() -> ml_collections.ConfigDict:
    return restorect_common.teacher_config(tasks.embedded(), "main")
