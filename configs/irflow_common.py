"""Turns a task config into an IR-Flow config (restorect_jax/methods/irflow.py, METHODS 2).

The run keeps the task's data, schedule and mesh settings and trains a TimeUNet on the flow from
the degraded image to the clean one. Variants, picked after the config path
(`--config configs/irflow_denoise.py:one_step`):
  cumulative: cumulative velocity, multi-step consistency with gradients (the default);
  nograd:     the same, with the rollout under stop_gradient as in the public code;
  velocity:   the plain rectified-flow velocity y - x as the target;
  one_step:   t = 1 only, no rollout: the same network as a one-step residual restorer.
The CPU size (width 12, 4 levels, one ResBlock each, attention at the two lowest) is matched to
the RestoRect student: 0.60M params and 4.2 GFLOPs per 256x256 step against the student's 0.49M
and 4.3 GFLOPs. Paper scale (the public U-Net; about 137M params with its channel multipliers):
  --config.model.width=64 --config.model.num_blocks='(2,2,2,2)'
  --config.model.attention='(True,True,True,True)' --config.model.num_heads=4
  --config.data.patch_size=256 --config.train.batch_size=8 --config.train.learning_rate=1e-4
  --config.train.num_steps=300000
"""

import ml_collections

from configs import base

VARIANTS = ("cumulative", "nograd", "velocity", "one_step")


def time_unet_model() -> ml_collections.ConfigDict:
    """The CPU-size TimeUNet (models/time_unet.py) of IR-Flow and FLUX-IR."""
    model = ml_collections.ConfigDict()
    model.name = "time_unet"
    model.width = 12  # channels of level 0; level l has width * 2^l
    model.num_blocks = (1, 1, 1, 1)  # FiLM ResBlocks per level; 4 levels = stride 8
    model.attention = (False, False, True, True)  # linear attention after each block of a level
    model.num_heads = 1
    return model


def irflow_config(
    task_config: ml_collections.ConfigDict, variant: str = "cumulative"
) -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f"IR-Flow variant {variant!r} is unknown; choose one of {VARIANTS}")
    config, irflow = base.for_method(task_config, "irflow", time_unet_model())
    # What the network predicts: cumulative (x_t - x) | velocity (y - x) | one_step (t = 1 only).
    irflow.target = "one_step" if variant == "one_step" else variant.replace("nograd", "cumulative")
    irflow.time_points = 0  # training times: 0 = uniform in [0, 1]; P > 1 = the grid n / (P - 1)
    irflow.sampler = "euler:4"  # prediction solver and steps (flow.parse_sampler)
    irflow.grid = "uniform"  # uniform | public (the public grids for 2, 3 and 4 steps)
    irflow.msc = msc = ml_collections.ConfigDict()
    msc.weight = 0.0 if variant == "one_step" else 0.3  # lambda (paper: 0.3; deblurring 0.2)
    msc.min_steps = 2  # K ~ U{min_steps .. max_steps} per training step
    msc.max_steps = 10  # the static length of the masked rollout
    msc.gradient = variant != "nograd"  # False: the rollout under stop_gradient (public code)
    msc.unroll = True  # unroll the rollout's scan: ~5x faster backward on CPU, longer compile
    return config
