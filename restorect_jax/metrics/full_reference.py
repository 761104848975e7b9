"""Full-reference metrics on images in [0, 1], as restoration papers report them (BasicSR / MATLAB).

Every metric takes `prediction` and `target` of the same shape `(..., H, W, C)` with `C` in
{1, 3}, float values in [0, 1] (data range 1: a PSNR or SSIM on the [0, 255] scale with peak 255
is the same number), and returns one value per image, i.e. an array of shape `(...)`.

Shared keyword arguments follow BasicSR's `calculate_psnr` / `calculate_ssim`:

- `crop_border`: drop that many pixels from each of the four edges before scoring (super-
  resolution papers crop the scale factor).
- `y_channel`: score only the ITU-R BT.601 luma of MATLAB's `rgb2ycbcr`, on [0, 1] as `Y / 255`,
  i.e. values in [16/255, 235/255] (see `rgb_to_y`). A grey (C = 1) image is its own luma.

Paper numbers score 8-bit images: pass model outputs through `quantize` first (clip to [0, 1] and
round to the 256 levels a saved PNG would have); the metrics themselves never quantize.
"""

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

# SSIM constants of Wang et al. 2004 (and MATLAB `ssim`, BasicSR): 11x11 Gaussian window with
# sigma 1.5, stabilisers C1 = (K1 L)^2, C2 = (K2 L)^2 with dynamic range L = 1.
_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03

# MS-SSIM scale weights of Wang, Simoncelli & Bovik 2003, finest scale first.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

# BT.601 luma row of MATLAB's rgb2ycbcr for R, G, B in [0, 1]; Y = 16 + row . (R, G, B) lies in
# [16, 235] on the [0, 255] scale.
_BT601_Y_ROW = (65.481, 128.553, 24.966)
_BT601_Y_OFFSET = 16.0

# Linear-sRGB -> CIE XYZ matrix (sRGB primaries, D65 white) and the D65 / 2-degree reference
# white, with the same digits as scikit-image's rgb2lab so the two agree to float precision.
_XYZ_FROM_LINEAR_SRGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])


def quantize(image: jax.Array) -> jax.Array:
    """Clips to [0, 1] and rounds to multiples of 1/255: what a saved 8-bit image holds.

    `round(clip(x, 0, 1) * 255) / 255`, same shape as the input, values in {0, 1/255, ..., 1}.
    """
    return jnp.round(jnp.clip(image, 0.0, 1.0) * 255.0) / 255.0


# ----------------------------------------------------------------------------- preprocessing


def rgb_to_y(image: jax.Array) -> jax.Array:
    """ITU-R BT.601 luma as MATLAB's `rgb2ycbcr` (and BasicSR's `to_y_channel`), [0, 255] scale.

    For `image` of shape `(..., H, W, 3)` with R, G, B in [0, 1]:
    `Y = 16 + 65.481 R + 128.553 G + 24.966 B`, so black maps to 16 and white to 235. A grey
    image `(..., H, W, 1)` is returned as `255 * image` (its own luma). The output has shape
    `(..., H, W, 1)`.
    """
    channels = image.shape[-1]
    if channels == 1:
        return image * 255.0
    if channels != 3:
        raise ValueError(f"rgb_to_y expects 1 or 3 channels, got shape {image.shape}")
    row = jnp.asarray(_BT601_Y_ROW, dtype=image.dtype)
    return _BT601_Y_OFFSET + jnp.sum(image * row, axis=-1, keepdims=True)


def _prepare(
    prediction: jax.Array,
    target: jax.Array,
    crop_border: int,
    y_channel: bool,
    name: str,
) -> tuple[jax.Array, jax.Array]:
    """Checks shapes, crops `crop_border` pixels per edge and optionally keeps luma `Y / 255`."""
    prediction = jnp.asarray(prediction)
    target = jnp.asarray(target)
    if prediction.shape != target.shape:
        raise ValueError(
            f"{name}: prediction and target shapes differ: {prediction.shape} vs {target.shape}"
        )
    if prediction.ndim < 3 or prediction.shape[-1] not in (1, 3):
        raise ValueError(f"{name}: expected (..., H, W, C) with C in {{1, 3}}, got {target.shape}")
    if not jnp.issubdtype(prediction.dtype, jnp.floating):
        prediction = prediction.astype(jnp.float32)
    if not jnp.issubdtype(target.dtype, jnp.floating):
        target = target.astype(jnp.float32)
    crop_border = int(crop_border)
    if crop_border < 0:
        raise ValueError(f"{name}: crop_border must be >= 0, got {crop_border}")
    if crop_border:
        height, width = target.shape[-3:-1]
        if 2 * crop_border >= min(height, width):
            raise ValueError(
                f"{name}: crop_border={crop_border} leaves nothing of a {height}x{width} image"
            )
        window = (
            ...,
            slice(crop_border, -crop_border),
            slice(crop_border, -crop_border),
            slice(None),
        )
        prediction, target = prediction[window], target[window]
    if y_channel:
        prediction = rgb_to_y(prediction) / 255.0
        target = rgb_to_y(target) / 255.0
    return prediction, target


# ----------------------------------------------------------------------------- PSNR


@functools.partial(jax.jit, static_argnames=("crop_border", "y_channel"))
def psnr(
    prediction: jax.Array,
    target: jax.Array,
    *,
    crop_border: int = 0,
    y_channel: bool = False,
) -> jax.Array:
    """Peak signal-to-noise ratio in dB per image: `PSNR = 10 log10(1 / MSE)`.

    `MSE` is the mean of `(prediction - target)^2` over (H, W, C) of `(..., H, W, C)` images with
    data range 1 (peak 1 on [0, 1]; identical to `10 log10(255^2 / MSE_255)` on the [0, 255]
    scale). With `crop_border` the edges are cropped first; with `y_channel` only the BT.601 luma
    `Y / 255` is compared (BasicSR `test_y_channel`). Range [0, +inf) dB for [0, 1] images,
    higher is better; identical images give +inf. Returns shape `(...)`.
    """
    prediction, target = _prepare(prediction, target, crop_border, y_channel, "psnr")
    mse = jnp.mean((prediction - target) ** 2, axis=(-3, -2, -1))
    return -10.0 * jnp.log10(mse)


# ----------------------------------------------------------------------------- SSIM


def _gaussian_taps(size: int = _SSIM_WINDOW, sigma: float = _SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian `g_k ∝ exp(-k^2 / (2 sigma^2))`, k = -(size-1)/2 .. (size-1)/2.

    The 2-D window is the outer product `g g^T`, which equals MATLAB's normalised
    `fspecial('gaussian', size, sigma)`.
    """
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    taps = np.exp(-(offsets**2) / (2.0 * sigma**2))
    return taps / taps.sum()


def _filter_valid(image: jax.Array, taps: np.ndarray) -> jax.Array:
    """Separable 'valid' correlation of `(..., H, W, C)` with `taps` along H then W, per channel.

    Output is `(..., H - n + 1, W - n + 1, C)` for `n` taps: only positions whose whole window
    lies inside the image (MATLAB `filter2(..., 'valid')`), so no border convention enters.
    Written as a weighted sum of shifted slices: exact in float32, and much faster on CPU than
    XLA's depthwise convolution.
    """
    n = len(taps)
    height, width = image.shape[-3:-1]
    rows = sum(float(t) * image[..., k : k + height - n + 1, :, :] for k, t in enumerate(taps))
    return sum(float(t) * rows[..., :, k : k + width - n + 1, :] for k, t in enumerate(taps))


@jax.jit
def _ssim_maps(x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """SSIM and contrast-structure maps of `(..., H, W, C)` images on [0, 1], per channel.

    With Gaussian-weighted local means `mu`, variances `s_xx`, `s_yy` and covariance `s_xy`
    (population form, 'valid' positions only):
    `cs = (2 s_xy + C2) / (s_xx + s_yy + C2)`, `l = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)`,
    `ssim = l * cs`, with `C1 = 0.01^2`, `C2 = 0.03^2`. Both maps have shape
    `(..., H - 10, W - 10, C)`. Second moments are taken about each image's channel mean, which
    leaves them mathematically unchanged but avoids float32 cancellation in `E[x^2] - mu^2`.
    """
    c1 = (_SSIM_K1 * 1.0) ** 2
    c2 = (_SSIM_K2 * 1.0) ** 2
    x_mean = jnp.mean(x, axis=(-3, -2), keepdims=True)
    y_mean = jnp.mean(y, axis=(-3, -2), keepdims=True)
    xc = x - x_mean
    yc = y - y_mean
    moments = jnp.concatenate([xc, yc, xc * xc, yc * yc, xc * yc], axis=-1)
    mu_xc, mu_yc, e_xx, e_yy, e_xy = jnp.split(_filter_valid(moments, _gaussian_taps()), 5, -1)
    s_xx = e_xx - mu_xc * mu_xc
    s_yy = e_yy - mu_yc * mu_yc
    s_xy = e_xy - mu_xc * mu_yc
    mu_x = mu_xc + x_mean
    mu_y = mu_yc + y_mean
    cs = (2.0 * s_xy + c2) / (s_xx + s_yy + c2)
    luminance = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return luminance * cs, cs


def _check_window_fits(image: jax.Array, name: str) -> None:
    height, width = image.shape[-3:-1]
    if min(height, width) < _SSIM_WINDOW:
        raise ValueError(
            f"{name} needs images of at least {_SSIM_WINDOW}x{_SSIM_WINDOW} pixels (after "
            f"crop_border) for its {_SSIM_WINDOW}x{_SSIM_WINDOW} window; got {height}x{width}"
        )


@functools.partial(jax.jit, static_argnames=("crop_border", "y_channel"))
def ssim(
    prediction: jax.Array,
    target: jax.Array,
    *,
    crop_border: int = 0,
    y_channel: bool = False,
) -> jax.Array:
    """Structural similarity (Wang et al. 2004) per image, as MATLAB `ssim_index` / BasicSR.

    `SSIM = mean over pixels and channels of
    ((2 mu_x mu_y + C1)(2 s_xy + C2)) / ((mu_x^2 + mu_y^2 + C1)(s_xx + s_yy + C2))`, with
    Gaussian-weighted local statistics (11x11 window, sigma 1.5), `C1 = (0.01 L)^2`,
    `C2 = (0.03 L)^2` and data range `L = 1` ([0, 1] images; identical to L = 255 on the
    [0, 255] scale). Filtering is 'valid': only the `(H - 10) x (W - 10)` positions whose window
    lies inside the image are averaged (what skimage gets by cropping 5 pixels from each edge of
    its SSIM map). Each channel is scored separately and the channel scores are averaged; with
    `y_channel` only the BT.601 luma `Y / 255` is scored. `crop_border` crops before filtering.
    Range [-1, 1], higher is better; 1 for identical images. Returns shape `(...)`.
    """
    prediction, target = _prepare(prediction, target, crop_border, y_channel, "ssim")
    _check_window_fits(target, "ssim")
    ssim_map, _ = _ssim_maps(prediction, target)
    return jnp.mean(ssim_map, axis=(-3, -2, -1))


# ----------------------------------------------------------------------------- MS-SSIM


def _average_pool_2x2(image: jax.Array) -> jax.Array:
    """2x2 mean pooling with stride 2 of `(..., H, W, C)`; an odd last row / column is dropped."""
    height, width = image.shape[-3] // 2, image.shape[-2] // 2
    image = image[..., : 2 * height, : 2 * width, :]
    blocks = image.reshape(*image.shape[:-3], height, 2, width, 2, image.shape[-1])
    return jnp.mean(blocks, axis=(-4, -2))


def ms_ssim_min_size(weights: Sequence[float] = MS_SSIM_WEIGHTS) -> int:
    """Smallest image side `ms_ssim` accepts: `11 * 2^(scales - 1)` (176 for five scales)."""
    return _SSIM_WINDOW * 2 ** (len(weights) - 1)


@functools.partial(jax.jit, static_argnames=("crop_border", "y_channel"))
def ms_ssim(
    prediction: jax.Array,
    target: jax.Array,
    *,
    crop_border: int = 0,
    y_channel: bool = False,
) -> jax.Array:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003) per image.

    `MS-SSIM = l_5^{w_5} * prod_{j=1..5} cs_j^{w_j}`, computed as
    `ssim_5^{w_5} * prod_{j=1..4} cs_j^{w_j}`, where scale 1 is the input, scale j+1 is scale j
    average-pooled 2x2 with stride 2, `cs_j` is the mean contrast-structure map and `ssim_5` the
    mean full SSIM map (luminance included) at the coarsest scale, all with the `ssim` window and
    constants ([0, 1] data, L = 1, 'valid' filtering), and weights
    `w = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)`. Each channel gets its own MS-SSIM and the
    channel values are averaged (as pytorch-msssim / tf.image.ssim_multiscale). Negative `cs_j` /
    `ssim_5` means (possible only for anti-correlated images) are clamped to 0 before the
    fractional powers, as in those libraries, so the result is real.

    Image size: the 11x11 window must fit at the fifth scale, i.e. `min(H, W) >= 176` after
    `crop_border` (see `ms_ssim_min_size`); smaller images raise `ValueError`. Odd sides lose
    their last row / column at each pooling (floor), where MATLAB's `msssim.m` pads
    symmetrically; the two agree exactly when `H` and `W` are multiples of 16.
    Range [0, 1], higher is better; 1 for identical images. Returns shape `(...)`.
    """
    prediction, target = _prepare(prediction, target, crop_border, y_channel, "ms_ssim")
    height, width = target.shape[-3:-1]
    min_side = ms_ssim_min_size()
    if min(height, width) < min_side:
        raise ValueError(
            f"ms_ssim needs images of at least {min_side}x{min_side} pixels (after crop_border) "
            f"so that the {_SSIM_WINDOW}x{_SSIM_WINDOW} window fits at the "
            f"{len(MS_SSIM_WEIGHTS)}th scale; got {height}x{width}"
        )
    x, y = prediction, target
    factors = []
    for scale in range(len(MS_SSIM_WEIGHTS)):
        ssim_map, cs_map = _ssim_maps(x, y)
        if scale < len(MS_SSIM_WEIGHTS) - 1:
            factors.append(jnp.mean(cs_map, axis=(-3, -2)))
            x, y = _average_pool_2x2(x), _average_pool_2x2(y)
        else:
            factors.append(jnp.mean(ssim_map, axis=(-3, -2)))
    factors = jnp.maximum(jnp.stack(factors, axis=0), 0.0)  # (scales, ..., C)
    weights = jnp.asarray(MS_SSIM_WEIGHTS, dtype=factors.dtype)
    weights = weights.reshape((-1,) + (1,) * (factors.ndim - 1))
    per_channel = jnp.prod(factors**weights, axis=0)
    return jnp.mean(per_channel, axis=-1)


# ----------------------------------------------------------------------------- CIEDE2000


@jax.jit
def rgb_to_lab(image: jax.Array) -> jax.Array:
    """sRGB in [0, 1] to CIELAB (D65 white, 2-degree observer), `(..., 3) -> (..., 3)`.

    Linearise `c_lin = ((c + 0.055) / 1.055)^2.4` for `c > 0.04045`, else `c / 12.92`; then
    `XYZ = M c_lin` with the sRGB/D65 matrix and divide by the white `(0.95047, 1, 1.08883)`;
    `f(t) = t^(1/3)` for `t > (6/29)^3`, else `t / (3 (6/29)^2) + 4/29`;
    `L* = 116 f(Y) - 16`, `a* = 500 (f(X) - f(Y))`, `b* = 200 (f(Y) - f(Z))`.
    `L*` lies in [0, 100]; `a*`, `b*` in about [-87, 99] and [-108, 95] for in-gamut colours.
    (Same constants as scikit-image's `rgb2lab`.)
    """
    image = jnp.asarray(image)
    if not jnp.issubdtype(image.dtype, jnp.floating):
        image = image.astype(jnp.float32)
    linear = jnp.where(
        image > 0.04045,
        ((jnp.maximum(image, 0.04045) + 0.055) / 1.055) ** 2.4,
        image / 12.92,
    )
    matrix = jnp.asarray(_XYZ_FROM_LINEAR_SRGB / _D65_WHITE[:, None], dtype=image.dtype)
    xyz = jnp.einsum("...c,dc->...d", linear, matrix, precision=jax.lax.Precision.HIGHEST)
    epsilon = (6.0 / 29.0) ** 3
    f = jnp.where(
        xyz > epsilon,
        jnp.cbrt(jnp.maximum(xyz, epsilon)),
        xyz / (3.0 * (6.0 / 29.0) ** 2) + 4.0 / 29.0,
    )
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return jnp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


@jax.jit
def delta_e_ciede2000(lab_a: jax.Array, lab_b: jax.Array) -> jax.Array:
    """Per-pixel CIEDE2000 colour difference (Sharma, Wu & Dalal 2005) between CIELAB arrays.

    With `a' = (1 + G) a*`, `G = 0.5 (1 - sqrt(Cbar^7 / (Cbar^7 + 25^7)))` (`Cbar` the mean
    chroma of the pair), primed chroma `C'`, hue `h'` in [0, 2 pi) and means `L'bar`, `C'bar`,
    `h'bar` (hue mean and difference taken the short way round; `dh' = 0` and `h'bar = h'_1 +
    h'_2` when either chroma is 0):
    `dE00 = sqrt((dL'/S_L)^2 + (dC'/S_C)^2 + (dH'/S_H)^2 + R_T (dC'/S_C)(dH'/S_H))` with
    `dH' = 2 sqrt(C'_1 C'_2) sin(dh'/2)`, `S_L = 1 + 0.015 (L'bar - 50)^2 / sqrt(20 + (L'bar -
    50)^2)`, `S_C = 1 + 0.045 C'bar`, `S_H = 1 + 0.015 C'bar T`,
    `T = 1 - 0.17 cos(h'bar - 30) + 0.24 cos(2 h'bar) + 0.32 cos(3 h'bar + 6) - 0.20 cos(4 h'bar
    - 63)` (degrees), `R_T = -2 sqrt(C'bar^7 / (C'bar^7 + 25^7)) sin(60 exp(-((h'bar - 275) /
    25)^2))` and `k_L = k_C = k_H = 1`. Inputs `(..., 3)`, output `(...)`. Range [0, ~100+],
    lower is better; 0 for identical colours, about 1 is a just-noticeable difference.
    """
    lab_a = jnp.asarray(lab_a)
    lab_b = jnp.asarray(lab_b)
    l1, a1, b1 = lab_a[..., 0], lab_a[..., 1], lab_a[..., 2]
    l2, a2, b2 = lab_b[..., 0], lab_b[..., 1], lab_b[..., 2]
    two_pi = 2.0 * math.pi

    c_bar = 0.5 * (jnp.hypot(a1, b1) + jnp.hypot(a2, b2))
    c_bar7 = c_bar**7
    g = 0.5 * (1.0 - jnp.sqrt(c_bar7 / (c_bar7 + 25.0**7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = jnp.hypot(a1p, b1), jnp.hypot(a2p, b2)
    h1p = jnp.mod(jnp.arctan2(b1, a1p), two_pi)
    h2p = jnp.mod(jnp.arctan2(b2, a2p), two_pi)

    chroma_product = c1p * c2p
    achromatic = chroma_product == 0.0
    h_diff = h2p - h1p
    dhp = jnp.where(
        h_diff > math.pi, h_diff - two_pi, jnp.where(h_diff < -math.pi, h_diff + two_pi, h_diff)
    )
    dhp = jnp.where(achromatic, 0.0, dhp)
    h_sum = h1p + h2p
    h_bar = jnp.where(
        jnp.abs(h_diff) <= math.pi,
        0.5 * h_sum,
        jnp.where(h_sum < two_pi, 0.5 * (h_sum + two_pi), 0.5 * (h_sum - two_pi)),
    )
    h_bar = jnp.where(achromatic, h_sum, h_bar)

    dlp = l2 - l1
    dcp = c2p - c1p
    dhp_big = 2.0 * jnp.sqrt(chroma_product) * jnp.sin(0.5 * dhp)

    l_bar = 0.5 * (l1 + l2)
    cp_bar = 0.5 * (c1p + c2p)
    t = (
        1.0
        - 0.17 * jnp.cos(h_bar - math.radians(30.0))
        + 0.24 * jnp.cos(2.0 * h_bar)
        + 0.32 * jnp.cos(3.0 * h_bar + math.radians(6.0))
        - 0.20 * jnp.cos(4.0 * h_bar - math.radians(63.0))
    )
    l_dev = (l_bar - 50.0) ** 2
    s_l = 1.0 + 0.015 * l_dev / jnp.sqrt(20.0 + l_dev)
    s_c = 1.0 + 0.045 * cp_bar
    s_h = 1.0 + 0.015 * cp_bar * t
    cp_bar7 = cp_bar**7
    r_c = 2.0 * jnp.sqrt(cp_bar7 / (cp_bar7 + 25.0**7))
    d_theta = math.radians(30.0) * jnp.exp(-(((jnp.degrees(h_bar) - 275.0) / 25.0) ** 2))
    r_t = -jnp.sin(2.0 * d_theta) * r_c

    l_term = dlp / s_l
    c_term = dcp / s_c
    h_term = dhp_big / s_h
    squared = l_term**2 + c_term**2 + h_term**2 + r_t * c_term * h_term
    return jnp.sqrt(jnp.maximum(squared, 0.0))


@functools.partial(jax.jit, static_argnames=("crop_border",))
def ciede2000(
    prediction: jax.Array,
    target: jax.Array,
    *,
    crop_border: int = 0,
) -> jax.Array:
    """Mean CIEDE2000 colour difference per image between sRGB images in [0, 1].

    `mean over pixels of dE00(Lab(prediction), Lab(target))`, with `rgb_to_lab` (D65) and
    `delta_e_ciede2000`. `(..., H, W, 3)` inputs (a grey `C = 1` image is read as R = G = B);
    `crop_border` crops each edge first. Range [0, ~100+] (Lab units), lower is better; 0 for
    identical images. Returns shape `(...)`.
    """
    prediction, target = _prepare(prediction, target, crop_border, False, "ciede2000")
    if target.shape[-1] == 1:
        prediction = jnp.repeat(prediction, 3, axis=-1)
        target = jnp.repeat(target, 3, axis=-1)
    delta = delta_e_ciede2000(rgb_to_lab(prediction), rgb_to_lab(target))
    return jnp.mean(delta, axis=(-2, -1))
