"""Unit tests of restorect_jax.colour and restorect_jax.losses at hand-computed points."""

import colorsys
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from restorect_jax import colour, losses


def _np(x):
    return np.asarray(x, dtype=np.float64)


# ----------------------------------------------------------------------------- reconstruction


def test_l1_and_mse_hand_values():
    pred = jnp.array([[0.0, 1.0], [1.0, 1.0]])
    assert float(losses.l1_loss(pred, jnp.zeros_like(pred))) == pytest.approx(0.75)
    pred = jnp.array([0.0, 2.0, -1.0, 1.0])
    assert float(losses.mse_loss(pred, jnp.zeros_like(pred))) == pytest.approx(6.0 / 4.0)


# ----------------------------------------------------------------------------- colour


def test_hue_saturation_matches_colorsys():
    rng = np.random.default_rng(0)
    pixels = np.concatenate(
        [rng.uniform(size=(40, 3)), np.eye(3), [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]]]
    ).astype(np.float32)
    hue, sat = colour.rgb_to_hue_saturation(jnp.asarray(pixels))
    for p, h, s in zip(pixels, _np(hue), _np(sat)):
        h_ref, s_ref, _ = colorsys.rgb_to_hsv(*map(float, p))
        assert h == pytest.approx(h_ref, abs=1e-5)
        assert s == pytest.approx(s_ref, abs=1e-5)
        assert 0.0 <= h < 1.0


def test_hvi_hand_values():
    img = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.25, 0.5]])
    h_hat, v_hat, i_max = colour.rgb_to_hvi(img, k=2.0)
    # Red: hue 0, S = 1, C = sin(pi/2)^2 = 1. Green: hue 1/3. Third: hue (0 - 0.25)/0.5 + 4 = 3.5
    # sixths = 7/12, S = 1, C = sin(pi/4)^2 = 0.5.
    np.testing.assert_allclose(_np(i_max), [1.0, 1.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(_np(h_hat), [1.0, -0.5, 0.5 * math.cos(7 * math.pi / 6)], atol=1e-5)
    np.testing.assert_allclose(
        _np(v_hat), [0.0, math.sqrt(3) / 2, 0.5 * math.sin(7 * math.pi / 6)], atol=1e-5
    )


def test_hvi_hue_circle_closed_across_red():
    rgb_a = colorsys.hsv_to_rgb(0.999, 0.8, 0.9)
    rgb_b = colorsys.hsv_to_rgb(0.001, 0.8, 0.9)
    img = jnp.array([rgb_a, rgb_b], dtype=jnp.float32)
    hue, _ = colour.rgb_to_hue_saturation(img)
    assert float(hue[0] - hue[1]) == pytest.approx(0.998, abs=1e-4)
    h_hat, v_hat, _ = colour.rgb_to_hvi(img, k=1.0)
    assert abs(float(h_hat[0] - h_hat[1])) < 0.02
    assert abs(float(v_hat[0] - v_hat[1])) < 0.02


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_hvi_grey_and_black_pixels_zero_and_finite_grad(value):
    img = jnp.full((1, 1, 1, 3), value)
    h_hat, v_hat, _ = colour.rgb_to_hvi(img, k=1.0)
    assert abs(float(h_hat[0, 0, 0])) < 1e-7 and abs(float(v_hat[0, 0, 0])) < 1e-7

    def f(x, k):
        h, v, i = colour.rgb_to_hvi(x, k)
        return jnp.sum(h + 2.0 * v + i)

    g_img, g_k = jax.grad(f, argnums=(0, 1))(img, 0.7)
    assert np.all(np.isfinite(_np(g_img))) and np.isfinite(float(g_k))


def test_hvi_colour_loss_hand_value_and_finite_grads():
    red = jnp.array([[[[1.0, 0.0, 0.0]]]])
    green = jnp.array([[[[0.0, 1.0, 0.0]]]])
    # |1 - (-1/2)| + |0 - sqrt(3)/2| + |1 - 1|
    expected = 1.5 + math.sqrt(3) / 2
    assert float(losses.hvi_colour_loss(red, green, 1.0)) == pytest.approx(expected, abs=1e-5)

    rng = np.random.default_rng(1)
    pred = rng.uniform(size=(2, 4, 4, 3)).astype(np.float32)
    target = rng.uniform(size=(2, 4, 4, 3)).astype(np.float32)
    pred[0, 0, 0] = 0.0  # black
    pred[0, 0, 1] = 0.3  # grey
    pred[1, 2, 2] = [1.0, 1.0, 0.0]  # tied maximum
    target[0, 0, 0] = 0.0
    target[1, 3, 3] = 0.6
    g_pred, g_k = jax.grad(losses.hvi_colour_loss, argnums=(0, 2))(
        jnp.asarray(pred), jnp.asarray(target), jnp.float32(1.3)
    )
    assert np.all(np.isfinite(_np(g_pred))) and np.isfinite(float(g_k))
    assert np.any(_np(g_pred) != 0.0)


# ----------------------------------------------------------------------------- diffusion


def _scipy_diffusion(img: np.ndarray, scale: float) -> np.ndarray:
    """Reference A(I) per 2D slice with scipy (independent code path)."""
    out = np.zeros_like(img)
    for b in range(img.shape[0]):
        for c in range(img.shape[-1]):
            x = img[b, :, :, c]
            gx = ndimage.sobel(x, axis=1, mode="nearest")
            gy = ndimage.sobel(x, axis=0, mode="nearest")
            cond = np.exp(-((np.sqrt(gx**2 + gy**2 + 1e-8) / scale) ** 2))
            out[b, :, :, c] = ndimage.uniform_filter(cond * gx + cond * gy, size=3, mode="nearest")
    return out


def test_sobel_matches_scipy():
    img = np.random.default_rng(2).uniform(size=(2, 5, 6, 2))
    gx, gy = losses.sobel_gradients(jnp.asarray(img, dtype=jnp.float32))
    for b in range(2):
        for c in range(2):
            x = img[b, :, :, c]
            ref_gx = ndimage.sobel(x, axis=1, mode="nearest")
            ref_gy = ndimage.sobel(x, axis=0, mode="nearest")
            np.testing.assert_allclose(_np(gx[b, :, :, c]), ref_gx, atol=1e-5)
            np.testing.assert_allclose(_np(gy[b, :, :, c]), ref_gy, atol=1e-5)


def test_anisotropic_diffusion_constant_image_is_zero():
    out = losses.anisotropic_diffusion(jnp.full((1, 5, 5, 3), 0.4), 0.1)
    np.testing.assert_allclose(_np(out), 0.0, atol=1e-7)


def test_anisotropic_diffusion_vertical_edge_matches_scipy_reference():
    img = np.zeros((1, 6, 7, 2))
    img[:, :, 4:, 0] = 0.05  # a faint edge: conductance well above 0
    img[:, :, 3:, 1] = 0.3  # a strong edge: conductance near 0
    scale = 0.5
    out = losses.anisotropic_diffusion(jnp.asarray(img, dtype=jnp.float32), scale)
    ref = _scipy_diffusion(img, scale)
    assert np.abs(ref).max() > 1e-3  # the reference is not trivially zero
    np.testing.assert_allclose(_np(out), ref, atol=1e-5)


def test_diffusion_conductance_decreases_with_gradient_magnitude():
    g = jnp.linspace(0.0, 0.5, 11)
    c = _np(losses.diffusion_conductance(g, jnp.zeros_like(g), 0.2))
    assert c[0] == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(c) < 0)
    # The same magnitude split across gx and gy gives the same conductance.
    c_diag = _np(losses.diffusion_conductance(g / math.sqrt(2), g / math.sqrt(2), 0.2))
    np.testing.assert_allclose(c_diag, c, rtol=1e-5)


def test_diffusion_texture_loss_hand_values():
    flat = jnp.full((1, 6, 7, 2), 0.2)
    img = np.zeros((1, 6, 7, 2))
    img[:, :, 4:, 0] = 0.05
    img[:, :, 3:, 1] = 0.3
    expected = np.abs(_scipy_diffusion(img, 0.5)).mean()
    loss = losses.diffusion_texture_loss(jnp.asarray(img, dtype=jnp.float32), flat, 0.5)
    assert float(loss) == pytest.approx(expected, rel=1e-4)
    assert float(losses.diffusion_texture_loss(flat, flat, 0.5)) == 0.0


# ----------------------------------------------------------------------------- Retinex


def test_retinex_reconstruction_and_consistency_hand_values():
    r = jnp.full((1, 1, 2, 3), 0.5)
    l = jnp.array([1.0, 0.5]).reshape(1, 1, 2, 1)
    image = jnp.full((1, 1, 2, 3), 0.5)
    # R L = 0.5 at pixel 0 and 0.25 at pixel 1: errors 0 (x3) and 0.25 (x3), mean 0.125.
    assert float(losses.retinex_reconstruction_loss(r, l, image)) == pytest.approx(0.125)
    assert float(losses.reflectance_consistency_loss(r, jnp.zeros_like(r))) == pytest.approx(0.5)


def test_retinex_head_loss_hand_value():
    r_hat, l_hat = jnp.full((1, 1, 1, 3), 0.5), jnp.ones((1, 1, 1, 1))
    r_t, l_t = jnp.full((1, 1, 1, 3), 0.25), jnp.zeros((1, 1, 1, 1))
    total, parts = losses.retinex_head_loss(r_hat, l_hat, r_t, l_t, jnp.zeros((1, 1, 1, 3)))
    assert float(parts["retinex_head_l1"]) == pytest.approx((3 * 0.25 + 1.0) / 4)
    assert float(parts["retinex_head_recon"]) == pytest.approx(0.5)
    assert float(total) == pytest.approx(0.9375)


def test_illumination_smoothness_constant_is_zero():
    assert float(losses.illumination_smoothness_loss(jnp.full((2, 4, 4, 1), 0.7))) == 0.0


def test_illumination_smoothness_hand_value_and_stopped_weight():
    # Columns [0, 1]: dx = 1 at column 0 (0 past the border), dy = 0, so w = e^-1 at column 0.
    l = jnp.array([[0.0, 1.0], [0.0, 1.0]]).reshape(1, 2, 2, 1)
    loss, grad = jax.value_and_grad(losses.illumination_smoothness_loss)(l)
    assert float(loss) == pytest.approx(2 * math.exp(-2) / 4, rel=1e-6)
    # With w constant, d/dL[r, 1] of (1/4) w^2 (L[r, 1] - L[r, 0])^2 is (1/2) e^-2.
    assert float(grad[0, 0, 1, 0]) == pytest.approx(math.exp(-2) / 2, rel=1e-5)


# ----------------------------------------------------------------------------- FLEX


def test_resolution_weight():
    assert losses.resolution_weight(64, 64) == pytest.approx(1.0)
    assert losses.resolution_weight(32, 32) == pytest.approx(math.sqrt(2))
    assert losses.resolution_weight(128, 64) == pytest.approx(0.5**0.25)
    assert losses.resolution_weight(100_000, 100_000) == pytest.approx(0.1)


def test_flex_identical_features_is_zero():
    s = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 4))
    v = jax.random.normal(jax.random.PRNGKey(1), (2, 16))
    assert float(losses.flex_loss([s, v], [s, v], [2.0, 1.41])) == 0.0


def test_flex_constant_offset_hand_value():
    rng = np.random.default_rng(3)
    s = rng.normal(size=(2, 8, 8, 3)) * rng.uniform(0.5, 2.0, size=(2, 1, 1, 3)) + 1.0
    c, w, eps = 0.7, 2.0, 1e-6
    sigma = np.sqrt(s.var(axis=(1, 2), keepdims=True) + eps)
    t = s + c * sigma
    r = math.sqrt(8.0)  # (64^2 / 64)^0.25
    loss = losses.flex_loss(
        [jnp.asarray(t, jnp.float32)], [jnp.asarray(s, jnp.float32)], [w], eps=eps
    )
    assert float(loss) == pytest.approx(w * r * c**2, rel=1e-4)


def test_flex_prior_vectors_rule():
    rng = np.random.default_rng(4)
    s = rng.normal(size=(3, 32))
    c, w = 0.5, 1.41
    t = s + c * np.sqrt(s.var(axis=1, keepdims=True) + 1e-6)
    loss = losses.flex_loss([jnp.asarray(t, jnp.float32)], [jnp.asarray(s, jnp.float32)], [w])
    assert float(loss) == pytest.approx(w * c**2, rel=1e-4)  # r = 1 for vectors


def test_flex_mask_excludes_outlier():
    rng = np.random.default_rng(5)
    s0 = rng.normal(size=(1, 8, 8, 1))
    t = s0 + 0.5
    s = s0.copy()
    s[0, 3, 4, 0] = 1000.0  # one huge outlier in the student
    var = s.var() + 1e-6  # the student's statistics include the outlier
    r = math.sqrt(8.0)
    # Every pixel the mask keeps has T~ - S~ = 0.5 / sigma; the outlier (the largest |S~|, above
    # the 95th percentile of 64 values) is dropped.
    expected = r * 0.25 / var
    unmasked = r * np.mean((t - s) ** 2) / var
    loss = float(
        losses.flex_loss([jnp.asarray(t, jnp.float32)], [jnp.asarray(s, jnp.float32)], [1.0])
    )
    assert loss == pytest.approx(expected, rel=1e-4)
    assert unmasked > 1000 * expected


def test_flex_gradients_student_only():
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(6), 4)
    teacher = [jax.random.normal(k1, (2, 8, 8, 4)), jax.random.normal(k2, (2, 16))]
    student = [jax.random.normal(k3, (2, 8, 8, 4)), jax.random.normal(k4, (2, 16))]
    fn = jax.jit(lambda t, s: losses.flex_loss(t, s, [2.0, 1.41]))
    g_t, g_s = jax.grad(fn, argnums=(0, 1))(teacher, student)
    for g in g_t:
        assert np.all(_np(g) == 0.0)
    for g in g_s:
        assert np.all(np.isfinite(_np(g))) and np.abs(_np(g)).max() > 0.0


@pytest.mark.parametrize("stats_gradient", [False, True])
def test_flex_spike_that_the_mask_drops_is_rewarded_only_through_the_statistics(stats_gradient):
    """A student equal to the teacher plus noise, with one spike of height A in each channel.

    The 95% mask drops the spike, but it inflates sigma_S. With gradients through the statistics
    a taller spike lowers FLEX (dL/dA < 0: the degenerate minimum); by default dL/dA is 0.
    """
    teacher = jax.random.normal(jax.random.PRNGKey(0), (1, 8, 8, 3))
    noise = 0.3 * jax.random.normal(jax.random.PRNGKey(1), teacher.shape)
    spike = jnp.zeros(teacher.shape).at[0, 2, 5, :].set(1.0)

    def flex_of_spike_height(height):
        student = teacher + noise + height * spike
        return losses.flex_loss([teacher], [student], [1.0], stats_gradient=stats_gradient)

    height = 20.0
    slope = float(jax.grad(flex_of_spike_height)(height))
    if stats_gradient:
        assert slope < 0.0
        assert float(flex_of_spike_height(4 * height)) < float(flex_of_spike_height(height))
    else:
        assert slope == 0.0


def test_flex_rejects_mismatched_inputs():
    x = jnp.zeros((1, 4, 4, 2))
    with pytest.raises(ValueError, match="layer weight"):
        losses.flex_loss([x], [x], [1.0, 2.0])
    with pytest.raises(ValueError, match="teacher"):
        losses.flex_loss([x], [jnp.zeros((1, 4, 4, 3))], [1.0])


@pytest.mark.parametrize("percentile", [0.0, 37.3, 50.0, 95.0, 99.9, 100.0])
@pytest.mark.parametrize(
    ("shape", "axis"), [((4, 300, 5), 1), ((3, 7), 1), ((1, 1, 2), 1), ((6, 2), 0)]
)
def test_percentile_of_nonnegative_matches_jnp_percentile(percentile, shape, axis):
    """The bisection form against `jnp.percentile` (a sort), with ties and zeros in the data:
    the same order statistics, so equal to float32 rounding of the interpolation (exactly
    equal where no interpolation happens)."""
    rng = np.random.default_rng(7)
    x = np.abs(rng.standard_normal(shape)).astype(np.float32)
    x.flat[::5] = 0.0
    x.flat[1::7] = 1.5  # ties
    x = jnp.asarray(x)
    ours = jax.jit(lambda x: losses.percentile_of_nonnegative(x, percentile, axis))(x)
    theirs = jax.jit(lambda x: jnp.percentile(x, percentile, axis=axis, keepdims=True))(x)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-5, atol=0)
    if percentile in (0.0, 100.0):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
