"""Turns a task config into a FLUX-IR config (restorect_jax/methods/fluxir.py, METHODS 4).

The network is IR-Flow's TimeUNet (configs/irflow_common.py) with the degraded image
concatenated to its input. The run's steps are split between the phases: base (60%), rl (20%)
and distill (20%) by default. Variants after the config path
(`--config configs/fluxir_denoise.py:two_step`):
  base:     the conditional flow alone (every step in the base phase), 10 Euler steps;
  rl:       base then RL trajectory guidance (80% / 20%), 10 Euler steps;
  two_step: base, rl, then a 2-step student at `fluxir.breakpoint` (the default);
  one_step: base, rl, then a 1-step student.
Paper scale: the TimeUNet's paper-scale flags (configs/irflow_common.py), rl.num_samples 8
(the paper fine-tunes with a learning rate near 5e-6 in its RL stage; here one schedule runs
through every phase).
"""

import ml_collections

from configs import base, irflow_common

VARIANTS = ("base", "rl", "two_step", "one_step")


def fluxir_config(
    task_config: ml_collections.ConfigDict, variant: str = "two_step"
) -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f"FLUX-IR variant {variant!r} is unknown; choose one of {VARIANTS}")
    config, fluxir = base.for_method(task_config, "fluxir", irflow_common.time_unet_model())
    steps = config.train.num_steps

    fluxir.sampler = "euler:10"  # the base and RL model's ODE (and the RL trajectories' grid)
    fluxir.noise_seed = 0  # the fixed prediction start noise
    fluxir.base_steps = {"base": steps, "rl": steps * 4 // 5}.get(variant, steps * 3 // 5)
    fluxir.rl_steps = (
        0 if variant == "base" else (steps - fluxir.base_steps) if variant == "rl" else steps // 5
    )
    fluxir.student_steps = {"two_step": 2, "one_step": 1}.get(variant, 0)
    fluxir.breakpoint = 0.5  # t* of the 2-step student (tools/breakpoints.py finds one)
    fluxir.teacher_steps = 10  # Euler steps of the distill phase's teacher trajectory
    fluxir.rl = rl = ml_collections.ConfigDict()
    rl.num_samples = 4  # trajectories per image (paper: 4-8)
    rl.refresh_every = 50  # steps between refreshes of the sampling policy copy
    rl.reward = "l1"  # l1 (-|x^_0 - x|) | psnr
    rl.alpha_max = 1.5  # the SDE step's overshoot factor is drawn in [1, alpha_max)
    rl.trajectory_weight = 1.0  # mean_t |X_ODE[t] - X_best[t]|^2
    rl.terminal_weight = 1.0  # |X_ODE[0] - GT|^2
    rl.base_weight = 1.0  # L_base
    fluxir.distill = distill = ml_collections.ConfigDict()
    distill.breakpoint = 100.0  # MSE(X_t*, X^tea_t*) (2-step student)
    distill.teacher = 300.0  # MSE (2-step) or L1 (1-step) of X_0 against the teacher's
    distill.gt = 300.0  # the same against GT
    distill.base = 1.0  # L_base
    return config
