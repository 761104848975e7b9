"""Layers of the restoration networks: convolutions, pixel (un)shuffle, SCLN, attention and FFN.

All tensors are channels-last (NHWC). The convolutions keep the parameter layout of `nn.Conv`
(`kernel` of shape (kh, kw, in / groups, out), `bias` of shape (out,)) so that their outputs can be
checked against `nn.Conv` and weights converted between the two.
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array

_KERNEL_INIT = nn.initializers.lecun_normal()
_BIAS_INIT = nn.initializers.zeros_init()


def pixel_unshuffle(x: Array, factor: int) -> Array:
    """Space-to-depth: (B, H, W, C) -> (B, H/r, W/r, C r^2).

    Output channel `c r^2 + i r + j` holds input pixel `(r y + i, r x + j)` of channel `c`, the
    ordering of PyTorch's `pixel_unshuffle`. H and W must be multiples of `factor`.
    """
    b, h, w, c = x.shape
    if h % factor or w % factor:
        raise ValueError(f"pixel_unshuffle: spatial size {(h, w)} is not a multiple of {factor}")
    x = x.reshape(b, h // factor, factor, w // factor, factor, c)
    x = x.transpose(0, 1, 3, 5, 2, 4)
    return x.reshape(b, h // factor, w // factor, c * factor * factor)


def pixel_shuffle(x: Array, factor: int) -> Array:
    """Depth-to-space, the inverse of `pixel_unshuffle`: (B, H, W, C r^2) -> (B, H r, W r, C)."""
    b, h, w, cr2 = x.shape
    if cr2 % (factor * factor):
        raise ValueError(f"pixel_shuffle: {cr2} channels is not a multiple of {factor}^2")
    c = cr2 // (factor * factor)
    x = x.reshape(b, h, w, c, factor, factor)
    x = x.transpose(0, 1, 4, 2, 5, 3)
    return x.reshape(b, h * factor, w * factor, c)


class Conv3x3(nn.Module):
    """Dense 3x3 convolution, stride 1, SAME zero padding: `y = conv(x, kernel) + bias`."""

    features: int
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = _KERNEL_INIT

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kernel = self.param("kernel", self.kernel_init, (3, 3, x.shape[-1], self.features))
        dtype = jnp.result_type(x, kernel)  # as jnp ops promote: bf16 x bf16 stays bf16
        y = jax.lax.conv_general_dilated(
            x.astype(dtype),
            kernel.astype(dtype),
            window_strides=(1, 1),
            padding="SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        if self.use_bias:
            y = y + self.param("bias", _BIAS_INIT, (self.features,))
        return y


def _shift_add3x3(x: Array, kernel: Array) -> Array:
    """`y[h, w, c] = sum_ij x[h+i-1, w+j-1, c] kernel[i, j, c]` (zero padding): nine shifted
    multiply-adds on a once-padded input."""
    _, h, w, _ = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return sum(
        padded[:, i : i + h, j : j + w, :] * kernel[i, j] for i in range(3) for j in range(3)
    )


@jax.custom_vjp
def depthwise3x3(x: Array, kernel: Array) -> Array:
    """3x3 depthwise convolution of NHWC `x` with a (3, 3, C) kernel, SAME zero padding, with a
    hand-written backward pass:
        dx = depthwise3x3(dy, kernel flipped in both axes)       (the same shift-and-add form),
        dkernel[i, j, c] = sum_{b,h,w} x[b, h+i-1, w+j-1, c] dy[b, h, w, c]
                                                  (`_depthwise3x3_kernel_gradient`).
    XLA's own gradient of the shifted slices pads the cotangent nine times at full size."""
    return _shift_add3x3(x, kernel)


def _depthwise3x3_forward(x: Array, kernel: Array) -> tuple[Array, tuple[Array, Array]]:
    return _shift_add3x3(x, kernel), (x, kernel)


_KERNEL_GRADIENT_ROWS = 4  # image rows per step of the kernel gradient's loop on CPU


def _kernel_gradient_full(x: Array, dy: Array) -> Array:
    """`dK[i, j, c] = sum_{b,h,w} x[b, h+i-1, w+j-1, c] dy[b, h, w, c]` (x = 0 outside the
    image) as nine products of full-size shifted slices, each summed in float32."""
    _, height, width, _ = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    taps = [
        jnp.sum(padded[:, i : i + height, j : j + width] * dy, (0, 1, 2), jnp.float32)
        for i in range(3)
        for j in range(3)
    ]
    return jnp.stack(taps).reshape(3, 3, -1)


def _kernel_gradient_row_blocks(x: Array, dy: Array) -> Array:
    """The same sums as `_kernel_gradient_full`, accumulated per image in float32 over blocks of
    a few rows in a loop (the batch axis stays whole, so a batch-sharded `x` is never gathered).

    In the full form XLA:CPU shares the forward's nine shifted slices of the padded `x`, writes
    each out in full and reduces each in its own pass: in the teacher's 1 x 256x256 train step
    those copies took 1.26 s of 4.0 (tools/profile_step.py); on blocks of rows that stay in
    cache the depthwise ops' total fell from 2.10 to 1.11 s."""
    batch, height, width, channels = x.shape
    rows = math.gcd(height, _KERNEL_GRADIENT_ROWS)
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))

    def accumulate(block: Array, total: Array) -> Array:
        top = block * rows
        x_rows = jax.lax.dynamic_slice_in_dim(padded, top, rows + 2, axis=1)
        dy_rows = jax.lax.dynamic_slice_in_dim(dy, top, rows, axis=1)
        taps = [
            jnp.sum(x_rows[:, i : i + rows, j : j + width] * dy_rows, (1, 2), jnp.float32)
            for i in range(3)
            for j in range(3)
        ]
        return total + jnp.stack(taps, axis=1)

    per_image = jax.lax.fori_loop(
        0, height // rows, accumulate, jnp.zeros((batch, 9, channels), jnp.float32)
    )
    return jnp.sum(per_image, axis=0).reshape(3, 3, channels)


def _depthwise3x3_kernel_gradient(x: Array, dy: Array) -> Array:
    """The kernel gradient, row blocks on CPU (measured above), the full-size sums elsewhere:
    GPU and TPU backends fuse each product into its reduction, and a loop of small steps would
    leave them idle (not measured here)."""
    return jax.lax.platform_dependent(
        x, dy, cpu=_kernel_gradient_row_blocks, default=_kernel_gradient_full
    )


def _depthwise3x3_backward(saved: tuple[Array, Array], dy: Array) -> tuple[Array, Array]:
    x, kernel = saved
    dx = _shift_add3x3(dy, kernel[::-1, ::-1])
    dkernel = _depthwise3x3_kernel_gradient(x, dy)
    return dx.astype(x.dtype), dkernel.astype(kernel.dtype)


depthwise3x3.defvjp(_depthwise3x3_forward, _depthwise3x3_backward)


class DepthwiseConv3x3(nn.Module):
    """3x3 depthwise convolution, SAME zero padding:
    `y[h, w, c] = sum_ij x[h+i-1, w+j-1, c] K[i, j, c]` (i, j in 0..2, x = 0 outside the image).

    Computed as nine shifted multiply-adds on a once-padded input, because XLA on CPU runs the
    equivalent grouped convolution (`nn.Conv(C, (3, 3), feature_group_count=C)`) 8-40x slower.
    The gradient is written out (`depthwise3x3`, a custom VJP): the input gradient in the same
    shift-and-add form, the kernel gradient summed over blocks of image rows in a loop; with
    `custom_backward=False` XLA differentiates the slices instead, which pads the cotangent nine
    times at full size and, before a 1x1 weight gradient, writes their sum transposed: 1.46x
    slower for the teacher's train step at 1 x 256x256 and 1.1-1.2x at 4 x 48x48
    (tools/results/profile_teacher_*_cpu.md, bench_train*_cpu.md). The parameters
    have the grouped convolution's names and shapes (`kernel` (3, 3, 1, C), `bias` (C,)).
    """

    features: int
    use_bias: bool = True
    custom_backward: bool = True

    @nn.compact
    def __call__(self, x: Array) -> Array:
        if x.shape[-1] != self.features:
            raise ValueError(
                f"DepthwiseConv3x3: input has {x.shape[-1]} channels, expected {self.features}"
            )
        kernel = self.param("kernel", _KERNEL_INIT, (3, 3, 1, self.features))[:, :, 0]
        convolve = depthwise3x3 if self.custom_backward else _shift_add3x3
        y = convolve(x, kernel)
        if self.use_bias:
            y = y + self.param("bias", _BIAS_INIT, (self.features,))
        return y


@jax.custom_vjp
def channel_matmul(x: Array, kernel: Array) -> Array:
    """`y = x @ W` over the last axis of `x` (..., C), W (C, F), with the gradient written out:
        dx = dy @ W^T,  dW = X^T dY  (X, dY: `x`, `dy` flattened to (pixels, C) and (pixels, F)),
    dW as one contraction over the pixel axis. XLA's own gradient is that product followed by
    a transpose, which XLA:CPU folds into the operands by copying the (pixels, F) cotangent into
    (F, pixels) order, recomputing its producer inside the copy."""
    return x @ kernel


def _channel_matmul_forward(x: Array, kernel: Array) -> tuple[Array, tuple[Array, Array]]:
    return x @ kernel, (x, kernel)


def _channel_matmul_backward(saved: tuple[Array, Array], dy: Array) -> tuple[Array, Array]:
    x, kernel = saved
    dkernel = jax.lax.dot_general(
        x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1]), (((0,), (0,)), ((), ()))
    )
    return dy @ kernel.T, dkernel.astype(kernel.dtype)


channel_matmul.defvjp(_channel_matmul_forward, _channel_matmul_backward)


class Pointwise(nn.Module):
    """1x1 convolution as a matrix product on the channel axis: `y = x @ W + b`, W (C_in, F).

    Equal to `nn.Conv(F, (1, 1))` with kernel `W[None, None]`; written as a dense product because
    its gradient runs about 6x faster than the convolution's on CPU, with the gradient of `W`
    as one contraction (`channel_matmul`).
    """

    features: int
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kernel = self.param("kernel", _KERNEL_INIT, (x.shape[-1], self.features))
        y = channel_matmul(x, kernel)
        if self.use_bias:
            y = y + self.param("bias", _BIAS_INIT, (self.features,))
        return y


class Downsample(nn.Module):
    """Halves the resolution, doubles the channels: 3x3 conv C -> C/2, then pixel-unshuffle(2)."""

    use_bias: bool = False

    @nn.compact
    def __call__(self, x: Array) -> Array:
        channels = x.shape[-1]
        if channels % 2:
            raise ValueError(f"Downsample: channel count {channels} is odd")
        return pixel_unshuffle(Conv3x3(channels // 2, self.use_bias, name="conv")(x), 2)


class Upsample(nn.Module):
    """Doubles the resolution and halves the channels: 3x3 conv C -> 2C, then pixel-shuffle(2)."""

    use_bias: bool = False

    @nn.compact
    def __call__(self, x: Array) -> Array:
        return pixel_shuffle(Conv3x3(2 * x.shape[-1], self.use_bias, name="conv")(x), 2)


def _sum_over_leading_axes(t: Array) -> Array:
    """`t` (..., C) summed to (C,)."""
    return jnp.sum(t.reshape(-1, t.shape[-1]), axis=0)


@jax.custom_vjp
def channel_affine(x: Array, scale: Array, shift: Array | None) -> Array:
    """`y = x * scale + shift` with per-channel `scale`, `shift` (C,) (`shift=None`: none), and
    the parameter gradients written out as plain sums over the leading axes,
        dscale = sum_{...} dy * x,  dshift = sum_{...} dy.
    XLA's own gradient reduces the broadcast's cotangent inside the fusion that also computes the
    normalisation's input gradient. In the teacher's 1 x 256x256 train step the layer norms (SCLN
    and the attention's QK-norms) took 1.16 s with it and 0.54 s with these sums
    (tools/profile_step.py); alone, at the same shapes, the two forms time the same
    (tools/results/bench_ops_*cpu.md, layer-norm rows)."""
    return _channel_affine_forward(x, scale, shift)[0]


def _channel_affine_forward(
    x: Array, scale: Array, shift: Array | None
) -> tuple[Array, tuple[Array, Array, Array | None]]:
    y = x * scale if shift is None else x * scale + shift
    return y, (x, scale, shift)


def _channel_affine_backward(
    saved: tuple[Array, Array, Array | None], dy: Array
) -> tuple[Array, Array, Array | None]:
    x, scale, shift = saved  # `shift` only tells whether there is one (None: an empty pytree)
    dshift = None if shift is None else _sum_over_leading_axes(dy)
    return dy * scale, _sum_over_leading_axes(dy * x), dshift


channel_affine.defvjp(_channel_affine_forward, _channel_affine_backward)


class LayerNorm(nn.Module):
    """Layer norm over the last axis, `y = (x - mean) / sqrt(var + eps) * scale + bias`, with
    `nn.LayerNorm`'s parameters (`scale` init 1, `bias` init 0, both (C,)) and its parameter
    gradients as plain sums (`channel_affine`)."""

    epsilon: float = 1e-6

    @nn.compact
    def __call__(self, x: Array) -> Array:
        channels = x.shape[-1]
        mean = jnp.mean(x, axis=-1, keepdims=True)
        centred = x - mean
        var = jnp.mean(jnp.square(centred), axis=-1, keepdims=True)
        return channel_affine(
            centred * jax.lax.rsqrt(var + self.epsilon),
            self.param("scale", nn.initializers.ones_init(), (channels,)),
            self.param("bias", nn.initializers.zeros_init(), (channels,)),
        )


class SCLN(nn.Module):
    """Spatial-channel layer norm: statistics per sample over all of (H, W, C).

    `y = clip((x - mean) / sqrt(var + eps), -clip_value, clip_value) * gain`, with a per-channel
    gain (param `scale`, init 1) and no bias.
    """

    eps: float = 1e-5
    clip_value: float = 10.0

    @nn.compact
    def __call__(self, x: Array) -> Array:
        mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=(1, 2, 3), keepdims=True)
        y = jnp.clip((x - mean) * jax.lax.rsqrt(var + self.eps), -self.clip_value, self.clip_value)
        gain = self.param("scale", nn.initializers.ones_init(), (x.shape[-1],))
        return channel_affine(y, gain, None)


class PriorModulation(nn.Module):
    """Modulates a feature map by a prior vector: `x <- x * (W k) + x`.

    `k` (B, D) is mapped by a bias-free linear layer W (D -> C, C = channels of `x`) and
    broadcast over H and W.
    """

    @nn.compact
    def __call__(self, x: Array, prior: Array) -> Array:
        scale = nn.Dense(x.shape[-1], use_bias=False, name="proj")(prior)
        return x * scale[:, None, None, :] + x


def _sum_of_products(a: Array, b: Array, axis: int) -> Array:
    """`sum(a * b, axis, keepdims=True)` as a contraction (dot_general): XLA on CPU reduces a
    product over a middle axis, as the attention's (B, heads, pixels, d) maps need, up to 40x
    slower than it contracts the same axis."""
    letters = "abcdefghijklmnopqrstuvwxyz"[: a.ndim]
    kept = letters.replace(letters[axis], "")
    return jnp.expand_dims(jnp.einsum(f"{letters},{letters}->{kept}", a, b), axis)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _l2_normalize(x: Array, axis: int, eps: float) -> Array:
    return _l2_normalize_forward(x, axis, eps)[0]


def _l2_normalize_forward(x: Array, axis: int, eps: float) -> tuple[Array, tuple]:
    sq_norm = _sum_of_products(x, x, axis)
    inverse = jax.lax.rsqrt(jnp.maximum(sq_norm, eps * eps))
    return x * inverse, (x, inverse, sq_norm > eps * eps)


def _l2_normalize_backward(axis: int, eps: float, saved: tuple, dy: Array) -> tuple[Array]:
    del eps
    x, inverse, above_eps = saved
    along = jnp.where(above_eps, x * inverse**3 * _sum_of_products(dy, x, axis), 0.0)
    return (dy * inverse - along,)


_l2_normalize.defvjp(_l2_normalize_forward, _l2_normalize_backward)


def l2_normalize(x: Array, axis: int, eps: float = 1e-12) -> Array:
    """`y = x / max(||x||_2, eps)` along `axis`, with the gradient written out,
    `dx = dy / n - x (sum_axis dy x) / n^3` (n = ||x|| above eps; `dy / eps` below), so that both
    sums along `axis` are contractions (`_sum_of_products`)."""
    return _l2_normalize(x, axis, eps)


class TransposedAttention(nn.Module):
    """Multi-head transposed (channel) attention, self- or cross-attention.

    With `F = features` (default: the channels of `x_q`) split into `num_heads` heads of `d = F/h`
    channels, per head and sample:
      q = DW(PW(x_q)),  [k, v] = DW(PW(x_kv))          (PW 1x1 to F or 2F, DW 3x3 depthwise)
      q, k <- LayerNorm over the d channels of the head at each pixel (QK-norm; learnable affine
              of size d shared by the heads)
      q, k <- q / ||q||, k / ||k||, the norms taken over the H*W pixels of each channel
      A = softmax_rows(q k^T * tau_head)              (d x d; q, k as (d, HW) matrices)
      out = PW(A v)                                   (1x1 projection F -> F)
    `x_kv = None` means self-attention (`x_kv = x_q`); R-blocks pass different channel groups as
    `x_q` and `x_kv`. Channel `c` of a (B, H, W, F) tensor belongs to head `c // d`.
    """

    num_heads: int
    features: int | None = None
    use_bias: bool = False
    norm_eps: float = 1e-5

    @nn.compact
    def __call__(self, x_q: Array, x_kv: Array | None = None) -> Array:
        x_kv = x_q if x_kv is None else x_kv
        features = x_q.shape[-1] if self.features is None else self.features
        if features % self.num_heads:
            raise ValueError(
                f"TransposedAttention: {features} channels not divisible by {self.num_heads} heads"
            )
        b, h, w, _ = x_q.shape

        q = DepthwiseConv3x3(features, self.use_bias, name="q_dwconv")(
            Pointwise(features, self.use_bias, name="q_proj")(x_q)
        )
        kv = DepthwiseConv3x3(2 * features, self.use_bias, name="kv_dwconv")(
            Pointwise(2 * features, self.use_bias, name="kv_proj")(x_kv)
        )
        k, v = jnp.split(kv, 2, axis=-1)

        def heads(t: Array) -> Array:  # (B, H, W, F) -> (B, heads, HW, d)
            return t.reshape(b, h * w, self.num_heads, -1).transpose(0, 2, 1, 3)

        q = LayerNorm(self.norm_eps, name="q_norm")(heads(q))
        k = LayerNorm(self.norm_eps, name="k_norm")(heads(k))
        q = l2_normalize(q, axis=2)
        k = l2_normalize(k, axis=2)
        temperature = self.param("temperature", nn.initializers.ones_init(), (self.num_heads,))
        logits = jnp.einsum("bnpd,bnpe->bnde", q, k) * temperature[None, :, None, None]
        attn = jax.nn.softmax(logits, axis=-1)
        out = jnp.einsum("bnde,bnpe->bnpd", attn, heads(v))
        out = out.transpose(0, 2, 1, 3).reshape(b, h, w, features)
        return Pointwise(features, self.use_bias, name="out_proj")(out)


class GatedDepthwiseFFN(nn.Module):
    """Gated depthwise feed-forward network, with `h = int(C * expansion)`:

    `[x1, x2] = DW(PW_{C->2h}(x))`, `y = PW_{h->C}(gelu(x1) * x2)` (exact, erf-based GELU).
    """

    expansion: float = 2.66
    use_bias: bool = False

    @nn.compact
    def __call__(self, x: Array) -> Array:
        channels = x.shape[-1]
        hidden = int(channels * self.expansion)
        y = Pointwise(2 * hidden, self.use_bias, name="in_proj")(x)
        y = DepthwiseConv3x3(2 * hidden, self.use_bias, name="dwconv")(y)
        x1, x2 = jnp.split(y, 2, axis=-1)
        return Pointwise(channels, self.use_bias, name="out_proj")(
            jax.nn.gelu(x1, approximate=False) * x2
        )
