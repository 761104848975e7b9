"""TimeUNet: a time-conditioned U-Net for flows in image space (IR-Flow, METHODS 2).

The network reads the state `x_t` (B, H, W, 3) and its time t (B,) and returns a (B, H, W, 3)
field (IR-Flow's cumulative velocity `G(x_t, t) ~ x_t - x`, or a plain velocity). Layout, with
C = width and level l at C 2^l channels and stride 2^l (l = 0 .. L-1, L = len(num_blocks)):

  e = MLP(sinusoid(1000 t))             time embedding: `time_features` sinusoids, 4C wide
  h = Conv3x3(x_t)
  levels 0 .. L-2:  num_blocks[l] x ResBlock(h, e) (+ LinearAttention), skip_l = h,
                    h = Downsample(h)                        (conv C -> C/2, pixel-unshuffle)
  level L-1:        num_blocks[L-1] x ResBlock (+ LinearAttention)          the bottleneck
  levels L-2 .. 0:  h = Pointwise(concat(Upsample(h), skip_l)),
                    num_blocks[l] x ResBlock (+ LinearAttention)
  out = Conv3x3(silu(GroupNorm(h)))

ResBlock with FiLM from the time embedding (`scale, shift = Dense(e)`):
  r = Conv3x3(silu(GN(h))),  r = Conv3x3(silu(GN(r) (1 + scale) + shift)),  h + r.
The second convolution of each ResBlock and the output convolution start at zero, so the
network starts as the zero field with every block the identity (as diffusion U-Nets do).
Its convolutions are dense 3x3 (`layers.Conv3x3`) and its projections matrix products
(`layers.Pointwise`), the forms that run fastest on CPU (DEVELOPERS.md). Inputs of any size are
padded by reflection to a multiple of the stride 2^(L-1) and the output is cropped back.
Paper scale (the public IR-Flow U-Net): width 64, num_blocks (2, 2, 2, 2), attention at every
level.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from restorect_jax.image_ops import pad_to_multiple
from restorect_jax.models.layers import Conv3x3, Downsample, Pointwise, Upsample

Array = jax.Array
_ZERO = nn.initializers.zeros_init()  # ResBlocks start as the identity and the output at 0


TIME_SCALE = 1000.0  # t in [0, 1] is embedded as 1000 t, the diffusion models' step range


def sinusoidal_embedding(t: Array, features: int) -> Array:
    """(B,) times -> (B, features): `[sin(s t w_k), cos(s t w_k)]`, `w_k = 10000^(-k / half)`,
    s = TIME_SCALE."""
    half = features // 2
    frequencies = jnp.exp(-math.log(10000.0) * jnp.arange(half, dtype=jnp.float32) / half)
    angles = TIME_SCALE * t.astype(jnp.float32)[:, None] * frequencies[None, :]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def _group_norm(channels: int, name: str) -> nn.GroupNorm:
    """GroupNorm with the most groups (up to 8) that divide the channels into groups of 4+."""
    groups = max(g for g in range(1, 9) if channels % g == 0 and (channels // g >= 4 or g == 1))
    return nn.GroupNorm(num_groups=groups, name=name)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with GroupNorm and SiLU, the second norm modulated by FiLM of e."""

    @nn.compact
    def __call__(self, x: Array, embedding: Array) -> Array:
        channels = x.shape[-1]
        r = Conv3x3(channels, name="conv1")(nn.silu(_group_norm(channels, "norm1")(x)))
        scale, shift = jnp.split(nn.Dense(2 * channels, name="film")(nn.silu(embedding)), 2, -1)
        r = _group_norm(channels, "norm2")(r) * (1.0 + scale[:, None, None]) + shift[:, None, None]
        return x + Conv3x3(channels, kernel_init=_ZERO, name="conv2")(nn.silu(r))


class LinearAttention(nn.Module):
    """Multi-head linear attention over pixels, cost linear in H W, with a residual.

    Per head (d = C / heads channels): q softmax over its d channels at each pixel, k softmax
    over the H W pixels of each channel, `context = k^T v` (d x d), `out = q context`;
    `x + Pointwise(out)`.
    """

    num_heads: int = 1

    @nn.compact
    def __call__(self, x: Array) -> Array:
        b, h, w, c = x.shape
        if c % self.num_heads:
            raise ValueError(f"LinearAttention: {c} channels not divisible by {self.num_heads}")
        qkv = Pointwise(3 * c, use_bias=False, name="qkv")(_group_norm(c, "norm")(x))
        q, k, v = (
            part.reshape(b, h * w, self.num_heads, -1) for part in jnp.split(qkv, 3, axis=-1)
        )
        q = jax.nn.softmax(q, axis=-1)
        k = jax.nn.softmax(k, axis=1)
        context = jnp.einsum("bpnd,bpne->bnde", k, v)
        out = jnp.einsum("bpnd,bnde->bpne", q, context).reshape(b, h, w, c)
        return x + Pointwise(c, name="out")(out)


class TimeUNet(nn.Module):
    """A U-Net of FiLM ResBlocks on x_t alone, conditioned on t (see the module docstring).

    Attributes:
      width: channels C of level 0 (a multiple of 4).
      num_blocks: ResBlocks per level; its length L is the number of levels (stride 2^(L-1)).
      attention: per level, whether each ResBlock is followed by linear attention.
      num_heads: attention heads at every level.
      out_channels: channels of the output field.
      time_features: sinusoids of the time embedding (64 by default, whatever the width: with
        few, only one or two frequencies vary smoothly over t in [0, 1] and the network
        can hardly tell times apart).
    """

    width: int = 16
    num_blocks: tuple[int, ...] = (1, 1, 2)
    attention: tuple[bool, ...] = (False, False, True)
    num_heads: int = 1
    out_channels: int = 3
    time_features: int = 64

    @property
    def stride(self) -> int:
        return 2 ** (len(self.num_blocks) - 1)

    def _level(self, h: Array, embedding: Array, level: int, tag: str) -> Array:
        for block in range(self.num_blocks[level]):
            h = ResBlock(name=f"{tag}{level}_res{block}")(h, embedding)
            if self.attention[level]:
                h = LinearAttention(self.num_heads, name=f"{tag}{level}_attn{block}")(h)
        return h

    @nn.compact
    def __call__(self, x: Array, t: Array) -> Array:
        if len(self.attention) != len(self.num_blocks):
            raise ValueError(
                f"TimeUNet: attention {self.attention} needs one entry per level of "
                f"num_blocks {self.num_blocks}"
            )
        height, width = x.shape[1:3]
        t = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])
        embedding = sinusoidal_embedding(t, self.time_features)
        embedding = nn.Dense(4 * self.width, name="time_mlp1")(embedding)
        embedding = nn.Dense(4 * self.width, name="time_mlp2")(nn.silu(embedding))

        h = Conv3x3(self.width, name="stem")(pad_to_multiple(x, self.stride))
        last = len(self.num_blocks) - 1
        skips = []
        for level in range(last):
            h = self._level(h, embedding, level, "down")
            skips.append(h)
            h = Downsample(name=f"downsample{level}")(h)
        h = self._level(h, embedding, last, "mid")
        for level in reversed(range(last)):
            h = Upsample(name=f"upsample{level}")(h)
            h = jnp.concatenate([h, skips[level]], axis=-1)
            h = Pointwise(skips[level].shape[-1], name=f"fuse{level}")(h)
            h = self._level(h, embedding, level, "up")
        h = nn.silu(_group_norm(h.shape[-1], "out_norm")(h))
        return Conv3x3(self.out_channels, kernel_init=_ZERO, name="out")(h)[:, :height, :width]
