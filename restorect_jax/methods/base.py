"""The interface between a method (how a model learns) and the training loop and tools.

The loop, `evaluate`, `restore` and `export` only call these functions; they never test which
method runs. A method's trainable parameters are one pytree; anything it reads but never trains
(a frozen model loaded by name from `config.frozen`, or a frozen copy of its own params) enters
the jitted step as a separate argument. A method may train in phases (`phase_at`), each with its
own loss and its own set of trainable parameters (`trainable`); the loop compiles one step per
phase. Prediction has one signature for every method: `predict(params, frozen, batch, sampler)`,
where `sampler` (a `flow.SamplerSpec`, or None for the method's default) matters only to
methods whose `takes_sampler` is True.
"""

from __future__ import annotations

import abc
from typing import Any

import flax.linen as nn
import jax
import ml_collections

from restorect_jax import flow, models, noise_level
from restorect_jax.config_keys import require

# "lq" and "gt": (B, H, W, 3) float32 in [0, 1]; optionally "noise_level": (B,) AWGN sigma / 255.
Batch = dict[str, jax.Array]
PyTree = Any


class Method(abc.ABC):
    """A training method: parameter init, a scalar loss, and a prediction function.

    Class attributes:
      needs_ground_truth: `predict` reads `batch["gt"]` too (a GT-conditioned teacher); such a
        model is an upper reference, never a restorer for photos.
      takes_sampler: `predict` integrates a flow, so its `sampler` argument matters.
      backbone_inputs: the inputs after the image that the method always gives its backbone
        (`models.Conditioning` names: "gt", "noise", "time"); a backbone must read them all.
      optional_backbone_inputs: inputs the method gives a backbone that reads them
        ("noise_level"); a backbone may read no other input.
    Instances set `self.model`, a registered backbone that `predict` runs; the method asks its
    contract (`backbone`) for the stride, the inputs and the restored image, never its name.
    """

    needs_ground_truth: bool = False
    takes_sampler: bool = False
    backbone_inputs: tuple[str, ...] = ()
    optional_backbone_inputs: tuple[str, ...] = ()
    model: nn.Module

    def __init__(self, config: ml_collections.ConfigDict, *, inference: bool = False):
        """`inference=True` builds only what `predict` needs (no frozen model is loaded)."""
        self.config = config
        self.inference = inference

    @classmethod
    def validate_config(cls, config: ml_collections.ConfigDict) -> None:
        """Raises ValueError naming the first key of this method's config that cannot work.

        Called by `methods.validate` after the checks every run shares and `validate_backbone`.
        """
        del config

    @classmethod
    def validate_backbone(cls, config: ml_collections.ConfigDict) -> None:
        """Raises ValueError naming the first key that does not fit the backbone's contract: its
        own checks of `config.model`, the inputs it reads against those the method gives
        (`config.model.name`), training patch sizes against its stride (`data.patch_size`,
        `train.progressive`)."""
        spec, fields = models.check_model_config(config.model)
        name, reads = config.model.name, set(spec.inputs(fields))
        gives = set(cls.backbone_inputs)
        require(
            gives <= reads <= gives | set(cls.optional_backbone_inputs),
            "model.name",
            name,
            f"the {config.method} method gives its backbone "
            f"{_inputs_text(*gives, *(f'{x} if read' for x in cls.optional_backbone_inputs))}; "
            f"{name} reads {_inputs_text(*reads)}",
        )
        stride = spec.stride_of(fields)
        why = f"must be a multiple of {stride} (the stride of the {name} backbone)"
        patch = config.data.patch_size
        require(patch % stride == 0, "data.patch_size", patch, why)
        for stage in config.train.progressive:
            require(
                stage[1] % stride == 0,
                "train.progressive",
                config.train.progressive,
                f"stage {tuple(stage)}: its patch size {why}",
            )

    @abc.abstractmethod
    def init_params(self, rng: jax.Array, batch: Batch) -> PyTree:
        """Trainable parameters for inputs shaped like `batch`."""

    def frozen_params(self) -> PyTree:
        """Read-only inputs of the loss (for example a loaded teacher); none by default."""
        return {}

    def frozen_copies(self) -> dict[str, int]:
        """Frozen copies of the method's own params: {name: refresh interval in steps}.

        The loop sets `frozen[name] = inference_params(state.params)` at every step that is a
        multiple of the interval (step 0 included) and checkpoints the copies with the state.
        """
        return {}

    def phase_at(self, step: int) -> str:
        """The training phase of (0-based) step `step`; one phase, "train", by default."""
        del step
        return "train"

    def ema_warmup_start(self, phase: str) -> int:
        """The step from which the EMA's warm-up (`train.ema_decay_at`) counts in `phase`.

        0 by default: one average over the whole run. A method whose phases train different
        functions returns each phase's first step, which restarts the average there (the
        warm-up's weight on the older average falls below 1e-12 within 100 steps).
        """
        del phase
        return 0

    def validation_sampler(self, phase: str) -> flow.SamplerSpec | None:
        """The sampler of in-training validation after a step of `phase`; None: the default."""
        del phase
        return None

    def trainable(self, params: PyTree, phase: str) -> PyTree | None:
        """Booleans shaped like `params`, True where `phase` trains the leaf; None = all of them.

        The loop zeroes the gradients and updates (weight decay included) of the other leaves.
        """
        del params, phase
        return None

    @abc.abstractmethod
    def loss(
        self, params: PyTree, frozen: PyTree, batch: Batch, rng: jax.Array, phase: str = "train"
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """The scalar training loss of `phase` and named scalar components for logging."""

    @abc.abstractmethod
    def predict(
        self,
        params: PyTree,
        frozen: PyTree,
        batch: Batch,
        sampler: flow.SamplerSpec | None = None,
    ) -> jax.Array:
        """The restored images (B, H, W, 3) for `batch["lq"]` (and `batch["gt"]` if needed).

        `sampler` chooses the ODE solver and time grid of flow methods (None: the config's);
        other methods ignore it.
        """

    def flow_problem(self, params: PyTree, frozen: PyTree, batch: Batch) -> flow.FlowProblem:
        """The ODE `predict` integrates for `batch` (network, start state, parametrisation), for
        tools that study a flow model's trajectories (`tools/breakpoints.py`). Only methods
        whose `takes_sampler` is True have one."""
        del params, frozen, batch
        raise ValueError(f"{type(self).__name__} integrates no flow (takes_sampler is False)")

    def default_sampler(self) -> flow.SamplerSpec:
        """The sampler `predict` uses when given None (flow methods read it from their config)."""
        return flow.SamplerSpec()

    def inference_params(self, params: PyTree) -> PyTree:
        """The part of the trained params that `predict` reads (all of them by default)."""
        return params

    @property
    def backbone(self) -> models.BackboneSpec:
        """The contract of `self.model` (its registered spec)."""
        return models.backbone_of(self.model)

    @property
    def stride(self) -> int:
        """Input height and width must be multiples of this (the backbone's stride)."""
        return self.backbone.stride_of(models.module_fields(self.model))

    @property
    def takes_noise_level(self) -> bool:
        """True when the backbone reads a noise level (a noise-level map network)."""
        return "noise_level" in self.backbone.inputs(models.module_fields(self.model))


def noise_level_of(batch: Batch) -> jax.Array:
    """`batch["noise_level"]` (B,), or, when the batch has none, each LQ image's blind estimate
    (`noise_level.estimate_sigma`): the noise level a noise-map network reads."""
    if "noise_level" in batch:
        return batch["noise_level"]
    return noise_level.estimate_sigma(batch["lq"])


def _inputs_text(*names: str) -> str:
    """A backbone's inputs in a sentence: "the image, " and the other inputs, sorted."""
    return ", ".join(("the image", *sorted(names)))
