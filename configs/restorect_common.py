"""Turns a teacher config into the config of a RestoRect student distilled from that teacher.

The student keeps the teacher's data, schedule and mesh settings and gets its own model, losses
and distillation settings. `distill` picks RestoRect or one of the two baselines (see
restorect_jax/methods/restorect.py).
"""

import ml_collections


def student_config(
    teacher_config: ml_collections.ConfigDict, teacher_workdir: str, distill: str = "restorect"
) -> ml_collections.ConfigDict:
    config = teacher_config.copy_and_resolve_references()
    config.method = "restorect"
    config.distill = distill  # "restorect" | "feature_mse" (no flow, feature MSE) | "none" (alone)

    # A finished restorect_teacher run (config.json + checkpoints); its newest EMA params.
    config.frozen.teacher = teacher_workdir

    # About a fifth of the teacher_denoise teacher's params and FLOPs (tools/bench_distill.py).
    config.model = model = ml_collections.ConfigDict()
    model.name = "restorect_student"
    model.width = 8  # C of the student's RGFormer (teacher_denoise: 24; paper teacher: 64)
    model.num_blocks = (1, 1, 2, 2)
    model.num_heads = (1, 1, 2, 4)
    model.num_refinement_blocks = 1
    model.ffn_expansion = 2.66
    model.prior_dim = teacher_config.model.prior_dim  # must match the teacher's priors
    model.retinex_split = teacher_config.model.retinex_split
    model.head_features = 8  # auxiliary Retinex heads
    model.condition_features = 8  # condition encoders' residual trunk
    model.condition_res_blocks = 1
    model.condition_embed_dim = 64  # channels before the spatial mean
    model.condition_mlp_hidden = 64
    model.decomp_features = 8  # the student's own decomposition network
    model.decomp_output_activation = "sigmoid"
    model.velocity_hidden = 64  # hidden width of each velocity predictor
    model.time_dim = 64  # sinusoidal time embedding

    config.flow = flow = ml_collections.ConfigDict()
    flow.num_steps = 4  # ODE steps when sampling priors (training and prediction)
    flow.solver = "euler"  # euler | heun | rk4
    flow.time_points = 0  # training times: 0 = uniform in [0, 1]; K > 1 = a K-point grid
    flow.remat = False  # recompute each ODE step in the backward pass
    flow.noise_seed = 0  # the fixed start noise at prediction time

    config.train.phase1_steps = config.train.num_steps // 10  # flow-only phase (restorect)

    config.loss = loss = ml_collections.ConfigDict()
    loss.l1 = 1.0
    loss.retinex_head = 0.1
    loss.hvi = 0.05
    loss.hvi_k = 1.0  # fixed HVI exponent (the teacher's default)
    loss.decomposition = 0.1
    loss.illumination_smoothness = 0.1
    loss.diffusion = 0.05
    loss.diffusion_scale = 0.1  # fixed anisotropic-diffusion edge scale
    loss.velocity_phase1 = 0.1  # rectified-flow loss in the flow phase
    loss.velocity = 0.05  # rectified-flow loss in the student phase
    loss.prior_l1 = 0.1  # |z^ - z| of the sampled priors
    loss.flex = 0.5  # lambda of FLEX
    loss.flex_feature_weights = (2.0, 1.41, 1.0, 1.0)  # decoder levels 3, 2, 1, refinement
    loss.flex_prior_weights = (2.0, 1.41)  # z_img, z_rex
    loss.flex_percentile = 95.0  # outlier mask percentile
    # Differentiate FLEX through the student's mean/std too? That has a degenerate minimum
    # (spikes inflate sigma_S and the mask drops them; see losses.flex_loss); off by default.
    loss.flex_stats_gradient = False
    loss.feature_mse = 0.5  # the feature_mse baseline's weight
    return config
