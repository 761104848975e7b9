"""Loss terms of the restoration methods (METHODS 1.4 - 1.6).

Pure, jit-able functions of arrays. Images and feature maps are NHWC float32 (images in [0, 1]).
Learnable quantities (the HVI exponent `k`, the diffusion scale `s`) are arguments supplied by
the caller, which owns them as parameters. Every loss returns a scalar; the reduction is stated
in each docstring. Loss weights (e.g. 0.05 for HVI, lambda = 0.5 for FLEX) are applied by the
caller, not here.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from restorect_jax.colour import rgb_to_hvi

# ----------------------------------------------------------------------------- reconstruction


def l1_loss(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean absolute error `mean|pred - target|`, mean over all elements. Returns a scalar."""
    return jnp.mean(jnp.abs(pred - target))


def mse_loss(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean squared error `mean((pred - target)^2)`, mean over all elements. Returns a scalar."""
    return jnp.mean(jnp.square(pred - target))


def psnr_loss(pred: jax.Array, target: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Negative PSNR of images in [0, 1], averaged over the batch (B, H, W, C): a scalar.

    `mean_b 10 log10(mean_{h,w,c} (pred_b - target_b)^2 + eps)`; minimising it maximises the
    mean PSNR, weighting each image's error by its own scale.
    """
    per_image = jnp.mean(jnp.square(pred - target), axis=tuple(range(1, pred.ndim)))
    return jnp.mean(10.0 * jnp.log10(per_image + eps))


# ----------------------------------------------------------------------------- colour (HVI)


def hvi_colour_loss(
    pred: jax.Array, target: jax.Array, k: jax.Array | float, eps: float = 1e-8
) -> jax.Array:
    """HVI colour loss `mean|H^_p - H^_t| + mean|V^_p - V^_t| + mean|I_max,p - I_max,t|`.

    Args:
      pred, target: RGB images, shape (B, H, W, 3).
      k: the learnable HVI collapse exponent (scalar), see `colour.rgb_to_hvi`.
      eps: passed to `rgb_to_hvi`.

    Returns:
      A scalar; each of the three means is over (B, H, W).
    """
    h_p, v_p, i_p = rgb_to_hvi(pred, k, eps)
    h_t, v_t, i_t = rgb_to_hvi(target, k, eps)
    return l1_loss(h_p, h_t) + l1_loss(v_p, v_t) + l1_loss(i_p, i_t)


# ----------------------------------------------------------------------------- diffusion


def _edge_pad(x: jax.Array) -> jax.Array:
    """Pads H and W of an NHWC array by one pixel, repeating the border (replicate padding)."""
    return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")


def sobel_gradients(img: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-channel Sobel gradients with replicate padding; output has the input's size.

    `gx` correlates each channel with [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] (derivative along W,
    positive where intensity increases to the right), `gy` with its transpose (derivative along
    H, positive downwards). Kernels are not normalised (a unit step gives |g| = 4), matching
    `scipy.ndimage.sobel`.

    Args:
      img: shape (B, H, W, C).

    Returns:
      (gx, gy), each of shape (B, H, W, C).
    """
    p = _edge_pad(img)
    dx = p[:, :, 2:] - p[:, :, :-2]  # (B, H + 2, W, C)
    dy = p[:, 2:] - p[:, :-2]  # (B, H, W + 2, C)
    gx = dx[:, :-2] + 2.0 * dx[:, 1:-1] + dx[:, 2:]
    gy = dy[:, :, :-2] + 2.0 * dy[:, :, 1:-1] + dy[:, :, 2:]
    return gx, gy


def _box3x3(x: jax.Array) -> jax.Array:
    """Mean over each 3x3 neighbourhood with replicate padding, per channel; same size output."""
    p = _edge_pad(x)
    rows = p[:, :-2] + p[:, 1:-1] + p[:, 2:]
    return (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) / 9.0


def diffusion_conductance(gx: jax.Array, gy: jax.Array, scale: jax.Array | float) -> jax.Array:
    """Perona-Malik conductance `c = exp(-(|g| / s)^2)`, `|g| = sqrt(gx^2 + gy^2 + 1e-8)`.

    Computed as `exp(-(gx^2 + gy^2 + 1e-8) / s^2)`, the same value without a square root. It
    decreases monotonically from ~1 on flat regions to 0 across strong edges.

    Args:
      gx, gy: gradients of the same shape.
      scale: the edge scale `s` (> 0), a learnable scalar owned by the caller (METHODS: init
        0.1, kept in [0.01, 1] by the caller).

    Returns:
      c, the shape of `gx`.
    """
    return jnp.exp(-(jnp.square(gx) + jnp.square(gy) + 1e-8) / jnp.square(scale))


def anisotropic_diffusion(img: jax.Array, scale: jax.Array | float) -> jax.Array:
    """Learnable anisotropic diffusion response `A(I) = box3x3(c gx + c gy)`, per channel.

    `gx, gy` are `sobel_gradients(img)`, `c = diffusion_conductance(gx, gy, scale)`, and box3x3
    is the 3x3 mean filter with replicate padding.

    Args:
      img: shape (B, H, W, C).
      scale: the diffusion edge scale `s` (scalar).

    Returns:
      A(I), shape (B, H, W, C). It is 0 on a constant image.
    """
    gx, gy = sobel_gradients(img)
    c = diffusion_conductance(gx, gy, scale)
    return _box3x3(c * gx + c * gy)


def diffusion_texture_loss(
    image: jax.Array, reflectance: jax.Array, scale: jax.Array | float
) -> jax.Array:
    """Texture term `mean|A(I) - A(R)|` between an image and its reflectance.

    Args:
      image: I, shape (B, H, W, C).
      reflectance: R, shape (B, H, W, C).
      scale: the diffusion edge scale `s`, shared by both responses.

    Returns:
      A scalar, mean over (B, H, W, C).
    """
    return l1_loss(anisotropic_diffusion(image, scale), anisotropic_diffusion(reflectance, scale))


# ----------------------------------------------------------------------------- Retinex


def retinex_reconstruction_loss(
    reflectance: jax.Array, illumination: jax.Array, image: jax.Array
) -> jax.Array:
    """Decomposition reconstruction `mean|R * L - I|`.

    Args:
      reflectance: R, shape (B, H, W, 3).
      illumination: L, shape (B, H, W, 1), broadcast over the 3 channels.
      image: I, shape (B, H, W, 3).

    Returns:
      A scalar, mean over (B, H, W, 3).
    """
    return l1_loss(reflectance * illumination, image)


def reflectance_consistency_loss(reflectance_lq: jax.Array, reflectance_gt: jax.Array) -> jax.Array:
    """Reflectance consistency `mean|R_lq - R_gt|`; shapes (B, H, W, 3); mean over all elements."""
    return l1_loss(reflectance_lq, reflectance_gt)


def illumination_smoothness_loss(illumination: jax.Array) -> jax.Array:
    """Edge-aware illumination smoothness `mean((w dL/dx)^2 + (w dL/dy)^2)`, `w = exp(-|grad L|)`.

    `dL/dx`, `dL/dy` are forward differences along W and H with replicate padding (so the
    difference is 0 past the last column/row and both live on the (H, W) grid), and
    `|grad L| = sqrt(dL/dx^2 + dL/dy^2)` per pixel.

    `w` is wrapped in `stop_gradient`: it is a per-pixel weight that says where the illumination
    may have edges, not something to optimise. Differentiating through it would add the term
    `w^2 g^2 = exp(-2|g|) g^2`, which falls for |g| > 1, so the optimiser would be paid for
    sharpening strong illumination edges, the opposite of smoothing.

    Args:
      illumination: L, shape (B, H, W, 1) (any channel count works, per channel).

    Returns:
      A scalar, mean over (B, H, W, C).
    """
    p = jnp.pad(illumination, ((0, 0), (0, 1), (0, 1), (0, 0)), mode="edge")
    dx = p[:, :-1, 1:] - p[:, :-1, :-1]
    dy = p[:, 1:, :-1] - p[:, :-1, :-1]
    dx_const, dy_const = jax.lax.stop_gradient(dx), jax.lax.stop_gradient(dy)
    w = jnp.exp(-jnp.sqrt(jnp.square(dx_const) + jnp.square(dy_const)))
    return jnp.mean(jnp.square(w * dx) + jnp.square(w * dy))


def decomposition_loss(
    decomp_lq: tuple[jax.Array, jax.Array],
    decomp_gt: tuple[jax.Array, jax.Array],
    lq: jax.Array,
    gt: jax.Array,
    smoothness_weight: float,
) -> jax.Array:
    """The Retinex decomposition terms (METHODS 1.5) on a degraded/clean pair:

      |R_lq L_lq - LQ| + |R_gt L_gt - GT| + |R_lq - R_gt|
      + smoothness_weight * (smooth(L_lq) + smooth(L_gt))
    with `decomp_* = (R (B, H, W, 3), L (B, H, W, 1))`. Returns a scalar.
    """
    (r_lq, l_lq), (r_gt, l_gt) = decomp_lq, decomp_gt
    return (
        retinex_reconstruction_loss(r_lq, l_lq, lq)
        + retinex_reconstruction_loss(r_gt, l_gt, gt)
        + reflectance_consistency_loss(r_lq, r_gt)
        + smoothness_weight
        * (illumination_smoothness_loss(l_lq) + illumination_smoothness_loss(l_gt))
    )


def clip_straight_through(image: jax.Array) -> jax.Array:
    """Clips to [0, 1] in the forward pass and passes gradients through unchanged.

    For the HVI transform, which assumes RGB in [0, 1] (saturation and sin(pi I / 2) misbehave
    outside).
    """
    return image + jax.lax.stop_gradient(jnp.clip(image, 0.0, 1.0) - image)


def retinex_head_loss(
    reflectance_hat: jax.Array,
    illumination_hat: jax.Array,
    reflectance_target: jax.Array,
    illumination_target: jax.Array,
    image: jax.Array,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Auxiliary Retinex-head loss `mean|[R^, L^] - [R_t, L_t]| + mean|R^ L^ - image|`.

    Args:
      reflectance_hat, reflectance_target: R^ and R_t, shape (B, H, W, 3).
      illumination_hat, illumination_target: L^ and L_t, shape (B, H, W, 1).
      image: the image the head's product should reproduce (LQ in METHODS 1.6), (B, H, W, 3).

    Returns:
      (total, components): total is the scalar sum; components maps "retinex_head_l1" (mean
      over (B, H, W, 4) of the concatenated R/L channels) and "retinex_head_recon" (mean over
      (B, H, W, 3)) to their scalar values.
    """
    pred = jnp.concatenate([reflectance_hat, illumination_hat], axis=-1)
    target = jnp.concatenate([reflectance_target, illumination_target], axis=-1)
    head_l1 = l1_loss(pred, target)
    recon = retinex_reconstruction_loss(reflectance_hat, illumination_hat, image)
    return head_l1 + recon, {"retinex_head_l1": head_l1, "retinex_head_recon": recon}


# ----------------------------------------------------------------------------- FLEX


def resolution_weight(
    height: int, width: int, base_resolution: int = 64, min_weight: float = 0.1
) -> float:
    """FLEX resolution weight `r = max((base^2 / (H W))^0.25, min_weight)` (a Python float).

    r = 1 at base x base, larger for coarser maps (sqrt(2) at 32x32 for base 64), floored at
    `min_weight` for very large maps.
    """
    return max((base_resolution**2 / (height * width)) ** 0.25, min_weight)


_FLOAT32_INF_BITS = 0x7F800000  # the int32 bit pattern of float32 +inf


def _kth_smallest_bits(bits: jax.Array, k: int, axis: int) -> jax.Array:
    """The bit pattern of the k-th smallest (0-based) along `axis` of non-negative float32 values
    given as their int32 bit patterns, which order as the values do: 31 bisection steps over
    [0, +inf], each counting the values at or below the midpoint."""
    shape = list(bits.shape)
    shape[axis] = 1

    def halve(_, bounds: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        low, high = bounds  # the answer lies in [low, high]
        middle = low + (high - low) // 2
        at_most = jnp.sum((bits <= middle).astype(jnp.int32), axis=axis, keepdims=True)
        enough = at_most >= k + 1
        return jnp.where(enough, low, middle + 1), jnp.where(enough, middle, high)

    start = (jnp.zeros(shape, jnp.int32), jnp.full(shape, _FLOAT32_INF_BITS, jnp.int32))
    return jax.lax.fori_loop(0, 31, halve, start)[0]


def percentile_of_nonnegative(x: jax.Array, percentile: float, axis: int) -> jax.Array:
    """`jnp.percentile(x, percentile, axis, keepdims=True)` (linear interpolation) for
    non-negative finite float32 `x`, without a sort. The same order statistics; the float32
    interpolation may round differently (as `jnp.percentile` itself does, jitted or not).

    With n values along `axis`, `pos = percentile / 100 * (n - 1)`, `w = pos - floor(pos)`:
    `v_floor(pos) * (1 - w) + v_ceil(pos) * w`, v_k the k-th smallest. `v_floor` is found by
    bisection on the bit patterns (`_kth_smallest_bits`), `v_ceil` as `v_floor` again if enough
    values equal it, else the smallest value above it. XLA:CPU sorts along an axis about 25x
    slower than these 32 counting passes, and the sort was a third of the RestoRect student's
    train step (tools/results/profile_student_denoise*_cpu.md)."""
    x = x.astype(jnp.float32)
    n = x.shape[axis]
    fraction = np.float32(np.float32(percentile) / np.float32(100.0))
    position = np.float32(fraction * np.float32(n - 1))
    k_floor, k_ceil = int(np.floor(position)), int(np.ceil(position))
    weight = np.float32(position - np.float32(k_floor))
    bits = jax.lax.bitcast_convert_type(x, jnp.int32)
    floor_bits = _kth_smallest_bits(bits, k_floor, axis)
    at_floor = jax.lax.bitcast_convert_type(floor_bits, jnp.float32)
    if k_ceil == k_floor:
        return at_floor
    at_most = jnp.sum((bits <= floor_bits).astype(jnp.int32), axis=axis, keepdims=True)
    above = jnp.min(jnp.where(bits > floor_bits, x, jnp.inf), axis=axis, keepdims=True)
    at_ceil = jnp.where(at_most >= k_ceil + 1, at_floor, above)
    return at_floor * (1 - weight) + at_ceil * weight


def _flex_term(
    teacher: jax.Array, student: jax.Array, percentile: float, eps: float, stats_gradient: bool
) -> jax.Array:
    """Masked cross-normalised squared error of one pair laid out as (B, N, C), N = positions.

    Returns `sum(M (T~ - S~)^2) / (sum(M) + 1e-8)` over all of (B, N, C), with statistics and
    the percentile taken over N per (sample, channel).
    """
    mu = jnp.mean(student, axis=1, keepdims=True)
    sigma = jnp.sqrt(jnp.var(student, axis=1, keepdims=True) + eps)
    if not stats_gradient:
        mu, sigma = jax.lax.stop_gradient(mu), jax.lax.stop_gradient(sigma)
    t_norm = (teacher - mu) / sigma
    s_norm = (student - mu) / sigma
    abs_s = jax.lax.stop_gradient(jnp.abs(s_norm))
    threshold = percentile_of_nonnegative(abs_s, percentile, axis=1)
    mask = (abs_s <= threshold).astype(student.dtype)
    return jnp.sum(mask * jnp.square(t_norm - s_norm)) / (jnp.sum(mask) + 1e-8)


def flex_loss(
    teacher_feats: Sequence[jax.Array],
    student_feats: Sequence[jax.Array],
    layer_weights: Sequence[float],
    percentile: float = 95.0,
    base_resolution: int = 64,
    min_resolution_weight: float = 0.1,
    eps: float = 1e-6,
    stats_gradient: bool = False,
) -> jax.Array:
    """FLEX feature-distillation loss (METHODS 1.4): `mean_i L_i` over matched pairs.

    For a pair of feature maps T_i, S_i of shape (B, H, W, C) (the student already projected to
    the teacher's width), with the student's statistics per (sample, channel) over (H, W),
    `mu_S` and `sigma_S = sqrt(var_S + eps)`:
      `T~ = (T - mu_S) / sigma_S`, `S~ = (S - mu_S) / sigma_S`;
      `M = [|S~| <= percentile_p(|S~|)]`, percentile per (sample, channel) over (H, W) (linear
      interpolation), `M` carries no gradient;
      `r = resolution_weight(H, W, base_resolution, min_resolution_weight)`;
      `L_i = w_i * r * sum(M (T~ - S~)^2) / (sum(M) + 1e-8)`, sums over all of (B, H, W, C).

    Prior vectors of shape (B, D) have no spatial extent. Rule: the D features play the role of
    the positions of a single channel, i.e. the vector is treated as a (B, D, 1) map: statistics
    and the percentile mask are per sample over D, and r = 1 (no resolution to weight).

    The teacher is frozen: its features pass through `stop_gradient`, so no gradient reaches
    the teacher even if the caller differentiates with respect to it. The mask is a constant.
    By default (`stats_gradient=False`) so are `mu_S` and `sigma_S`: the student learns through
    `S` only. With gradients through `sigma_S` the loss has a degenerate minimum, measured on a
    1500-step CPU distillation run: the student grew a few spikes per channel (max |S~| about 10)
    that inflate `sigma_S` 4-54x over the teacher's spread while the mask drops them, so every
    kept `T~ - S~` shrinks and FLEX fell to 3e-4 without the features matching.

    Args:
      teacher_feats: sequence of teacher features, each (B, H, W, C) or (B, D).
      student_feats: sequence of student features, same shapes as the teacher's.
      layer_weights: w_i, one per pair (METHODS: [2.0, 1.41, 1.0, ...]).
      percentile: mask percentile in [0, 100].
      base_resolution: the side at which r = 1.
      min_resolution_weight: floor of r.
      eps: added to the student variance before the square root.
      stats_gradient: differentiate through `mu_S` and `sigma_S` as well (see above).

    Returns:
      A scalar, the unweighted mean over pairs of L_i (the caller multiplies by lambda).
    """
    if not len(teacher_feats) == len(student_feats) == len(layer_weights):
        raise ValueError(
            f"flex_loss needs one layer weight per feature pair: got {len(teacher_feats)} teacher, "
            f"{len(student_feats)} student features and {len(layer_weights)} layer_weights"
        )
    if not teacher_feats:
        raise ValueError("flex_loss needs at least one feature pair")
    terms = []
    for i, (t, s, w) in enumerate(zip(teacher_feats, student_feats, layer_weights)):
        if t.shape != s.shape:
            raise ValueError(f"flex_loss pair {i}: teacher {t.shape} != student {s.shape}")
        t = jax.lax.stop_gradient(t)
        if s.ndim == 4:
            b, h, wd, c = s.shape
            r = resolution_weight(h, wd, base_resolution, min_resolution_weight)
            t, s = t.reshape(b, h * wd, c), s.reshape(b, h * wd, c)
        elif s.ndim == 2:
            r = 1.0
            t, s = t[..., None], s[..., None]
        else:
            raise ValueError(f"flex_loss pair {i}: expected (B, H, W, C) or (B, D), got {s.shape}")
        terms.append(w * r * _flex_term(t, s, percentile, eps, stats_gradient))
    return jnp.mean(jnp.stack(terms))
