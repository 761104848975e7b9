"""Turns a task config into an SLKD student's config (restorect_jax/methods/slkd.py, METHODS 3).

The student is the RGFormer of the restorer's `student` size (width 8, blocks (1, 1, 2, 2):
0.27M params against Teacher A's 2.32M); it keeps the task's data and schedule. The teachers
are finished runs named in `config.frozen`: Teacher A, the teacher-size LQ-only restorer of
the task (`configs/restorer_denoise.py`, `restorer_derain.py`); Teacher B, the clean-image
autoencoder (`configs/slkd_autoencoder.py`). Variants after the config path
(`--config configs/slkd_denoise.py:drl`):
  slkd:        both halves (the default);
  drl:         degradation removal learning only (L1, KL and L_NC; no Teacher B term);
  irl:         image reconstruction learning only (L1 and L_ET);
  feature_mse: both halves with plain feature MSE instead of the BRISQUE / PIQE extractors.
The student trained alone is `configs/restorer_denoise.py:student`.
Paper scale: the teachers at the restorer's paper scale (configs/restorer_common.py), the
student at width 32, blocks (2, 2, 2, 2), heads (1, 2, 4, 8), 128-pixel crops, batch 8.
"""

import ml_collections

from configs import restorer_common

VARIANTS = ("slkd", "drl", "irl", "feature_mse")


def slkd_config(
    task_config: ml_collections.ConfigDict,
    teacher_a: str,
    teacher_b: str = "runs/slkd_autoencoder",
    variant: str = "slkd",
) -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f"SLKD variant {variant!r} is unknown; choose one of {VARIANTS}")
    config = restorer_common.restorer_config(task_config, "student")  # the student-alone run
    config.method = "slkd"
    del config.restorer  # the SLKD terms and their weights are `config.slkd`
    config.slkd = slkd = ml_collections.ConfigDict()
    slkd.drl = variant != "irl"  # KL to Teacher A's output and L_NC on the encoder levels
    slkd.irl = variant != "drl"  # L_ET on the decoder levels against Teacher B on the clean image
    slkd.features = "mse" if variant == "feature_mse" else "quality"  # quality | mse
    slkd.l1 = 1.0  # L1(x^, x)
    slkd.kl = 0.5  # KL(softmax(T_A(y) / tau) || softmax(x^ / tau)) (paper: 0.5)
    slkd.nc = 0.1  # L_NC (paper: 0.1)
    slkd.et = 0.1  # L_ET (paper: 0.1)
    slkd.tau = 0.1  # softmax temperature of the KL term (ours: the paper's is not public)
    slkd.mscn_c = 0.1  # MSCN stabiliser c on feature maps (ours; the metrics use 1/255 and 1)
    slkd.brisque_pairs = False  # add BRISQUE's paired products (H, V, both diagonals)
    slkd.piqe_block = 16  # PIQE block side in image pixels (piqe_block / stride per level)
    slkd.piqe_threshold = 0.1  # active block: MSCN variance above this (PIQE's)
    slkd.encoder_levels = ("enc1", "enc2", "enc3")  # matched for L_NC
    slkd.decoder_levels = ("dec3", "dec2", "dec1")  # matched for L_ET
    config.frozen = ml_collections.ConfigDict()  # only the teachers the variant uses
    if slkd.drl:
        config.frozen.teacher_a = teacher_a
    if slkd.irl:
        config.frozen.teacher_b = teacher_b
    return config
