"""The training loop shared by every method: `train_and_evaluate(config, workdir)`.

One jitted train step with explicit shardings over a (data, model) mesh and a donated state;
AdamW with warm-up and cosine decay; an EMA of the parameters used for evaluation; periodic
validation (PSNR/SSIM) with a PNG sample grid; scalars to TensorBoard and `metrics.jsonl`;
Orbax checkpoints holding the state and the data-iterator position. Re-running the same command
resumes from the newest checkpoint. A non-finite loss or gradient leaves the state untouched and
stops the run with an error; the checkpoints on disk stay the last good ones.
"""

import contextlib
import dataclasses
import functools
import json
import logging
import pathlib
import time
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.experimental import multihost_utils

from restorect_jax import checkpoint as checkpoint_lib
from restorect_jax import (
    cli,
    logs,
    methods,
    run_config,
    safe_files,
    signals,
    tree_shapes,
    writers,
)
from restorect_jax import data as data_lib
from restorect_jax import sharding as sharding_lib
from restorect_jax.metrics import registry


@flax.struct.dataclass
class TrainState:
    """Everything a checkpoint holds besides the data position."""

    step: jax.Array  # optimiser steps taken (int32 scalar)
    params: Any
    ema_params: Any
    opt_state: Any


class NonFiniteLossError(FloatingPointError):
    """Raised when a train step produced a NaN or infinite loss or gradient."""


def make_optimizer(train_config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """AdamW with linear warm-up then cosine decay to `end_learning_rate_factor * learning_rate`.

    Weight decay applies to kernels (arrays of rank >= 2) only, not to biases, norm gains or
    learnable scalars such as the HVI exponent.
    """
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=train_config.learning_rate,
        warmup_steps=train_config.warmup_steps,
        decay_steps=train_config.num_steps,
        end_value=train_config.learning_rate * train_config.end_learning_rate_factor,
    )
    adamw = optax.adamw(
        schedule,
        b1=train_config.b1,
        b2=train_config.b2,
        weight_decay=train_config.weight_decay,
        mask=lambda params: jax.tree.map(lambda leaf: leaf.ndim >= 2, params),
    )
    if train_config.grad_clip_norm > 0:
        return optax.chain(optax.clip_by_global_norm(train_config.grad_clip_norm), adamw)
    return adamw


def ema_decay_at(step: jax.Array, decay: float) -> jax.Array:
    """EMA decay with warm-up, `min(decay, (1 + step) / (10 + step))`, so early EMAs are usable."""
    step = step.astype(jnp.float32)
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def create_train_state(
    rng: jax.Array,
    batch: dict[str, jax.Array],
    *,
    method: methods.Method,
    optimizer: optax.GradientTransformation,
) -> TrainState:
    """Initial state: fresh params, EMA equal to them, zero optimiser moments, step 0."""
    params = method.init_params(rng, batch)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        ema_params=params,
        opt_state=optimizer.init(params),
    )


def _all_finite(tree: Any) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def _zero_where_frozen(tree: Any, mask: Any) -> Any:
    """`tree` with the leaves whose (Python bool) mask entry is False replaced by zeros."""
    return jax.tree.map(lambda leaf, keep: leaf if keep else jnp.zeros_like(leaf), tree, mask)


def _cast_floats(tree: Any, dtype: Any) -> Any:
    """`tree` with its floating-point leaves cast to `dtype` (integer leaves untouched)."""
    return jax.tree.map(
        lambda leaf: leaf.astype(dtype) if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf,
        tree,
    )


def _loss_in_dtype(
    loss_fn: Callable, dtype: Any, params: Any, frozen: Any, batch: Any, rng: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """`loss_fn` computed in `dtype` (mixed precision); its loss and components as float32."""
    loss, components = loss_fn(
        _cast_floats(params, dtype), _cast_floats(frozen, dtype), _cast_floats(batch, dtype), rng
    )
    return loss.astype(jnp.float32), _cast_floats(components, jnp.float32)


def train_step(
    state: TrainState,
    batch: dict[str, jax.Array],
    frozen: Any,
    phase: str = "train",
    *,
    method: methods.Method,
    optimizer: optax.GradientTransformation,
    ema_decay: float,
    base_rng: jax.Array,
    compute_dtype: Any = None,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimiser step of `phase` on `batch`; skipped when loss or gradients are not finite.

    The step's randomness is `fold_in(base_rng, step)`, so it does not depend on how the run was
    split into resumed pieces. Leaves that `method.trainable` marks frozen in this phase get zero
    gradient and zero update (no weight decay either). With `compute_dtype` (e.g. bfloat16) the
    loss runs on copies of the params, frozen inputs and batch in that dtype; the gradients come
    back through the casts in float32, and the state stays float32.
    """
    rng = jax.random.fold_in(base_rng, state.step)
    loss_fn = functools.partial(method.loss, phase=phase)
    if compute_dtype is not None:
        loss_fn = functools.partial(_loss_in_dtype, loss_fn, compute_dtype)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, components), grads = grad_fn(state.params, frozen, batch, rng)
    mask = method.trainable(state.params, phase)
    if mask is not None:
        grads = _zero_where_frozen(grads, mask)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    if mask is not None:
        updates = _zero_where_frozen(updates, mask)
    params = optax.apply_updates(state.params, updates)
    ema_step = state.step - method.ema_warmup_start(phase)
    ema_params = optax.incremental_update(
        params, state.ema_params, step_size=1.0 - ema_decay_at(ema_step, ema_decay)
    )
    finite = jnp.isfinite(loss) & _all_finite(grads)
    candidate = TrainState(
        step=state.step + 1, params=params, ema_params=ema_params, opt_state=opt_state
    )
    new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), candidate, state)
    metrics = {
        "loss": loss,
        "grad_norm": optax.tree.norm(grads),
        "finite": finite,
        **{f"loss/{name}": value for name, value in components.items()},
    }
    return new_state, metrics


# `train.compute_dtype`: the dtype the loss runs in (None: the params' own, float32).
COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}
# Init runs once: compiling it without backend optimisation saves most of its compile time.
INIT_COMPILER_OPTIONS = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
}


def host_init(init_fn: Callable, state_sharding: Any) -> Callable:
    """`init_fn` run on this host's CPU, its result placed on the mesh with `state_sharding`.

    For meshes on an accelerator: XLA took 75-82 s there to compile `init` (a forward pass
    through every layer) on an H200 (tools/results/gpu/lease1_results.json), against 18-21 s
    for init with its compile on a 2-core CPU (tools/results/bench_train_cpu.json); the state
    is built once. Every process builds the whole state and keeps the shards its devices hold.
    """
    cpu = jax.local_devices(backend="cpu")[0]
    jitted = jax.jit(init_fn, compiler_options=INIT_COMPILER_OPTIONS)

    def init(rng: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
        state = jax.device_get(jitted(*jax.device_put((rng, batch), cpu)))
        return jax.tree.map(
            lambda leaf, sharding: jax.make_array_from_callback(
                leaf.shape, sharding, lambda index: leaf[index]
            ),
            state,
            state_sharding,
        )

    return init


@dataclasses.dataclass(frozen=True)
class StepFunctions:
    """The jitted functions of one run and the shardings they were compiled for."""

    method: methods.Method
    init: Callable  # (rng, example_batch) -> TrainState, sharded
    # (state, batch, frozen, phase) -> (state, metrics); donates the state, compiles per phase.
    train_step: Callable
    abstract_state: Any  # ShapeDtypeStructs of the TrainState
    state_sharding: Any  # NamedSharding per TrainState leaf
    batch_sharding: jax.sharding.NamedSharding  # of every array of a batch


def build_step_functions(
    config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, example_batch: dict[str, jax.Array]
) -> StepFunctions:
    """Builds the method and the init / train-step functions jitted with explicit shardings.

    `example_batch` only fixes the parameter shapes (any small image size will do).

    The state is replicated, the batch split along the mesh's data axis, frozen inputs
    replicated; with `config.mesh.shard_params` (FSDP) the state is split along the model axis
    and the batch along both axes. The train step donates the incoming state. Its fourth
    argument, the phase name (`method.phase_at(step)`), is static: each phase compiles once.
    """
    method = methods.get_method(config.method)(config)
    optimizer = make_optimizer(config.train)
    init_fn = functools.partial(create_train_state, method=method, optimizer=optimizer)
    abstract_state = jax.eval_shape(init_fn, jax.random.PRNGKey(0), example_batch)
    state_sharding = sharding_lib.state_shardings(
        mesh,
        abstract_state,
        shard_params=config.mesh.shard_params,
        min_size=config.mesh.shard_min_size,
    )
    replicated = sharding_lib.replicated(mesh)
    batch_sharding = sharding_lib.batch_sharding(mesh, config.mesh.shard_params)
    step_fn = jax.jit(
        functools.partial(
            train_step,
            method=method,
            optimizer=optimizer,
            ema_decay=config.train.ema_decay,
            base_rng=jax.random.PRNGKey(config.seed + 1),
            compute_dtype=COMPUTE_DTYPES[config.train.get("compute_dtype", "float32")],
        ),
        in_shardings=(state_sharding, batch_sharding, replicated),
        out_shardings=(state_sharding, replicated),
        static_argnums=(3,),
        donate_argnums=(0,),
    )
    if mesh.devices.flat[0].platform == "cpu":
        init = jax.jit(
            init_fn, out_shardings=state_sharding, compiler_options=INIT_COMPILER_OPTIONS
        )
    else:
        init = host_init(init_fn, state_sharding)
    return StepFunctions(
        method=method,
        init=init,
        train_step=step_fn,
        abstract_state=abstract_state,
        state_sharding=state_sharding,
        batch_sharding=batch_sharding,
    )


def _requested_on_any_process(requested: bool) -> bool:
    """True on every process if any process received the stop request."""
    if jax.process_count() == 1:
        return requested
    flags = multihost_utils.process_allgather(np.asarray(requested))
    return bool(np.any(flags))


def _prepare_data_once(data_config: ml_collections.ConfigDict) -> None:
    """Process 0 builds the datasets (unless built); the other processes wait, then only read.

    On hosts whose `data.tfds_dir` is not shared with process 0, a process builds its own copy
    when it first opens the data, after the barrier.
    """
    if jax.process_index() == 0:
        data_lib.prepare_datasets(data_config)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices("restorect_jax: datasets prepared")


def _format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def evaluate(
    predict_fn,
    params: Any,
    frozen: Any,
    images: list[dict],
    metric_names: tuple[str, ...] = ("psnr", "ssim"),
) -> tuple[dict[str, float], list[np.ndarray]]:
    """Mean scores of the restored validation images, and of their degraded inputs (`<name>_input`).

    Scored by `metrics.registry.score` (RGB, no border crop, outputs rounded to 8 bits), as
    `evaluate` scores the benchmarks. Images are restored one at a time at their own size (the
    model pads to its stride), so mixed sizes work; each distinct size compiles once.
    """
    protocol = registry.Protocol()
    scores: dict[str, list[float]] = {}
    restored_images = []
    for image in images:
        lq, gt = np.asarray(image["lq"]), np.asarray(image["gt"])
        batch = {"lq": jnp.asarray(lq)[None], "gt": jnp.asarray(gt)[None]}
        if "noise_level" in image:
            batch["noise_level"] = jnp.asarray(image["noise_level"])[None]
        restored = np.asarray(predict_fn(params, frozen, batch))[0]
        for suffix, output in (("", restored), ("_input", lq)):
            for name, value in registry.score(output, gt, metric_names, protocol).items():
                scores.setdefault(name + suffix, []).append(value)
        restored_images.append(np.round(np.clip(restored, 0.0, 1.0) * 255.0) / 255.0)
    return {key: float(np.mean(values)) for key, values in scores.items()}, restored_images


def with_copies(method: methods.Method, frozen: Any, params: Any) -> Any:
    """The frozen inputs a train step reads: `frozen` plus the method's copies of `params`.

    For compiling ahead of training (the values do not matter, the structure does); works on
    abstract params too.
    """
    copies = {name: method.inference_params(params) for name in method.frozen_copies()}
    return {**frozen, **copies}


class FrozenCopies:
    """The method's frozen copies of its own params (`Method.frozen_copies`), kept by the loop.

    Before the step of every multiple of a copy's interval (step 0 included), the copy becomes
    `method.inference_params(state.params)`; checkpoints hold the copies, so a resumed run
    feeds the same values as an uninterrupted one.
    """

    def __init__(self, method: methods.Method, state: TrainState, sharding: Any):
        """`state`: the train state or its abstract shapes; `sharding`: where the copies live
        (replicated, as the step's frozen inputs)."""
        self.method = method
        self.every = method.frozen_copies()
        self.values: dict[str, Any] = {}
        self._sharding = sharding
        self._template = jax.tree.map(
            lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
            method.inference_params(state.params),
        )

    def abstract(self) -> dict[str, Any]:
        """Shapes, dtypes and shardings of the copies, for restoring a checkpoint."""
        return {name: self._template for name in self.every}

    def refresh(self, state: TrainState, step: int) -> None:
        for name, every in self.every.items():
            if step % every == 0:
                params = self.method.inference_params(state.params)
                # New buffers: the train step donates the state's.
                copied = jax.tree.map(jnp.copy, params)
                self.values[name] = jax.device_put(copied, self._sharding)


class PatchSchedule:
    """Progressive training (METHODS.md 1.6): larger crops, smaller batches as training goes.

    Stage 0 is `(0, data.patch_size, train.batch_size)`; `train.progressive` lists the later
    stages as `(start_step, patch_size, batch_size)`. Each stage has its own data iterator,
    seeded with `seed + stage`; a checkpoint's data position belongs to the stage of its step.
    """

    def __init__(self, config: ml_collections.ConfigDict, data_parallel: int):
        self._config = config
        self.stages = ((0, config.data.patch_size, config.train.batch_size),) + tuple(
            tuple(stage) for stage in config.train.progressive
        )
        for index, (_, _, batch_size) in enumerate(self.stages):
            key = "config.train.batch_size" if index == 0 else "config.train.progressive"
            for divisor, what in (
                (data_parallel, "devices the batch is split over (config.mesh)"),
                (jax.process_count(), "processes"),
            ):
                if batch_size % divisor:
                    raise ValueError(
                        f"{key}: batch size {batch_size} must be a multiple of the {divisor} "
                        f"{what}."
                    )

    def stage_at(self, step: int) -> int:
        """Index of the stage that step `step` (0-based) trains in."""
        return max(index for index, stage in enumerate(self.stages) if stage[0] <= step)

    def iterator(self, stage: int):
        """A fresh data iterator of this process for `stage`."""
        _, patch_size, batch_size = self.stages[stage]
        data_config = self._config.data.copy_and_resolve_references()
        data_config.patch_size = patch_size
        return data_lib.make_train_iterator(
            data_config,
            batch_size=batch_size // jax.process_count(),
            seed=self._config.seed + stage,
            shard_index=jax.process_index(),
            shard_count=jax.process_count(),
        )


def example_batch() -> dict[str, jax.Array]:
    """The batch that fixes parameter shapes; they do not depend on the image size, so tiny."""
    return {key: jnp.zeros((1, 16, 16, 3), jnp.float32) for key in ("lq", "gt")}


def abstract_batch(
    steps: StepFunctions, batch_size: int, patch: int, noise_level: bool = False
) -> dict[str, Any]:
    """ShapeDtypeStructs of a training batch as the step receives it, for ahead-of-time lowering
    (with `noise_level`, the (B,) levels of `data.noise_level` too)."""
    shape = (batch_size, patch, patch, 3)
    batch = {
        key: jax.ShapeDtypeStruct(shape, jnp.float32, sharding=steps.batch_sharding)
        for key in ("lq", "gt")
    }
    if noise_level:
        batch["noise_level"] = jax.ShapeDtypeStruct(
            (batch_size,), jnp.float32, sharding=steps.batch_sharding
        )
    return batch


def training_phases(method: methods.Method, num_steps: int) -> list[str]:
    """The phases a run of `num_steps` steps trains in, in order (each compiles its own step)."""
    return list(dict.fromkeys(method.phase_at(step) for step in range(num_steps)))


class CompileCacheCounter:
    """Counts the compiles that asked the persistent compilation cache, and those it answered."""

    def __init__(self):
        self.lookups = 0
        self.hits = 0

    def __call__(self, event: str, **kwargs) -> None:
        del kwargs
        if event == "/jax/compilation_cache/compile_requests_use_cache":
            self.lookups += 1
        elif event == "/jax/compilation_cache/cache_hits":
            self.hits += 1

    def summary(self) -> str:
        return f"{self.lookups} compiles asked the persistent cache, {self.hits} loaded from it"


COMPILE_CACHE = CompileCacheCounter()
jax.monitoring.register_event_listener(COMPILE_CACHE)


def compile_programs(config: ml_collections.ConfigDict) -> dict[str, float]:
    """Compiles a run's init and train steps into the persistent cache; seconds per program.

    Every phase of the method and every crop stage of the schedule gets its train step, for
    the abstract batch the run will feed it, so a later `train_and_evaluate` of the same config
    on the same devices loads them instead of compiling (validation's program is not included:
    `train.eval_every=0` runs none). Needs no training data; a student needs its teacher run.
    On the H200 each train step took 83-95 s to compile (tools/results/gpu/lease1_results.json),
    so a lease compiles the students' steps while the teacher trains.
    """
    methods.validate(config)
    cli.enable_compilation_cache(config.get("compilation_cache_dir"))
    mesh = sharding_lib.create_mesh(config.mesh)
    steps = build_step_functions(config, mesh, example_batch())
    seconds = {}
    start = time.perf_counter()
    state = jax.block_until_ready(steps.init(jax.random.PRNGKey(config.seed), example_batch()))
    seconds["init"] = time.perf_counter() - start
    frozen = jax.device_put(steps.method.frozen_params(), sharding_lib.replicated(mesh))
    frozen = with_copies(steps.method, frozen, state.params)
    schedule = PatchSchedule(config, sharding_lib.batch_split(mesh, config.mesh.shard_params))
    phases = training_phases(steps.method, config.train.num_steps)
    for _, patch, batch_size in schedule.stages:
        batch = abstract_batch(steps, batch_size, patch, data_lib.reads_noise_level(config.data))
        for phase in phases:
            start = time.perf_counter()
            steps.train_step.lower(state, batch, frozen, phase).compile()
            seconds[f"train_step/{phase}/{batch_size}x{patch}"] = time.perf_counter() - start
    logging.info("Compiled %s; %s", seconds, COMPILE_CACHE.summary())
    return seconds


def _check_finite(pending: list[tuple[int, dict]], checkpointer: checkpoint_lib.Checkpointer):
    """Raises NonFiniteLossError naming the first bad step among `pending` (step, metrics)."""
    for step, metrics in pending:
        if not bool(jax.device_get(metrics["finite"])):
            raise NonFiniteLossError(
                f"Non-finite loss or gradient at step {step + 1} "
                f"(loss={float(jax.device_get(metrics['loss']))}); training stopped without applying "
                f"that update. Newest good checkpoint: step {checkpointer.latest_step()} in "
                f"{checkpointer.directory}. Lower config.train.learning_rate or check the data."
            )


def initial_params(config: ml_collections.ConfigDict, params: Any) -> Any | None:
    """The weights a fresh run starts from: `config.train.init_from`'s prediction (EMA) params,
    arranged like `params`; None without `init_from`. ValueError names the key when that
    folder cannot be loaded or its network has other parameter shapes."""
    source = config.train.get("init_from", "")
    if not source:
        return None
    from restorect_jax import inference  # it imports the methods, as this module does

    key = f"config.train.init_from={source!r}"
    try:
        loaded = inference.load_model(workdir=source).params
    except inference.ModelLoadError as error:
        raise ValueError(f"{key}: {error}") from None
    difference = tree_shapes.first_difference(
        tree_shapes.shapes_by_path(params), tree_shapes.shapes_by_path(loaded)
    )
    if difference:
        path, found, want = difference
        raise ValueError(f"{key}: parameter {path} is {found} there, this config builds {want}")
    by_path = {
        jax.tree_util.keystr(path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(loaded)
    }
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: by_path[jax.tree_util.keystr(path)].astype(leaf.dtype), params
    )


_SAVING_ON_THE_WAY_OUT = "Still writing the last checkpoint; the run stops when it is complete."


def _save_samples(
    workdir: pathlib.Path, step: int, images: list[dict], restored: list, count: int
) -> None:
    """`samples/step_<step>.png`: input | output | ground truth of the first `count` images.

    An output with a non-finite value is not drawn (a warning says so). A name taken by an
    earlier attempt at the same step is kept, and this one goes to `_2`.
    """
    rows = [[image["lq"], out, image["gt"]] for image, out in zip(images, restored)][:count]
    if not all(np.isfinite(np.asarray(out)).all() for _, out, _ in rows):
        logging.warning("step %d: a validation output is not finite; no sample image written", step)
        return
    path = workdir / "samples" / f"step_{step:07d}.png"
    writers.save_png(path, writers.image_grid(rows), on_taken="number")


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *, stop_at: int | None = None
) -> dict[str, float]:
    """Trains `config.method` for `config.train.num_steps` steps in `workdir`, resuming if possible.

    Args:
      config: an experiment config (see configs/default.py); validated first.
      workdir: checkpoints, metrics.jsonl, TensorBoard events and sample PNGs go here.
      stop_at: stop (with a checkpoint) after this many steps, as a pre-empted job would; the
        learning-rate schedule still follows `num_steps`, so re-running resumes the same run.

    Returns:
      The last validation scores (`psnr`, `ssim`, `psnr_input`, `ssim_input`), the `step`
      reached, and `preempted` (True when a SIGTERM stopped the run early).
    """
    methods.validate(config)
    cli.enable_compilation_cache(config.get("compilation_cache_dir"))
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # One run per workdir: process 0 holds the lock (a killed run's lock dies with it).
    lock = writers.workdir_lock(workdir) if jax.process_index() == 0 else contextlib.nullcontext()
    with lock:
        suffix = "" if jax.process_index() == 0 else f".{jax.process_index()}"
        log_file = logs.add_file(workdir / f"train{suffix}.log")
        try:
            return _train_in_workdir(config, workdir, stop_at)
        finally:
            logs.remove_file(log_file)


def _train_in_workdir(
    config: ml_collections.ConfigDict, workdir: pathlib.Path, stop_at: int | None
) -> dict[str, float]:
    """`train_and_evaluate` once its workdir is locked."""
    if jax.process_index() == 0:
        run_config.record(config, workdir)
    return _TrainingRun(config, workdir, stop_at).run()


class _TrainingRun:
    """One training run in a locked workdir: set up, resumed or initialised, then stepped,
    logged, validated and checkpointed until its end step, a SIGTERM or Ctrl-C."""

    def __init__(
        self, config: ml_collections.ConfigDict, workdir: pathlib.Path, stop_at: int | None
    ):
        self.config, self.workdir = config, workdir
        train_config = config.train
        self.end_step = (
            train_config.num_steps if stop_at is None else min(stop_at, train_config.num_steps)
        )
        self.mesh = sharding_lib.create_mesh(config.mesh)
        replicated = sharding_lib.replicated(self.mesh)
        self.schedule = PatchSchedule(
            config, sharding_lib.batch_split(self.mesh, config.mesh.shard_params)
        )
        self.steps = build_step_functions(config, self.mesh, example_batch())
        self.method = self.steps.method
        self.checkpointer = checkpoint_lib.Checkpointer(
            workdir / "checkpoints",
            keep=train_config.keep_checkpoints,
            async_save=train_config.async_checkpointing,
        )
        _prepare_data_once(config.data)
        self.copies = FrozenCopies(self.method, self.steps.abstract_state, replicated)
        self.latest = self._start()
        self.frozen = jax.device_put(self.method.frozen_params(), replicated)
        self.predict_fn = jax.jit(self.method.predict, static_argnums=(3,))
        self.validates = train_config.eval_every > 0
        self.val_images = (
            data_lib.load_eval_images(config.data, seed=config.seed) if self.validates else []
        )
        self.metric_names = tuple(config.eval.get("metrics", ("psnr", "ssim")))
        self.writer = writers.MetricWriter(workdir)
        self.clock = writers.RunClock(workdir)
        self.step = int(jax.device_get(self.state.step))
        self.pending: list[tuple[int, dict]] = []
        self.last_scores: dict[str, float] = {}
        self.last_saved = self.latest
        self.interval = (time.perf_counter(), self.step)
        # The data position that goes with `state`: recorded after each completed step, so an
        # interrupt between fetching a batch and finishing its step cannot pair them wrongly.
        self.data_state = self.train_iter.get_state()

    def _start(self) -> int | None:
        """Resumes from the newest checkpoint (returns its step), or initialises the state."""
        restored = self.checkpointer.restore_newest(
            checkpoint_lib.abstract_with_shardings(
                self.steps.abstract_state, self.steps.state_sharding
            ),
            self.copies.abstract() if self.copies.every else None,
        )
        latest = None if restored is None else restored[0]
        self.stage = self.schedule.stage_at(latest or 0)
        self.train_iter = self.schedule.iterator(self.stage)
        if restored is not None:
            latest, self.state, data_state, copies = restored
            self.copies.values = copies or {}
            self.train_iter.set_state(data_state)
            logging.info(
                "Resumed from step %d in %s (process %d data position %s)",
                latest,
                self.checkpointer.directory,
                jax.process_index(),
                data_state,
            )
            return latest
        self.state = self.steps.init(jax.random.PRNGKey(self.config.seed), example_batch())
        start = initial_params(self.config, self.state.params)
        if start is not None:
            # Two copies: the step donates both trees, which must not share buffers.
            sharding = self.steps.state_sharding.params
            params, ema = (jax.device_put(start, sharding) for _ in range(2))
            self.state = self.state.replace(params=params, ema_params=ema)
            logging.info("Initialised the params and EMA from %s", self.config.train.init_from)
        logging.info(
            "Training %s (%s, %d params) for %d steps on a %s mesh",
            self.config.method,
            self.config.model.name,
            sum(x.size for x in jax.tree.leaves(self.state.params)),
            self.config.train.num_steps,
            dict(self.mesh.shape),
        )
        return None

    def run(self) -> dict[str, float]:
        """Trains to the end step (or a stop); returns the last scores, step and `preempted`."""
        stop_signal = signals.StopSignal()
        preempted = False
        try:
            while self.step < self.end_step and not preempted:
                self._train_step()
                train_config = self.config.train
                if self.step % train_config.log_every == 0 or self.step == self.end_step:
                    self._log()
                    # SIGTERM is acted on at log steps, where every process takes one decision.
                    preempted = _requested_on_any_process(stop_signal.requested)
                if self.validates and (
                    self.step % train_config.eval_every == 0 or self.step == train_config.num_steps
                ):
                    self._validate()
                if (
                    self.step % train_config.checkpoint_every == 0
                    or self.step == self.end_step
                    or preempted
                ):
                    self._save_checkpoint()
            if preempted:
                logging.warning(
                    "SIGTERM received: stopped at step %d after saving a checkpoint.", self.step
                )
        except KeyboardInterrupt:
            self._save_on_interrupt()
            raise
        finally:
            with signals.deferred(_SAVING_ON_THE_WAY_OUT, replay=False):
                self.checkpointer.close()
            self.writer.close()
            stop_signal.restore()
        return self._finish(preempted)

    def _train_step(self) -> None:
        """One optimiser step; moves to the next progressive stage when it begins."""
        batch = sharding_lib.global_batch(next(self.train_iter), self.steps.batch_sharding)
        self.copies.refresh(self.state, self.step)
        self.state, metrics = self.steps.train_step(
            self.state,
            batch,
            {**self.frozen, **self.copies.values},
            self.method.phase_at(self.step),
        )
        self.data_state = self.train_iter.get_state()
        self.pending.append((self.step, metrics))
        self.step += 1
        if self.schedule.stage_at(self.step) != self.stage:
            self.stage = self.schedule.stage_at(self.step)
            self.train_iter = self.schedule.iterator(self.stage)
            self.data_state = self.train_iter.get_state()
            logging.info(
                "step %d: progressive training stage %s",
                self.step,
                self.schedule.stages[self.stage],
            )

    def _log(self) -> None:
        """Averages the steps since the last log line, writes them and logs one line."""
        _check_finite(self.pending, self.checkpointer)
        # Phases log different terms: each is averaged over the steps that have it.
        pending = self.pending
        keys = dict.fromkeys(key for _, m in pending for key in m if key != "finite")
        means = {
            key: float(np.mean([jax.device_get(m[key]) for _, m in pending if key in m]))
            for key in keys
        }
        pending.clear()
        started, first_step = self.interval
        steps_per_sec = (self.step - first_step) / max(time.perf_counter() - started, 1e-9)
        means["steps_per_sec"] = steps_per_sec
        self.writer.write_scalars(
            self.step,
            {f"train/{key}": value for key, value in means.items()} | self.clock.scalars(),
        )
        num_steps = self.config.train.num_steps
        logging.info(
            "step %d/%d | loss %.5f | %.2f steps/s | ETA %s",
            self.step,
            num_steps,
            means["loss"],
            steps_per_sec,
            _format_duration((num_steps - self.step) / max(steps_per_sec, 1e-9)),
        )
        self.interval = (time.perf_counter(), self.step)

    def _validate(self) -> None:
        """Scores the EMA params on the validation images; writes the scores and a sample."""
        _check_finite(self.pending, self.checkpointer)  # a diverged run stops before validating
        sampler = self.method.validation_sampler(self.method.phase_at(self.step - 1))
        self.last_scores, restored = evaluate(
            lambda *args, sampler=sampler: self.predict_fn(*args, sampler),
            self.state.ema_params,
            self.frozen,
            self.val_images,
            self.metric_names,
        )
        scores = self.last_scores
        self.writer.write_scalars(
            self.step, {f"val/{key}": value for key, value in scores.items()} | self.clock.scalars()
        )
        logging.info(
            "step %d | validation (EMA params, %d images): %s",
            self.step,
            len(self.val_images),
            ", ".join(
                f"{name} {scores[name]:.4f} (input {scores[name + '_input']:.4f})"
                for name in self.metric_names
            ),
        )
        count = self.config.eval.sample_images
        _save_samples(self.workdir, self.step, self.val_images, restored, count)

    def _save_checkpoint(self) -> None:
        """Checkpoints the current state (once per step), after checking the pending losses."""
        _check_finite(self.pending, self.checkpointer)
        at_step = int(jax.device_get(self.state.step))
        if at_step != self.last_saved:
            with signals.deferred(f"A signal arrived while saving step {at_step}: it acts next."):
                self.checkpointer.save(
                    at_step, self.state, self.data_state, self.copies.values or None
                )
                self.last_saved = at_step  # before a held Ctrl-C is raised on leaving the block

    def _save_on_interrupt(self) -> None:
        logging.warning("Interrupted at step %d: saving a checkpoint before exiting.", self.step)
        with signals.deferred(_SAVING_ON_THE_WAY_OUT, replay=False):
            try:
                self._save_checkpoint()
            except RuntimeError as error:  # interrupted inside a step, after the state was donated
                logging.error(
                    "Could not save the interrupted state (%s); newest checkpoint: step %s.",
                    error,
                    self.checkpointer.latest_step(),
                )

    def _finish(self, preempted: bool) -> dict[str, float]:
        logging.info("Run ended at step %d; %s", self.step, COMPILE_CACHE.summary())
        result = {"step": self.step, "preempted": preempted, **self.last_scores}
        if jax.process_index() == 0 and self.last_scores:
            safe_files.write_text_new(
                self.workdir / "final_metrics.json", json.dumps(result, indent=2), overwrite=True
            )
        return result
