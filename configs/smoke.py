"""Tiny teacher run for tests: a few steps on the embedded photos, every feature switched on."""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
    config = default.get_config()
    config.compilation_cache_dir = ""
    config.model.width = 8
    config.model.num_heads = (1, 1, 2, 2)
    config.model.prior_features = 8
    config.model.prior_res_blocks = 1
    config.model.decomp_features = 8
    config.model.head_features = 8
    config.model.prior_dim = 32
    config.model.retinex_split = 24
    config.data.patch_size = 24
    config.data.val_crop = 40
    config.data.val_count = 2
    config.train.batch_size = 8
    config.train.num_steps = 6
    config.train.warmup_steps = 2
    config.train.log_every = 2
    config.train.eval_every = 3
    config.train.checkpoint_every = 3
    config.eval.sample_images = 2
    return config
