"""Colour-space operators: HSV hue/saturation and the trigonometric HVI map (METHODS 1.5).

All functions are pure and jit-able. Images are RGB float arrays in [0, 1] with the channel axis
last, shape (..., 3) (typically NHWC); outputs drop the channel axis, shape (...).

Gradients are kept finite everywhere, including at grey pixels (max == min, where the hue is
undefined) and at black (max == 0, where the saturation is undefined): the undefined quantity is
set to 0 and computed from a safe denominator inside `jnp.where`, so the branch not taken never
produces inf/NaN that would poison the gradient.
"""

import jax
import jax.numpy as jnp


def rgb_to_hue_saturation(img: jax.Array, eps: float = 1e-8) -> tuple[jax.Array, jax.Array]:
    """HSV hue and saturation of an RGB image.

    With `I_max = max_c`, `I_min = min_c` and `delta = I_max - I_min`, the hue is the standard
    HSV hexcone hue divided by 6 (same convention as Python's `colorsys.rgb_to_hsv`):
    `h = ((G - B) / delta mod 6) / 6` where R is the maximum, `((B - R) / delta + 2) / 6` where G
    is, `((R - G) / delta + 4) / 6` where B is (ties resolved in the order R, G, B); `h = 0` at
    grey pixels (delta == 0). The saturation is `S = delta / (I_max + eps)`, and 0 at black.

    Args:
      img: RGB image, shape (..., 3), values in [0, 1].
      eps: added to `I_max` in the saturation denominator.

    Returns:
      (h, S), each of shape (...): h in [0, 1), S in [0, 1]. At grey pixels h has zero
      gradient; at black pixels S has zero gradient.
    """
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    i_max = jnp.max(img, axis=-1)
    i_min = jnp.min(img, axis=-1)
    delta = i_max - i_min

    is_chromatic = delta > 0
    safe_delta = jnp.where(is_chromatic, delta, 1.0)
    hue6 = jnp.where(
        r == i_max,
        jnp.mod((g - b) / safe_delta, 6.0),
        jnp.where(g == i_max, (b - r) / safe_delta + 2.0, (r - g) / safe_delta + 4.0),
    )
    hue = jnp.where(is_chromatic, hue6 / 6.0, 0.0)
    # `mod` of a tiny negative number can round up to exactly 6 in float32: wrap it to 0.
    hue = jnp.where(hue >= 1.0, hue - 1.0, hue)

    is_lit = i_max > 0
    saturation = jnp.where(is_lit, delta / (jnp.where(is_lit, i_max, 1.0) + eps), 0.0)
    return hue, saturation


def rgb_to_hvi(
    img: jax.Array, k: jax.Array | float, eps: float = 1e-8
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Trigonometric colour polarisation (HVI map) of an RGB image.

    `C_k = sin(pi I_max / 2)^k + eps`, `H^ = C_k S cos(2 pi h)`, `V^ = C_k S sin(2 pi h)`, with
    `I_max = max_c`, hue h and saturation S from `rgb_to_hue_saturation`. The angle is `2 pi h`,
    so the hue circle is closed: hues 0.999 and 0.001 map to nearly the same (H^, V^). The
    collapse factor `C_k` shrinks the colour plane towards the origin in dark regions, where hue
    and saturation are noise.

    `sin(.)^k` is computed as `exp(k log sin(.))` on lit pixels and 0 at black, so the gradient
    with respect to the image and to `k` is finite at black. For `k < 1` the derivative of
    `x^k` grows without bound as `x -> 0+`, so callers should keep `k` at or above 1 or clip it.

    Args:
      img: RGB image, shape (..., 3), values in [0, 1].
      k: the learnable collapse exponent (a scalar), passed in by the caller.
      eps: added to `C_k` (and to the saturation denominator).

    Returns:
      (H^, V^, I_max), each of shape (...) (for NHWC input: (B, H, W)).
    """
    hue, saturation = rgb_to_hue_saturation(img, eps)
    i_max = jnp.max(img, axis=-1)
    base = jnp.sin(0.5 * jnp.pi * i_max)
    is_lit = base > 0
    collapse = jnp.where(is_lit, jnp.exp(k * jnp.log(jnp.where(is_lit, base, 1.0))), 0.0) + eps
    radius = collapse * saturation
    angle = 2.0 * jnp.pi * hue
    return radius * jnp.cos(angle), radius * jnp.sin(angle), i_max
