"""The interface between a method (how a model learns) and the training loop.

The loop only calls these functions; it never knows which method runs. A method's trainable
parameters are one pytree; anything it reads but never trains (a frozen teacher) comes back from
`frozen_params` and enters the jitted step as a separate argument, outside the checkpoint.
A method may train in phases (`phase_at`), each with its own loss and its own set of trainable
parameters (`trainable`); the loop compiles one step per phase.
"""

import abc
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import ml_collections

from restorect_jax import models

Batch = dict[str, jax.Array]  # "lq" and "gt": (B, H, W, 3) float32 in [0, 1]
PyTree = Any


class Method(abc.ABC):
    """A training method: parameter init, a scalar loss, and a prediction function.

    Class attributes:
      privileged: `predict` reads `batch["gt"]` too (a teacher), so it needs ground truth.
      uses_flow: `predict` takes `num_steps`, the ODE steps of its sampler.
    """

    privileged: bool = False
    uses_flow: bool = False

    def __init__(self, config: ml_collections.ConfigDict, *, inference: bool = False):
        """`inference=True` builds only what `predict` needs (no frozen teacher is loaded)."""
        self.config = config
        self.inference = inference

    @abc.abstractmethod
    def init_params(self, rng: jax.Array, batch: Batch) -> PyTree:
        """Trainable parameters for inputs shaped like `batch`."""

    def frozen_params(self) -> PyTree:
        """Read-only inputs of the loss (for example a loaded teacher); none by default."""
        return {}

    def phase_at(self, step: int) -> str:
        """The training phase of (0-based) step `step`; one phase, "train", by default."""
        del step
        return "train"

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
    def predict(self, params: PyTree, frozen: PyTree, batch: Batch) -> jax.Array:
        """The restored images (B, H, W, 3) for `batch["lq"]` (and `batch["gt"]` if privileged)."""

    def inference_params(self, params: PyTree) -> PyTree:
        """The part of the trained params that `predict` reads (all of them by default)."""
        return params

    @property
    def stride(self) -> int:
        """Input height and width must be multiples of this: 2^(levels - 1) of the U-Net."""
        return 2 ** (len(self.config.model.num_blocks) - 1)


def model_from_config(model_config: ml_collections.ConfigDict | Mapping[str, Any]) -> nn.Module:
    """The registry model named `model_config["name"]`, built with the config's other fields.

    Lists (as JSON gives them back) become tuples, so a saved `config.json` works too.
    """
    kwargs = {key: value for key, value in dict(model_config).items() if key != "name"}
    for key, value in kwargs.items():
        if isinstance(value, list):
            kwargs[key] = tuple(value)
    return models.get_model(model_config["name"], **kwargs)
