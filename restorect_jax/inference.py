"""Trained models for inference: load a run's checkpoint or a weight bundle, and restore images.

A **run** is a training workdir (`config.json` + Orbax `checkpoints/`); a **bundle** is a folder
with the run's `config.json` and the EMA params that prediction reads as `params.msgpack`
(`flax.serialization`), small enough to ship inside the package. Either gives a `LoadedModel`
whose `predict` restores (B, H, W, 3) batches whose sides are multiples of `stride`.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from restorect_jax import checkpoint as checkpoint_lib
from restorect_jax import methods
from restorect_jax.config_lib import config_from_json

PyTree = Any
BUNDLE_CONFIG = "config.json"
BUNDLE_PARAMS = "params.msgpack"
TASKS = ("denoise", "derain", "lowlight")
WEIGHTS_DIR = pathlib.Path(__file__).parent / "weights"  # The bundles shipped in the package.


class ModelLoadError(ValueError):
    """A run, checkpoint or bundle that cannot give a model; the message says which and why."""


def task_of(config: ml_collections.ConfigDict) -> str:
    """The restoration task a run's data config trains: denoise, derain or lowlight."""
    if config.data.degradation == "lowlight":
        return "lowlight"
    if config.data.degradation == "rain" or config.data.paired:
        return "derain"
    return "denoise"


@dataclasses.dataclass
class LoadedModel:
    """A method with its trained prediction params.

    Attributes:
      name: for reports, e.g. "teacher_denoise@2000".
      config: the run's config.
      method: the method, built for inference (no frozen teacher loaded).
      params: what `method.predict` reads (`method.inference_params` of the EMA params).
    """

    name: str
    config: ml_collections.ConfigDict
    method: methods.Method
    params: PyTree

    def __post_init__(self):
        method = self.method

        def predict(params, lq, gt, num_steps):
            batch = {"lq": lq, "gt": gt}
            if method.uses_flow:
                return method.predict(params, {}, batch, num_steps)
            return method.predict(params, {}, batch)

        self._predict = jax.jit(predict, static_argnums=(3,))

    @property
    def stride(self) -> int:
        return self.method.stride

    @property
    def task(self) -> str:
        return task_of(self.config)

    def predict(
        self, lq: np.ndarray, gt: np.ndarray | None = None, num_steps: int | None = None
    ) -> np.ndarray:
        """Restores a (B, H, W, 3) batch (H, W multiples of `stride`); `gt` only if privileged.

        `num_steps` sets the ODE steps of flow models (default: their config); others ignore it.
        """
        if self.method.privileged and gt is None:
            raise ValueError(f"{self.name} is a privileged teacher: it needs the ground truth")
        steps = num_steps if self.method.uses_flow else None
        return np.asarray(self._predict(self.params, lq, lq if gt is None else gt, steps))


def check_params_match(method: methods.Method, params: PyTree, source: str) -> None:
    """Raises ModelLoadError unless `params` have exactly the names and shapes `method` builds."""
    stride = method.stride
    batch = {key: jnp.zeros((1, 2 * stride, 2 * stride, 3)) for key in ("lq", "gt")}
    expected = method.inference_params(
        jax.eval_shape(method.init_params, jax.random.PRNGKey(0), batch)
    )

    def shapes(tree) -> dict[str, tuple]:
        return {
            jax.tree_util.keystr(path): tuple(np.shape(leaf))
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
        }

    want, found = shapes(expected), shapes(params)
    for key in sorted(set(want) | set(found)):
        if want.get(key) != found.get(key):
            raise ModelLoadError(
                f"{source}: parameter {key} is {found.get(key, 'missing')} there, the config "
                f"builds {want.get(key, 'nothing')} (was it trained with another config?)"
            )


def load_run(
    workdir: pathlib.Path | None,
    checkpoint: pathlib.Path | None = None,
    config: ml_collections.ConfigDict | None = None,
) -> LoadedModel:
    """The EMA params of a run's newest checkpoint (or of the `checkpoint` step folder).

    `config` replaces the run's own `config.json` (it must build the same parameter shapes).
    """
    if checkpoint is not None:
        if not (checkpoint.is_dir() and checkpoint.name.isdigit()):
            raise ModelLoadError(f"checkpoint {checkpoint} is not a checkpoint step folder")
        checkpoint_dir, step = checkpoint.parent, int(checkpoint.name)
        workdir = workdir or checkpoint_dir.parent
    else:
        if workdir is None or not workdir.is_dir():
            raise ModelLoadError(f"workdir {workdir} does not exist")
        checkpoint_dir, step = workdir / "checkpoints", None
    if config is None:
        path = workdir / BUNDLE_CONFIG
        if not path.is_file():
            raise ModelLoadError(f"no config.json in {workdir}: pass the run's config")
        config = config_from_json(path.read_text())
        source = f"checkpoint {checkpoint_dir} with {path}"
    else:
        source = f"checkpoint {checkpoint_dir} with the given config"
    try:
        step, state = checkpoint_lib.load_state(checkpoint_dir, step)
    except FileNotFoundError as err:
        raise ModelLoadError(f"{err} (train first, or pass a checkpoint)") from err
    method = methods.get_method(config.method)(config, inference=True)
    params = method.inference_params(state["ema_params"])
    check_params_match(method, params, source)
    return LoadedModel(f"{workdir.name}@{step}", config, method, params)


def save_bundle(model: LoadedModel, folder: pathlib.Path) -> None:
    """Writes `config.json` and `params.msgpack` (float32 prediction params) to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / BUNDLE_CONFIG).write_text(model.config.to_json_best_effort(indent=2))
    params = jax.tree.map(lambda leaf: np.asarray(leaf, np.float32), model.params)
    (folder / BUNDLE_PARAMS).write_bytes(flax.serialization.msgpack_serialize(params))
    (folder / "name.json").write_text(json.dumps({"name": model.name}))


def load_bundle(folder: pathlib.Path) -> LoadedModel:
    """The model saved by `save_bundle` in `folder`."""
    missing = [n for n in (BUNDLE_CONFIG, BUNDLE_PARAMS) if not (folder / n).is_file()]
    if missing:
        raise ModelLoadError(f"weight bundle {folder} lacks {', '.join(missing)}")
    config = config_from_json((folder / BUNDLE_CONFIG).read_text())
    method = methods.get_method(config.method)(config, inference=True)
    try:
        params = flax.serialization.msgpack_restore((folder / BUNDLE_PARAMS).read_bytes())
    except Exception as err:  # msgpack raises several unrelated types on a damaged file
        raise ModelLoadError(f"{folder / BUNDLE_PARAMS} cannot be read: {err}") from err
    check_params_match(method, params, f"weight bundle {folder}")
    name_file = folder / "name.json"
    name = json.loads(name_file.read_text())["name"] if name_file.is_file() else folder.name
    return LoadedModel(name, config, method, params)


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pads the bottom and right of (H, W, C) up to multiples of `multiple`.

    Sides shorter than the padding they need are padded symmetrically (edge repeated) instead.
    """
    height, width = image.shape[:2]
    pad_h, pad_w = -height % multiple, -width % multiple
    mode = "reflect" if pad_h < height and pad_w < width else "symmetric"
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)


def dihedral(image: np.ndarray, k: int, inverse: bool = False) -> np.ndarray:
    """The k-th of the 8 flips/rotations of an (H, W, C) image (`inverse` undoes it)."""
    if inverse:
        return np.rot90(np.flipud(image) if k >= 4 else image, -(k % 4))
    rotated = np.rot90(image, k % 4)
    return np.flipud(rotated) if k >= 4 else rotated
