"""The interface between a method (how a model learns) and the training loop.

The loop only calls these functions; it never knows which method runs. A method's trainable
parameters are one pytree; anything it reads but never trains (a frozen teacher) comes back from
`frozen_params` and enters the jitted step as a separate argument, outside the checkpoint.
"""

import abc
from typing import Any

import jax
import ml_collections

Batch = dict[str, jax.Array]  # "lq" and "gt": (B, H, W, 3) float32 in [0, 1]
PyTree = Any


class Method(abc.ABC):
    """A training method: parameter init, a scalar loss, and a prediction function."""

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config

    @abc.abstractmethod
    def init_params(self, rng: jax.Array, batch: Batch) -> PyTree:
        """Trainable parameters for inputs shaped like `batch`."""

    def frozen_params(self) -> PyTree:
        """Read-only inputs of the loss (for example a loaded teacher); none by default."""
        return {}

    @abc.abstractmethod
    def loss(
        self, params: PyTree, frozen: PyTree, batch: Batch, rng: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """The scalar training loss and named scalar components for logging."""

    @abc.abstractmethod
    def predict(self, params: PyTree, frozen: PyTree, batch: Batch) -> jax.Array:
        """The restored images (B, H, W, 3) for `batch["lq"]` (and `batch["gt"]` if privileged)."""
