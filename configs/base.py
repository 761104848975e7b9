"""The method-neutral base of every config: seed, data, training schedule, mesh and evaluation.

A method's config adds `config.method`, its network (`config.model`) and its own keys in one
section named after the method (`config.restorect`, `config.irflow`, ...): see the
`configs/<method>_common.py` helpers. A task (configs/tasks.py) sets only the data and its
degradation. Defaults: colour denoising at AWGN sigma 25 on the photos that ship inside
scikit-image, sized for a 2-core CPU.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0  # seeds parameter init, data order, crops and noise
    # restorect_jax.methods registry name; the method's configs (configs/<method>_common.py) set
    # it, its model (`config.model`) and its own keys in the section named after it.
    config.method = ""
    # Where XLA keeps compiled programs between runs ("" = off).
    config.compilation_cache_dir = "~/.cache/restorect_jax/jax_cache"

    config.data = data = ml_collections.ConfigDict()
    data.source = "embedded"  # "embedded": photos bundled with scikit-image; "folder": under root
    data.root = ""  # benchmark data root; "" = $RESTORECT_DATA_DIR, else ../shared/data
    data.tfds_dir = ""  # where TFDS datasets are built; "" = ~/.cache/restorect_jax/tfds
    data.train_dir = ""  # training folder, relative to root (folder source)
    data.val_dir = ""  # validation folder, relative to root (folder source)
    data.paired = False  # True: LQ and GT images in data.lq_subdir / data.gt_subdir
    data.lq_subdir = "rain"  # degraded images of a paired folder
    data.gt_subdir = "norain"  # clean images of a paired folder
    data.clean_train_dir = ""  # paired data only: clean images added, degraded by data.degradation
    data.clean_train_share = 0.5  # fraction of training crops drawn from data.clean_train_dir
    data.train_range = (0, 0)  # (start, stop) over the sorted training files; (0, 0) = all
    data.val_range = (0, 0)  # (start, stop) over the sorted validation files; (0, 0) = all
    data.degradation = "awgn"  # synthetic degradation: awgn|lowlight|rain|camera|none
    data.noise_sigma = 25.0  # AWGN standard deviation on the [0, 255] scale
    data.noise_sigma_max = 0.0  # > 0: blind AWGN, sigma ~ U(noise_sigma, noise_sigma_max) per image
    data.clip = True  # clip degraded images to [0, 1]
    # Batches carry each image's AWGN sigma / 255 as `noise_level` (AWGN only), for models that
    # read a noise-level map (model.noise_map).
    data.noise_level = False
    data.quantize = False  # round degraded images to 8 bits (needs data.clip), as photos are
    # Low-light model y = scale * gt^gamma, then Poisson-Gaussian noise (data/degradations.py).
    data.lowlight = lowlight = ml_collections.ConfigDict()
    lowlight.gamma_min = 1.5  # darkening exponent, drawn uniformly in [gamma_min, gamma_max]
    lowlight.gamma_max = 3.0
    lowlight.scale_min = 0.1  # exposure scale, drawn uniformly in [scale_min, scale_max]
    lowlight.scale_max = 0.5
    lowlight.shot_peak = 500.0  # photon count at signal 1 (Poisson shot noise)
    lowlight.read_sigma = 2.0  # Gaussian read noise on the [0, 255] scale
    # Rain streaks stretched from random seeds, screen-blended, under a veil (data/degradations.py).
    data.rain = rain = ml_collections.ConfigDict()
    rain.density_min = 0.002  # fraction of pixels seeding a streak, in [density_min, density_max]
    rain.density_max = 0.012
    rain.length_min = 15.0  # streak length in pixels
    rain.length_max = 50.0
    rain.angle_max = 30.0  # largest angle from vertical, degrees
    rain.width_min = 0.3  # Gaussian blur across streaks, pixels
    rain.width_max = 0.8
    rain.intensity_min = 0.3  # streak brightness
    rain.intensity_max = 0.9
    rain.veil_max = 0.25  # strength of the rain veil (airlight)
    # Camera noise: unprocess to raw, heteroscedastic noise on a Bayer mosaic, develop, maybe JPEG
    # (data/camera_noise.py); data.degradation="camera".
    data.camera = camera = ml_collections.ConfigDict()
    camera.shot_min = 1e-4  # shot-noise factor, log-uniform in [shot_min, shot_max]
    camera.shot_max = 0.012
    camera.read_slope = 2.18  # log read ~ N(read_slope * log shot + read_intercept, read_spread^2)
    camera.read_intercept = 1.20
    camera.read_spread = 0.26
    camera.jpeg_probability = 0.5  # fraction of images saved as JPEG after development
    camera.jpeg_quality_min = 60
    camera.jpeg_quality_max = 95
    camera.awgn_fraction = 0.5  # fraction of images given the AWGN model instead
    data.patch_size = 48  # square training crops (a multiple of 8)
    data.val_crop = 256  # centre crop of validation images during training; 0 = full size
    data.val_count = 0  # validation images used; 0 = all
    data.num_workers = 0  # grain worker processes (0 = in the main process)
    data.prefetch = 2  # batches prefetched by grain

    config.train = train = ml_collections.ConfigDict()
    train.batch_size = 4  # global batch, split over the mesh's data axis
    train.num_steps = 500  # optimiser steps
    # Progressive training: later stages ((start_step, patch_size, batch_size), ...) after the
    # first (data.patch_size, train.batch_size); e.g. the paper grows crops from 192 to 512.
    train.progressive = ()
    train.learning_rate = 2e-3  # peak learning rate (paper: 2e-4 at paper scale)
    train.warmup_steps = 50  # linear warm-up before the cosine decay
    train.end_learning_rate_factor = 0.01  # cosine decays to this fraction of the peak
    train.weight_decay = 1e-4  # AdamW decoupled weight decay
    train.b1 = 0.9  # AdamW beta1
    train.b2 = 0.999  # AdamW beta2
    train.grad_clip_norm = 1.0  # global-norm gradient clipping; 0 = off
    # "bfloat16": the loss (models, teacher, losses) runs in bf16 on copies of the float32
    # params; gradients, optimiser and EMA stay float32 (mixed precision for accelerators).
    train.compute_dtype = "float32"
    train.ema_decay = 0.999  # EMA of params used for evaluation (with a 1/(1+step) warm-up)
    train.log_every = 50  # steps between progress lines and scalar summaries
    train.eval_every = 250  # steps between validation runs (and at the end); 0 = none
    train.checkpoint_every = 250  # steps between checkpoints (and at the end)
    train.keep_checkpoints = 2  # checkpoints kept on disk
    train.async_checkpointing = True  # write checkpoints in the background
    # A fresh run starts from these weights (a run or bundle folder whose network has the same
    # parameter shapes; its EMA params), with a fresh optimiser; "" = random initialisation.
    train.init_from = ""

    config.mesh = mesh = ml_collections.ConfigDict()
    mesh.data = -1  # devices on the data-parallel axis; -1 = all devices / model
    mesh.model = 1  # devices on the model axis (without shard_params they repeat the work)
    # FSDP: split params, EMA and optimiser state along the model axis and the batch along both
    # axes (restorect_jax/sharding.py); False replicates the state on every device.
    mesh.shard_params = False
    # Leaves with fewer elements stay replicated when sharding (2**12: the teacher_denoise
    # teacher's params per device fall to 17% of replicated on 8 devices; 2**14 only to 30%).
    mesh.shard_min_size = 2**12

    # Frozen models the method reads by name: {name: a finished run's workdir}.
    config.frozen = ml_collections.ConfigDict()

    config.eval = ml_collections.ConfigDict()
    config.eval.sample_images = 4  # validation images shown in the PNG sample grid
    # Validation metrics during training (restorect_jax.metrics registry names).
    config.eval.metrics = ("psnr", "ssim")
    return config


def for_method(
    task_config: ml_collections.ConfigDict, method: str, model: ml_collections.ConfigDict
) -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """A copy of `task_config` (a task's, configs/tasks.py) that trains `method` on the network
    `model`, and the method's own section `config.<method>`, empty for the caller to fill."""
    config = task_config.copy_and_resolve_references()
    config.method = method
    config.model = model
    config[method] = section = ml_collections.ConfigDict()
    return config, section
