"""Start-of-run validation of experiment configs (every error names the offending key), and
reading back the `config.json` a run saves."""

import ast
import importlib.util
import json
import pathlib
from typing import Any

import ml_collections

from restorect_jax.config_keys import lookup, require
from restorect_jax.data.camera_noise import CameraNoiseParams
from restorect_jax.data.degradations import DEGRADATIONS

_SOURCES = ("embedded", "folder")


def _positive_int(config: ml_collections.ConfigDict, key: str) -> None:
    value = lookup(config, key)
    require(isinstance(value, int) and value > 0, key, value, "must be a positive integer")


def validate_shared(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the first key, of those every run shares (train, data, frozen
    models, eval metrics, mesh), whose value cannot work. `methods.validate` adds the method's
    own keys."""
    for key in (
        "train.batch_size",
        "train.num_steps",
        "train.log_every",
        "train.checkpoint_every",
        "train.keep_checkpoints",
        "data.patch_size",
    ):
        _positive_int(config, key)
    _validate_train(config.train)
    _validate_data(config.data)
    _validate_folders(config.data)
    _validate_models(config)
    _validate_mesh(config.mesh)


def _validate_train(train: ml_collections.ConfigDict) -> None:
    """The optimiser, schedule, progressive stages and starting weights (`config.train`)."""
    require(
        isinstance(train.eval_every, int) and train.eval_every >= 0,
        "train.eval_every",
        train.eval_every,
        "must be an integer >= 0 (0: no validation during training)",
    )
    require(
        train.get("compute_dtype", "float32") in ("float32", "bfloat16"),
        "train.compute_dtype",
        train.get("compute_dtype"),
        "must be 'float32' or 'bfloat16'",
    )
    require(train.learning_rate > 0, "train.learning_rate", train.learning_rate, "must be > 0")
    require(
        0 <= train.warmup_steps < train.num_steps,
        "train.warmup_steps",
        train.warmup_steps,
        f"must be in [0, train.num_steps={train.num_steps})",
    )
    require(0.0 <= train.ema_decay < 1.0, "train.ema_decay", train.ema_decay, "must be in [0, 1)")
    require(train.grad_clip_norm >= 0, "train.grad_clip_norm", train.grad_clip_norm, "must be >= 0")

    previous_start = 0
    for stage in train.progressive:
        require(
            len(stage) == 3,
            "train.progressive",
            train.progressive,
            "entries must be (start_step, patch_size, batch_size)",
        )
        start, patch, batch = stage
        require(
            previous_start < start < train.num_steps and patch > 0 and batch > 0,
            "train.progressive",
            train.progressive,
            "needs increasing start steps in (0, train.num_steps), positive patch sizes (multiples "
            "of the backbone's stride: methods.validate) and positive batch sizes",
        )
        previous_start = start

    init_from = train.get("init_from", "")
    require(
        not init_from or pathlib.Path(init_from).expanduser().is_dir(),
        "train.init_from",
        init_from,
        "must be a run or bundle folder (or empty)",
    )


def _validate_data(data: ml_collections.ConfigDict) -> None:
    """The source and the degradation of the training data (`config.data`)."""
    require(data.source in _SOURCES, "data.source", data.source, f"must be one of {_SOURCES}")
    require(
        data.degradation in DEGRADATIONS,
        "data.degradation",
        data.degradation,
        f"must be one of {DEGRADATIONS}",
    )
    require(data.noise_sigma >= 0, "data.noise_sigma", data.noise_sigma, "must be >= 0")
    require(
        data.noise_sigma_max == 0 or data.noise_sigma_max >= data.noise_sigma,
        "data.noise_sigma_max",
        data.noise_sigma_max,
        "must be 0 (fixed sigma) or at least data.noise_sigma (blind AWGN range)",
    )
    CameraNoiseParams.from_config(data.get("camera") or {})  # names a bad data.camera key


def _validate_folders(data: ml_collections.ConfigDict) -> None:
    """The folders, pairing and file ranges of folder data (`config.data`)."""
    if data.source == "folder":
        require(
            bool(data.train_dir),
            "data.train_dir",
            data.train_dir,
            "must name a folder under data.root when data.source='folder'",
        )
        require(
            bool(data.val_dir),
            "data.val_dir",
            data.val_dir,
            "must name a folder under data.root when data.source='folder'",
        )
    if data.clean_train_dir:
        require(
            data.paired and data.degradation != "none",
            "data.clean_train_dir",
            data.clean_train_dir,
            "needs data.paired=True and a data.degradation other than 'none' (it adds clean "
            "images, degraded on the fly, to paired training data)",
        )
        require(
            0 < data.clean_train_share < 1,
            "data.clean_train_share",
            data.clean_train_share,
            "must be in (0, 1)",
        )
    elif data.paired:
        require(
            data.degradation == "none",
            "data.degradation",
            data.degradation,
            "must be 'none' for paired data (data.paired=True) without data.clean_train_dir: "
            "the LQ images are given",
        )
    for key in ("train_range", "val_range"):
        start, stop = data[key]
        require(
            0 <= start and (stop == 0 or stop > start),
            f"data.{key}",
            data[key],
            "must be (start, stop) with 0 <= start < stop, or (0, 0) for all files",
        )


def _validate_models(config: ml_collections.ConfigDict) -> None:
    """Frozen models and evaluation metrics."""
    for name, workdir in config.get("frozen", {}).items():
        require(
            isinstance(workdir, str) and bool(workdir),
            f"frozen.{name}",
            workdir,
            "must name a finished run's workdir (config.json + checkpoints)",
        )
    from restorect_jax.metrics import registry  # here: heavy, needed only to validate

    metrics = tuple(config.eval.get("metrics", ()))
    try:
        registry.check_names(metrics)
    except ValueError as err:
        raise ValueError(f"config.eval.metrics={metrics!r}: {err}") from None


def _validate_mesh(mesh: ml_collections.ConfigDict) -> None:
    """The device mesh (`config.mesh`)."""
    require(mesh.data == -1 or mesh.data > 0, "mesh.data", mesh.data, "must be -1 or positive")
    require(mesh.model > 0, "mesh.model", mesh.model, "must be positive")
    require(
        isinstance(mesh.shard_params, bool),
        "mesh.shard_params",
        mesh.shard_params,
        "must be a bool",
    )
    require(
        isinstance(mesh.shard_min_size, int) and mesh.shard_min_size >= 0,
        "mesh.shard_min_size",
        mesh.shard_min_size,
        "must be an integer >= 0",
    )


def _lists_to_tuples(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _lists_to_tuples(item) for key, item in value.items()}
    if isinstance(value, list):
        return tuple(_lists_to_tuples(item) for item in value)
    return value


# Methods renamed since runs were saved: the old `config.method` -> today's.
RENAMED_METHODS = {"teacher": "restorect_teacher"}
# Keys that configs saved before the method-neutral base kept outside their method's section:
# old dotted key -> its key inside the section named after the method (`config.<method>.<key>`).
MOVED_INTO_METHOD_SECTION = {
    "loss": "loss",
    "distill": "distill",
    "flow": "flow",
    "train.phase1_steps": "phase1_steps",
}


def upgrade_saved(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """`config` (a saved run's, changed in place) in today's layout: a renamed method gets its
    new name, and the keys of `MOVED_INTO_METHOD_SECTION` move into the method's section. A
    method that already had its section (IR-Flow, SLKD, FLUX-IR) kept all its keys there: the
    `loss` its old configs carry was inherited from a teacher's config, unused, and is dropped."""
    method = RENAMED_METHODS.get(config.get("method"), config.get("method"))
    if method is None:
        return config
    config.method = method
    had_section = method in config
    for old_key, new_key in MOVED_INTO_METHOD_SECTION.items():
        parent_key, _, name = old_key.rpartition(".")
        parent = config.get(parent_key) if parent_key else config
        if parent is None or name not in parent:
            continue
        value = parent[name]
        del parent[name]
        if had_section:
            continue
        if method not in config:
            config[method] = ml_collections.ConfigDict()
        config[method][new_key] = value
    return config


def config_from_json(text: str) -> ml_collections.ConfigDict:
    """The config a run saved as `config.json` in today's layout (`upgrade_saved`; JSON lists
    become the tuples configs use)."""
    return upgrade_saved(ml_collections.ConfigDict(_lists_to_tuples(json.loads(text))))


def split_config_spec(spec: str | pathlib.Path) -> tuple[pathlib.Path, str]:
    """`--config`'s `file.py[:arg]` as (file, arg); arg is "" when there is none."""
    path, separator, arg = str(spec).partition(".py:")
    return pathlib.Path(path + ".py" if separator else path), arg


def load_config_file(path: str | pathlib.Path) -> ml_collections.ConfigDict:
    """`get_config()` of the config file at `path` (as `--config` reads it).

    `file.py:arg` calls `get_config("arg")`, as `--config` does.
    """
    path, arg = split_config_spec(path)
    if not path.is_file():
        raise FileNotFoundError(f"no config file {path}")
    spec = importlib.util.spec_from_file_location(f"restorect_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()


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
