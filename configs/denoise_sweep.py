"""The colour-denoiser architecture sweep (issue 25): one config per candidate, one recipe.

  python -m restorect_jax.main --config configs/denoise_sweep.py:unshuffle_cnn --workdir DIR

Every candidate trains as a one-step restorer on CBSD432 crops 0-399 with AWGN sigma 25
(clipped, 8-bit quantised) and validates on the held-out CBSD432 crops 400-431, never on a
test set; `tools/sweep_denoise.py` sets `train.num_steps` so that each trains for the same
CPU time, and scores the finished runs on CBSD68. Candidates:
  time_unet:     the one-step TimeUNet of configs/irflow_denoise.py:one_step (0.60M params);
  rgformer:      the teacher-size RGFormer restorer of configs/restorer_denoise.py;
  unshuffle_cnn: FFDNet's layout and cost (models/convnets.py), width 96, 12 convolutions
                 (5 residual pairs);
  res_unet:      a DRUNet-like residual U-Net of dense convolutions, width 64, (2, 2, 2) blocks.
"""

import ml_collections

from configs import irflow_common, restorer_common, tasks

CANDIDATES = ("time_unet", "rgformer", "unshuffle_cnn", "res_unet")


def candidate_model(candidate: str) -> ml_collections.ConfigDict:
    """The model config of a CPU-designed candidate (the other two come from their configs)."""
    model = ml_collections.ConfigDict()
    model.name = candidate
    model.noise_map = False  # the sweep trains at one sigma
    if candidate == "unshuffle_cnn":
        model.width = 96
        model.num_blocks = 5
    else:
        model.width = 64
        model.num_blocks = (2, 2, 2)
    return model


def get_config(candidate: str = "unshuffle_cnn") -> ml_collections.ConfigDict:
    if candidate not in CANDIDATES:
        raise ValueError(f"sweep candidate {candidate!r} is unknown; choose one of {CANDIDATES}")
    task = tasks.bench("denoise")
    if candidate == "time_unet":
        config = irflow_common.irflow_config(task, "one_step")
    else:
        config = restorer_common.restorer_config(task, "teacher")
        if candidate != "rgformer":
            config.model = candidate_model(candidate)
    data = config.data
    data.quantize = True  # LQ rounded to 8 bits, as users' images are
    data.train_range = (0, 400)
    data.val_dir = data.train_dir
    data.val_range = (400, 432)
    data.val_crop = 128
    data.patch_size = 64
    train = config.train
    train.batch_size = 8
    train.learning_rate = 1e-3
    train.warmup_steps = 500
    train.num_steps = 4000  # tools/sweep_denoise.py sets it from the CPU-time budget
    train.eval_every = 500
    train.checkpoint_every = 500
    train.log_every = 100
    return config
