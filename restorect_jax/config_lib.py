"""Start-of-run validation of experiment configs (every error names the offending key), and
reading back the `config.json` a run saves."""

import ast
import importlib.util
import json
import pathlib
from typing import Any

import ml_collections

from restorect_jax.data.degradations import DEGRADATIONS

_SOURCES = ("embedded", "folder")
_DISTILL_MODES = ("restorect", "feature_mse", "none")
_SOLVERS = ("euler", "heun", "rk4")


def _require(condition: bool, key: str, value, expectation: str) -> None:
    if not condition:
        raise ValueError(f"config.{key}={value!r}: {expectation}")


def _positive_int(config: ml_collections.ConfigDict, key: str) -> None:
    value = _lookup(config, key)
    _require(isinstance(value, int) and value > 0, key, value, "must be a positive integer")


def _lookup(config: ml_collections.ConfigDict, key: str):
    node = config
    for part in key.split("."):
        if part not in node:
            raise ValueError(f"config.{key} is missing")
        node = node[part]
    return node


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the first config key whose value cannot work."""
    for key in (
        "train.batch_size",
        "train.num_steps",
        "train.log_every",
        "train.checkpoint_every",
        "train.keep_checkpoints",
        "data.patch_size",
        "model.width",
        "model.prior_dim",
    ):
        _positive_int(config, key)
    train = config.train
    _require(
        isinstance(train.eval_every, int) and train.eval_every >= 0,
        "train.eval_every",
        train.eval_every,
        "must be an integer >= 0 (0: no validation during training)",
    )
    _require(
        train.get("compute_dtype", "float32") in ("float32", "bfloat16"),
        "train.compute_dtype",
        train.get("compute_dtype"),
        "must be 'float32' or 'bfloat16'",
    )
    _require(train.learning_rate > 0, "train.learning_rate", train.learning_rate, "must be > 0")
    _require(
        0 <= train.warmup_steps < train.num_steps,
        "train.warmup_steps",
        train.warmup_steps,
        f"must be in [0, train.num_steps={train.num_steps})",
    )
    _require(0.0 <= train.ema_decay < 1.0, "train.ema_decay", train.ema_decay, "must be in [0, 1)")
    _require(
        train.grad_clip_norm >= 0, "train.grad_clip_norm", train.grad_clip_norm, "must be >= 0"
    )

    previous_start = 0
    for stage in train.progressive:
        _require(
            len(stage) == 3,
            "train.progressive",
            train.progressive,
            "entries must be (start_step, patch_size, batch_size)",
        )
        start, patch, batch = stage
        _require(
            previous_start < start < train.num_steps and patch % 8 == 0 and patch > 0 and batch > 0,
            "train.progressive",
            train.progressive,
            "needs increasing start steps in (0, train.num_steps), patch sizes that are positive "
            "multiples of 8 and positive batch sizes",
        )
        previous_start = start

    data = config.data
    _require(data.source in _SOURCES, "data.source", data.source, f"must be one of {_SOURCES}")
    _require(
        data.degradation in DEGRADATIONS,
        "data.degradation",
        data.degradation,
        f"must be one of {DEGRADATIONS}",
    )
    _require(
        data.patch_size % 8 == 0,
        "data.patch_size",
        data.patch_size,
        "must be a multiple of 8 (the U-Net's stride)",
    )
    _require(data.noise_sigma >= 0, "data.noise_sigma", data.noise_sigma, "must be >= 0")
    _require(
        data.noise_sigma_max == 0 or data.noise_sigma_max >= data.noise_sigma,
        "data.noise_sigma_max",
        data.noise_sigma_max,
        "must be 0 (fixed sigma) or at least data.noise_sigma (blind AWGN range)",
    )
    if data.source == "folder":
        _require(
            bool(data.train_dir),
            "data.train_dir",
            data.train_dir,
            "must name a folder under data.root when data.source='folder'",
        )
        _require(
            bool(data.val_dir),
            "data.val_dir",
            data.val_dir,
            "must name a folder under data.root when data.source='folder'",
        )
    if data.clean_train_dir:
        _require(
            data.paired and data.degradation != "none",
            "data.clean_train_dir",
            data.clean_train_dir,
            "needs data.paired=True and a data.degradation other than 'none' (it adds clean "
            "images, degraded on the fly, to paired training data)",
        )
        _require(
            0 < data.clean_train_share < 1,
            "data.clean_train_share",
            data.clean_train_share,
            "must be in (0, 1)",
        )
    elif data.paired:
        _require(
            data.degradation == "none",
            "data.degradation",
            data.degradation,
            "must be 'none' for paired data (data.paired=True) without data.clean_train_dir: "
            "the LQ images are given",
        )
    for key in ("train_range", "val_range"):
        start, stop = data[key]
        _require(
            0 <= start and (stop == 0 or stop > start),
            f"data.{key}",
            data[key],
            "must be (start, stop) with 0 <= start < stop, or (0, 0) for all files",
        )

    model = config.model
    _require(
        model.width % 4 == 0,
        "model.width",
        model.width,
        "must be a multiple of 4 (R-blocks split channels 3:1)",
    )
    for key in ("num_blocks", "num_heads"):
        _require(
            len(model[key]) == 4, f"model.{key}", model[key], "needs 4 entries (levels 1-3, latent)"
        )
    for level, heads in enumerate(model.num_heads):
        width = model.width * 2**level
        _require(
            heads > 0 and width % heads == 0,
            "model.num_heads",
            model.num_heads,
            f"level {level + 1} has {width} channels, not divisible by {heads} heads",
        )
    _require(
        0 < model.retinex_split < model.prior_dim,
        "model.retinex_split",
        model.retinex_split,
        f"must be in (0, model.prior_dim={model.prior_dim})",
    )

    if config.method == "restorect":
        _validate_distillation(config)

    mesh = config.mesh
    _require(mesh.data == -1 or mesh.data > 0, "mesh.data", mesh.data, "must be -1 or positive")
    _require(mesh.model > 0, "mesh.model", mesh.model, "must be positive")
    _require(
        isinstance(mesh.shard_params, bool),
        "mesh.shard_params",
        mesh.shard_params,
        "must be a bool",
    )
    _require(
        isinstance(mesh.shard_min_size, int) and mesh.shard_min_size >= 0,
        "mesh.shard_min_size",
        mesh.shard_min_size,
        "must be an integer >= 0",
    )


def _validate_distillation(config: ml_collections.ConfigDict) -> None:
    """Checks the keys of a RestoRect student run (configs/restorect_common.py)."""
    for key in ("distill", "teacher.workdir", "flow.num_steps", "train.phase1_steps"):
        _lookup(config, key)
    _require(
        config.distill in _DISTILL_MODES,
        "distill",
        config.distill,
        f"must be one of {_DISTILL_MODES}",
    )
    if config.distill != "none":
        _require(
            bool(config.teacher.workdir),
            "teacher.workdir",
            config.teacher.workdir,
            f"must name a trained teacher run for distill={config.distill!r}",
        )
    _positive_int(config, "flow.num_steps")
    _require(
        config.flow.solver in _SOLVERS,
        "flow.solver",
        config.flow.solver,
        f"must be one of {_SOLVERS}",
    )
    phase1 = config.train.phase1_steps
    _require(
        isinstance(phase1, int) and 0 <= phase1 < config.train.num_steps,
        "train.phase1_steps",
        phase1,
        f"must be an integer in [0, train.num_steps={config.train.num_steps})",
    )
    loss = config.loss
    _require(
        len(loss.flex_feature_weights) == 4,
        "loss.flex_feature_weights",
        loss.flex_feature_weights,
        "needs 4 weights (decoder levels 3, 2, 1, refinement)",
    )
    _require(
        len(loss.flex_prior_weights) == 2,
        "loss.flex_prior_weights",
        loss.flex_prior_weights,
        "needs 2 weights (z_img, z_rex)",
    )
    _require(
        0 < loss.flex_percentile <= 100,
        "loss.flex_percentile",
        loss.flex_percentile,
        "must be in (0, 100]",
    )


def _lists_to_tuples(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _lists_to_tuples(item) for key, item in value.items()}
    if isinstance(value, list):
        return tuple(_lists_to_tuples(item) for item in value)
    return value


def config_from_json(text: str) -> ml_collections.ConfigDict:
    """The config a run saved as `config.json` (JSON lists become the tuples configs use)."""
    return ml_collections.ConfigDict(_lists_to_tuples(json.loads(text)))


def load_config_file(path: str | pathlib.Path) -> ml_collections.ConfigDict:
    """`get_config()` of the config file at `path` (as `--config` reads it)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no config file {path}")
    spec = importlib.util.spec_from_file_location(f"restorect_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def apply_overrides(config: ml_collections.ConfigDict, items: list[str]) -> None:
    """Sets each `a.b.c=value` of `items` in place; values are Python literals, else strings.

    Raises ValueError naming an item that is not `key=value` or whose key the config lacks.
    """
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not key=value")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            if part not in node:
                raise ValueError(f"override {item!r}: config.{key} does not exist")
            node = node[part]
        if leaf not in node:
            raise ValueError(f"override {item!r}: config.{key} does not exist")
        node[leaf] = value
