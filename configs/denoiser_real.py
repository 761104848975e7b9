"""The denoiser for camera and phone photos (issue 26): the long-trained denoiser, fine-tuned on
a mix of camera noise and the AWGN it was trained on.

  python -m restorect_jax.main --config configs/denoiser_real.py --workdir runs/denoiser_real \
      --config.train.init_from=runs/denoiser

Same network and noise-level map as configs/denoiser.py, started from its EMA weights
(`train.init_from`, a run or bundle folder), with a fresh optimiser at a third of its learning
rate. Training data: CBSD432 crops 0-399, half of them with camera noise (unprocessing,
heteroscedastic sensor noise on a Bayer mosaic, development, JPEG half the time:
restorect_jax/data/camera_noise.py), half with the AWGN of sigma ~ U(0, 75); all clipped and
rounded to 8 bits. The noise-level map reads the standard deviation of the noise added. PolyU
(real photos) is for evaluation only and never enters training.
"""

import ml_collections

from configs import denoiser


def get_config() -> ml_collections.ConfigDict:
    config = denoiser.get_config()
    config.data.degradation = "camera"
    config.data.camera.awgn_fraction = 0.5
    train = config.train
    train.learning_rate = 3e-4
    train.warmup_steps = 200
    train.num_steps = 8000
    return config
