"""Turns a task config (configs/tasks.py) into a plain supervised restorer's config.

The restorer keeps the task's data, schedule and mesh settings and trains an RGFormer without
priors on LQ alone (restorect_jax/methods/restorer.py). Two sizes, picked after the config path
(`--config configs/restorer_denoise.py:student`):
  teacher: the RGFormer of the teacher_* configs (width 24, blocks (1, 2, 2, 2)): the fair
           LQ-only reference for the distilled student, and SLKD's Teacher A;
  student: the RGFormer of the restorect_* students (width 8, blocks (1, 1, 2, 2)): the student
           architecture trained alone, without priors.
Paper scale: --config.model.width=64 --config.model.num_blocks='(3,3,3,3)'
  --config.model.num_heads='(1,2,4,8)' --config.model.num_refinement_blocks=3
  --config.data.patch_size=192 --config.train.learning_rate=2e-4 --config.train.num_steps=300000
"""

import ml_collections

from configs import base

SIZES = {
    "teacher": {"width": 24, "num_blocks": (1, 2, 2, 2), "num_heads": (1, 2, 2, 4)},
    "student": {"width": 8, "num_blocks": (1, 1, 2, 2), "num_heads": (1, 1, 2, 4)},
}


def rgformer_model(size: str) -> ml_collections.ConfigDict:
    """An RGFormer without priors and Retinex heads, at the teacher's or the student's size."""
    if size not in SIZES:
        raise ValueError(f"restorer size {size!r} is unknown; choose one of {sorted(SIZES)}")
    model = ml_collections.ConfigDict()
    model.name = "rgformer"
    model.width = SIZES[size]["width"]
    model.num_blocks = SIZES[size]["num_blocks"]
    model.num_heads = SIZES[size]["num_heads"]
    model.num_refinement_blocks = 1
    model.ffn_expansion = 2.66
    model.retinex_heads = False  # no Retinex losses read them
    model.global_residual = True  # restored = LQ + the network's residual
    return model


def restorer_config(
    task_config: ml_collections.ConfigDict, size: str = "teacher"
) -> ml_collections.ConfigDict:
    config, section = base.for_method(task_config, "restorer", rgformer_model(size))
    section.loss = loss = ml_collections.ConfigDict()
    loss.l1 = 1.0  # |Y - GT|
    loss.psnr = 0.0  # -PSNR(Y, GT) (losses.psnr_loss)
    loss.hvi = 0.0  # HVI colour loss
    loss.hvi_k = 1.0  # its exponent
    return config
