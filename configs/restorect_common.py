"""RestoRect's configs: the teacher (stage S1) on a task, and the student distilled from it.

`teacher_config` adds the teacher's RGFormer with priors and its loss weights
(`config.restorect_teacher`) to a task config (configs/tasks.py). `student_config` turns a
teacher's config into its student's: the data, schedule and mesh stay, the student gets its own
model and `config.restorect` (distillation mode, flow phase, flow and loss weights). `distill`
picks RestoRect or one of the two baselines (see restorect_jax/methods/restorect.py).
"""

import ml_collections

from configs import base

# The teacher's sizes: "main" for the main job (configs/default.py), "cpu" for the benchmarks'
# teacher_* configs (paper: width 64, blocks 3/3/3/3, heads 1/2/4/8, prior features 64).
TEACHER_SIZES = {
    "main": {"width": 16, "num_blocks": (1, 1, 1, 1), "num_heads": (1, 1, 2, 4), "prior": 16},
    "cpu": {"width": 24, "num_blocks": (1, 2, 2, 2), "num_heads": (1, 2, 2, 4), "prior": 24},
}


def teacher_model(size: str) -> ml_collections.ConfigDict:
    """The RestoRect teacher's network (models/teacher.py) at one of `TEACHER_SIZES`."""
    if size not in TEACHER_SIZES:
        raise ValueError(f"teacher size {size!r} is unknown; choose one of {sorted(TEACHER_SIZES)}")
    sizes = TEACHER_SIZES[size]
    model = ml_collections.ConfigDict()
    model.name = "restorect_teacher"  # restorect_jax.models registry name
    model.width = sizes["width"]  # C: channels at level 1 (paper: 64)
    model.num_blocks = sizes["num_blocks"]  # blocks at levels 1, 2, 3 and the latent (paper: 3s)
    model.num_heads = sizes["num_heads"]  # attention heads per level (paper: 1, 2, 4, 8)
    model.num_refinement_blocks = 1  # T-blocks after the decoder (paper: 3)
    model.ffn_expansion = 2.66  # hidden width of the gated FFN, as a multiple of the input width
    model.prior_dim = 256  # length of the image and Retinex prior vectors
    model.retinex_split = 192  # reflectance part of the Retinex prior; the rest is illumination
    model.prior_features = sizes["prior"]  # prior encoders' residual blocks' width (paper: 64)
    model.prior_res_blocks = 2  # residual blocks per prior encoder (paper: 5)
    model.decomp_features = 16  # width of the Retinex decomposition network (paper: 32)
    # Decomposition output: "sigmoid" keeps R, L in (0, 1) and L > 0; "relu" as in the paper's code.
    model.decomp_output_activation = "sigmoid"
    model.head_features = 16  # width of the auxiliary Retinex heads (paper: 64)
    return model


def teacher_config(
    task_config: ml_collections.ConfigDict, size: str = "cpu"
) -> ml_collections.ConfigDict:
    """The RestoRect teacher (stage S1) trained on `task_config`'s data."""
    config, section = base.for_method(task_config, "restorect_teacher", teacher_model(size))
    section.loss = loss = ml_collections.ConfigDict()
    loss.l1 = 1.0  # L1(restored, GT)
    loss.retinex_head = 0.1  # auxiliary Retinex heads against the decomposition
    loss.hvi = 0.05  # HVI (trigonometric colour polarisation) loss
    loss.decomposition = 0.1  # Retinex decomposition: reconstruction + consistency + smoothness
    loss.illumination_smoothness = (
        0.1  # weight of the smoothness term inside the decomposition loss
    )
    loss.diffusion = 0.05  # anisotropic-diffusion texture term
    # Train the HVI exponent k and the diffusion edge scale s (METHODS 1.5)? Their only gradient
    # comes from the term they scale, which they shrink by running to a bound: measured on the
    # default job, s hit its floor 0.01 by step 250 and the diffusion term fell to 4e-4. Off
    # keeps them at their initial values (k = 1, s = 0.1).
    loss.learn_hvi_k = False
    loss.learn_diffusion_scale = False
    return config


def student_config(
    teacher: ml_collections.ConfigDict, teacher_workdir: str, distill: str = "restorect"
) -> ml_collections.ConfigDict:
    config = teacher.copy_and_resolve_references()
    del config.restorect_teacher
    config.method = "restorect"
    config.restorect = section = ml_collections.ConfigDict()
    section.distill = (
        distill  # "restorect" | "feature_mse" (no flow, MSE features) | "none" (alone)
    )

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
    model.prior_dim = teacher.model.prior_dim  # must match the teacher's priors
    model.retinex_split = teacher.model.retinex_split
    model.head_features = 8  # auxiliary Retinex heads
    model.condition_features = 8  # condition encoders' residual trunk
    model.condition_res_blocks = 1
    model.condition_embed_dim = 64  # channels before the spatial mean
    model.condition_mlp_hidden = 64
    model.decomp_features = 8  # the student's own decomposition network
    model.decomp_output_activation = "sigmoid"
    model.velocity_hidden = 64  # hidden width of each velocity predictor
    model.time_dim = 64  # sinusoidal time embedding

    section.flow = flow = ml_collections.ConfigDict()
    flow.num_steps = 4  # ODE steps when sampling priors (training and prediction)
    flow.solver = "euler"  # euler | heun | rk4
    flow.time_points = 0  # training times: 0 = uniform in [0, 1]; K > 1 = a K-point grid
    flow.remat = False  # recompute each ODE step in the backward pass
    flow.noise_seed = 0  # the fixed start noise at prediction time

    section.phase1_steps = config.train.num_steps // 10  # flow-only phase (distill=restorect)

    section.loss = loss = ml_collections.ConfigDict()
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
