"""Trained models for inference: load a run's checkpoint or a weight bundle, and restore images.

A **run** is a training workdir (`config.json` + Orbax `checkpoints/`); a **bundle** is a folder
with the run's `config.json` and the EMA params that prediction reads as `params.msgpack`
(`flax.serialization`), small enough to ship inside the package. Either gives a `LoadedModel`
whose `predict` restores (B, H, W, 3) batches whose sides are multiples of `stride`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from restorect_jax import flow, methods, safe_files, tree_shapes
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


def compiled_flops(compiled: jax.stages.Compiled) -> float:
    """The FLOPs of a compiled program by XLA's cost analysis (0 where it counts none)."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0))


@dataclasses.dataclass
class LoadedModel:
    """A method with its trained prediction params.

    Attributes:
      name: for reports, e.g. "teacher_denoise@2000".
      config: the run's config.
      method: the method, built for inference (no frozen model loaded).
      params: what `method.predict` reads (`method.inference_params` of the EMA params).
    """

    name: str
    config: ml_collections.ConfigDict
    method: methods.Method
    params: PyTree

    def __post_init__(self):
        def predict(params, lq, gt, sampler, noise_level=None):
            batch = {"lq": lq, "gt": gt}
            if noise_level is not None:
                batch["noise_level"] = noise_level
            return self.method.predict(params, {}, batch, sampler)

        self._predict = jax.jit(predict, static_argnums=(3,))

    @property
    def stride(self) -> int:
        return self.method.stride

    @property
    def task(self) -> str:
        return task_of(self.config)

    @property
    def needs_ground_truth(self) -> bool:
        """True for a GT-conditioned teacher: it restores only with the clean image beside."""
        return self.method.needs_ground_truth

    @property
    def takes_sampler(self) -> bool:
        """True when `predict`'s sampler matters (a flow model)."""
        return self.method.takes_sampler

    @property
    def takes_noise_level(self) -> bool:
        """True when the network reads a noise level (`predict`'s `noise_level` matters)."""
        return self.method.takes_noise_level

    def compile(
        self, height: int, width: int, sampler: flow.SamplerSpec | None = None
    ) -> jax.stages.Compiled:
        """The compiled restoration of one height x width image (with `sampler`, for flow
        models), called as `compiled(params, lq, gt)`."""
        image = jax.ShapeDtypeStruct((1, height, width, 3), jnp.float32)
        sampler = sampler if self.takes_sampler else None
        return self._predict.lower(self.params, image, image, sampler).compile()

    def flops(self, height: int, width: int, sampler: flow.SamplerSpec | None = None) -> float:
        """XLA's FLOP count (cost analysis) for restoring one height x width image (with
        `sampler`, for flow models). XLA counts the body of a loop once: an ODE integration
        of N steps is counted as one step."""
        return compiled_flops(self.compile(height, width, sampler))

    def predict(
        self,
        lq: np.ndarray,
        gt: np.ndarray | None = None,
        sampler: flow.SamplerSpec | None = None,
        noise_level: float | None = None,
    ) -> np.ndarray:
        """Restores a (B, H, W, 3) batch (H, W multiples of `stride`).

        `gt` only for a model that needs the ground truth; `sampler` sets the ODE solver and
        steps of flow models (default: their config) and is ignored by the others;
        `noise_level` (sigma / 255, every image of the batch) is what a noise-map network reads
        instead of its blind estimate of each image, and is ignored by the others.
        """
        if self.needs_ground_truth and gt is None:
            raise ValueError(f"{self.name} reads the ground truth: pass gt")
        if not self.takes_sampler:
            sampler = None  # one compiled program whatever sampler a caller passes
        levels = None
        if self.takes_noise_level and noise_level is not None:
            levels = np.full((lq.shape[0],), noise_level, np.float32)
        gt = lq if gt is None else gt
        return np.asarray(self._predict(self.params, lq, gt, sampler, levels))


# Parameter shapes a config builds, computed once per (config, model code, jax) and kept here:
# tracing a model's init to learn them takes seconds, which every `restore` would otherwise pay.
PARAM_SHAPES_CACHE = "~/.cache/restorect_jax/param_shapes"


def _model_code_digest() -> str:
    """sha256 of the source files that decide parameter shapes (models/ and methods/)."""
    root = pathlib.Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted([*root.glob("models/*.py"), *root.glob("methods/*.py")]):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _traced_shapes(method: methods.Method) -> dict[str, tuple]:
    stride = method.stride
    batch = {key: jnp.zeros((1, 2 * stride, 2 * stride, 3)) for key in ("lq", "gt")}
    return tree_shapes.shapes_by_path(
        method.inference_params(jax.eval_shape(method.init_params, jax.random.PRNGKey(0), batch))
    )


def expected_shapes(method: methods.Method) -> dict[str, tuple]:
    """`{parameter path: shape}` of the prediction params `method`'s config builds, from the
    cache in `PARAM_SHAPES_CACHE` when this config, model code and jax version were seen."""
    text = (
        method.config.to_json_best_effort(sort_keys=True) + _model_code_digest() + jax.__version__
    )
    path = pathlib.Path(PARAM_SHAPES_CACHE).expanduser()
    path = path / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.json"
    try:
        return {key: tuple(shape) for key, shape in json.loads(path.read_text()).items()}
    except (OSError, ValueError):
        pass
    shapes = _traced_shapes(method)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        safe_files.write_text_new(path, json.dumps(shapes), overwrite=True)
    except OSError:  # a read-only home: traced again next time
        pass
    return shapes


def check_params_match(method: methods.Method, params: PyTree, source: str) -> None:
    """Raises ModelLoadError unless `params` have exactly the names and shapes `method` builds."""
    difference = tree_shapes.first_difference(
        expected_shapes(method), tree_shapes.shapes_by_path(params)
    )
    if difference:
        key, found, want = difference
        raise ModelLoadError(
            f"{source}: parameter {key} is {found} there, the config builds {want} (was it "
            "trained with another config?)"
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
        # Orbax is imported here: a bundle (what `restore` reads) never needs it.
        from restorect_jax import checkpoint as checkpoint_lib

        step, state = checkpoint_lib.load_state(checkpoint_dir, step)
    except FileNotFoundError as err:
        raise ModelLoadError(f"{err} (train first, or pass a checkpoint)") from err
    method = methods.get_method(config.method)(config, inference=True)
    params = method.inference_params(state["ema_params"])
    check_params_match(method, params, source)
    return LoadedModel(f"{workdir.name}@{step}", config, method, params)


def save_bundle(model: LoadedModel, folder: pathlib.Path, *, overwrite: bool = False) -> None:
    """Writes `config.json`, `params.msgpack` (float32 prediction params) and `name.json` to
    `folder`; an existing bundle there is replaced only with `overwrite` (else
    safe_files.FileTakenError names the first file that exists, and nothing is written)."""
    folder.mkdir(parents=True, exist_ok=True)
    params = jax.tree.map(lambda leaf: np.asarray(leaf, np.float32), model.params)
    files = {
        BUNDLE_CONFIG: model.config.to_json_best_effort(indent=2).encode(),
        BUNDLE_PARAMS: flax.serialization.msgpack_serialize(params),
        "name.json": json.dumps({"name": model.name}).encode(),
    }
    taken = [name for name in files if (folder / name).exists()]
    if taken and not overwrite:
        raise safe_files.FileTakenError(folder / taken[0])
    for name, payload in files.items():
        safe_files.write_new(
            folder / name,
            lambda path, payload=payload: path.write_bytes(payload),
            overwrite=overwrite,
        )


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


def is_bundle(folder: pathlib.Path) -> bool:
    """True for a weight bundle (params.msgpack beside config.json, no checkpoints)."""
    return (folder / BUNDLE_PARAMS).is_file() and not (folder / "checkpoints").exists()


def load_model(
    *, workdir: str | None = None, task: str | None = None, bundle: str | None = None
) -> LoadedModel:
    """The model of exactly one of: a run (or a bundle) folder, a shipped task, a bundle folder.

    Raises ModelLoadError with a one-line reason.
    """
    if sum(value is not None for value in (workdir, task, bundle)) != 1:
        raise ModelLoadError("give exactly one of --task (shipped weights), --bundle and --workdir")
    if task is not None:
        folder = WEIGHTS_DIR / task
        if not folder.is_dir():
            raise ModelLoadError(
                f"no shipped weights for --task {task} in this install ({folder}); "
                "train one and pass --workdir"
            )
        return load_bundle(folder)
    folder = pathlib.Path(bundle or workdir).expanduser()
    if bundle is not None or is_bundle(folder):
        return load_bundle(folder)
    return load_run(folder)
