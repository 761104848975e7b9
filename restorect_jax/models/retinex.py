"""Retinex decomposition network: an image I -> reflectance R and illumination L, with I ~ R L."""

from __future__ import annotations

from typing import Literal

import flax.linen as nn
import jax

from restorect_jax.models.layers import Conv3x3

Array = jax.Array


class DecompositionNet(nn.Module):
    """`D(I) -> (R (B, H, W, 3), L (B, H, W, 1))`, trained by the Retinex losses (METHODS 1.5).

    3x3 convs 3 -> F, F -> F, F -> F, F -> 4, leaky ReLU after each of the first three, then the
    output activation on all four channels:
      "sigmoid" (default): R in (0, 1) and L in (0, 1), the ranges of an image and of a gain, with
        L never 0 (I / L stays defined) and no dead output units at initialisation;
      "relu" (the paper's code): R, L in [0, inf).
    """

    features: int = 32
    negative_slope: float = 0.2
    output_activation: Literal["sigmoid", "relu"] = "sigmoid"

    def __post_init__(self) -> None:
        if self.output_activation not in ("sigmoid", "relu"):
            raise ValueError(
                f"DecompositionNet: output_activation {self.output_activation!r} is not "
                "'sigmoid' or 'relu'"
            )
        super().__post_init__()

    @nn.compact
    def __call__(self, image: Array) -> tuple[Array, Array]:
        x = image
        for i in range(3):
            x = nn.leaky_relu(Conv3x3(self.features, name=f"conv{i}")(x), self.negative_slope)
        out = Conv3x3(4, name="out")(x)
        out = nn.sigmoid(out) if self.output_activation == "sigmoid" else nn.relu(out)
        return out[..., :3], out[..., 3:]
