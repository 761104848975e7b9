"""SLKD's Teacher B: the teacher-size RGFormer trained as a clean-image autoencoder, x -> x.

CBSD432 crops with the identity degradation, validated on CBSD68 clean; no global residual, so
the network must carry the image through its features instead of copying its input. One
autoencoder serves both tasks: clean natural photos are what Teacher B reconstructs for
denoising and for deraining alike (the derain configs' clean crops come from CBSD432 too).
"""

import ml_collections

from configs import restorer_common, tasks


def get_config() -> ml_collections.ConfigDict:
    config = restorer_common.restorer_config(tasks.bench("denoise"), "teacher")
    config.data.degradation = "none"
    config.model.global_residual = False
    return config
