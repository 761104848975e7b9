"""Denoisers built for a CPU's matrix units: dense 3x3 convolutions and ReLU, nothing else.

On a CPU, XLA runs a dense 3x3 convolution at about 90% of its matmul peak, while depthwise
convolutions, layer norms and GELU are memory-bound (../shared/PERF.md, tools/bench_dncnn.py).
Both networks here spend nearly all their multiply-adds in dense 3x3 convolutions and 1x1
projections, and both restore `lq + residual`.

Each optionally reads a noise level: `noise_level` (B,) on the [0, 1] scale (sigma / 255),
broadcast to a constant map and concatenated to the input as one more channel (FFDNet, DRUNet).
With `noise_map=False` the network reads the image alone.

  UnshuffleCNN (FFDNet's layout): pixel-unshuffle by 2 (3 -> 12 channels, + the map),
    Conv3x3 -> ReLU, `num_blocks` residual blocks at `width` channels, Conv3x3 -> 12,
    pixel-shuffle back. Multiply-adds per pixel ~ 9 width^2 (2 num_blocks + 1) / 4.
  Residual block: `h + Conv3x3(ReLU(Conv3x3(h)))`, the second convolution starting at zero.
  ResUNet (a DRUNet-like U-Net): pixel-unshuffle stem to half resolution, then levels at
    width 2^l channels, each `num_blocks[l]` residual blocks; down by
    pixel-unshuffle + 1x1 projection, up by 1x1 projection + pixel-shuffle, skips added.
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from restorect_jax.image_ops import pad_to_multiple
from restorect_jax.models.layers import Conv3x3, Pointwise, pixel_shuffle, pixel_unshuffle

Array = jax.Array
_ZERO = nn.initializers.zeros_init()
# He initialisation keeps the activations' scale through ReLU layers (LeCun's halves it at
# each one: after the eleven of FFDNet's layout the output barely moved in 500 steps).
_RELU_INIT = nn.initializers.he_normal()


def with_noise_map(x: Array, noise_level: Array | None, enabled: bool, name: str) -> Array:
    """`x` with a constant channel of each image's `noise_level` appended when `enabled`.

    Raises ValueError when the model reads a noise level and none was given, or the reverse.
    """
    if enabled != (noise_level is not None):
        given = "given" if noise_level is not None else "missing"
        raise ValueError(f"{name}: noise_map={enabled} but the noise level is {given}")
    if not enabled:
        return x
    level = jnp.broadcast_to(jnp.asarray(noise_level, x.dtype), x.shape[:1])
    level_map = jnp.broadcast_to(level[:, None, None, None], (*x.shape[:3], 1))
    return jnp.concatenate([x, level_map], axis=-1)


class ResBlock(nn.Module):
    """`h + Conv3x3(ReLU(Conv3x3(h)))`, the second convolution starting at zero."""

    @nn.compact
    def __call__(self, h: Array) -> Array:
        channels = h.shape[-1]
        r = nn.relu(Conv3x3(channels, kernel_init=_RELU_INIT, name="conv1")(h))
        return h + Conv3x3(channels, kernel_init=_ZERO, name="conv2")(r)


class UnshuffleCNN(nn.Module):
    """FFDNet-style CNN at half resolution (module docstring), with residual blocks; any size.

    FFDNet's plain stack of ReLU convolutions (trained there with batch norm) barely moved in
    its first 500 steps here without it; the same convolutions in residual pairs train at once.

    Attributes:
      width: channels of the hidden convolutions (FFDNet colour: 96).
      num_blocks: residual blocks of two convolutions; with the first and the output
        convolution, 2 num_blocks + 2 in all (FFDNet colour: 12 = 5 blocks).
      noise_map: read a noise level as an extra input channel.
    """

    stride: ClassVar[int] = 2

    width: int = 96
    num_blocks: int = 5
    noise_map: bool = False

    @nn.compact
    def __call__(self, lq: Array, noise_level: Array | None = None) -> Array:
        height, width = lq.shape[1:3]
        x = pad_to_multiple(lq, self.stride)
        h = with_noise_map(pixel_unshuffle(x, 2), noise_level, self.noise_map, "UnshuffleCNN")
        h = nn.relu(Conv3x3(self.width, kernel_init=_RELU_INIT, name="stem")(h))
        for index in range(self.num_blocks):
            h = ResBlock(name=f"res{index}")(h)
        residual = Conv3x3(4 * lq.shape[-1], kernel_init=_ZERO, name="out")(h)
        return (x + pixel_shuffle(residual, 2))[:, :height, :width]


class ResUNet(nn.Module):
    """DRUNet-like residual U-Net of dense convolutions (module docstring); any input size.

    Attributes:
      width: channels of level 0 (half resolution); level l has width 2^l.
      num_blocks: residual blocks per level; its length L is the number of levels.
      noise_map: read a noise level as an extra input channel.
    """

    width: int = 32
    num_blocks: tuple[int, ...] = (2, 2, 2)
    noise_map: bool = False

    @property
    def stride(self) -> int:
        return 2 ** len(self.num_blocks)  # the stem's 2 and L - 1 downsamplings

    @nn.compact
    def __call__(self, lq: Array, noise_level: Array | None = None) -> Array:
        height, width = lq.shape[1:3]
        x = pad_to_multiple(lq, self.stride)
        h = with_noise_map(pixel_unshuffle(x, 2), noise_level, self.noise_map, "ResUNet")
        h = Conv3x3(self.width, name="stem")(h)
        last = len(self.num_blocks) - 1
        skips = []
        for level in range(last + 1):
            for block in range(self.num_blocks[level]):
                h = ResBlock(name=f"down{level}_res{block}")(h)
            if level < last:
                skips.append(h)
                h = Pointwise(2 * h.shape[-1], name=f"downsample{level}")(pixel_unshuffle(h, 2))
        for level in reversed(range(last)):
            h = pixel_shuffle(Pointwise(4 * skips[level].shape[-1], name=f"upsample{level}")(h), 2)
            h = h + skips[level]
            for block in range(self.num_blocks[level]):
                h = ResBlock(name=f"up{level}_res{block}")(h)
        residual = Conv3x3(4 * lq.shape[-1], kernel_init=_ZERO, name="out")(h)
        return (x + pixel_shuffle(residual, 2))[:, :height, :width]
