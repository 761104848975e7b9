"""No-reference metrics against their reference implementations, and hand-computable cases.

References (test-only, pinned in requirements-test.txt): scikit-video 1.1.11 (NIQE), OpenCV
5.0.0.93 contrib ``cv2.quality`` (BRISQUE), pypiqe 1.2 (PIQE). BasicSR's NIQE needs PyTorch, so its
outputs for the images used here were recorded once (BasicSR's ``calculate_niqe`` code run on the
same files with PyTorch 1.13, CPU) and are compared against. UCIQE and UIQM have no reference
package; they are checked on cases with known values and for the direction of their response.

Each comparison states its tolerance in the test name or the assertion. Real images come from
``$RESTORECT_DATA_DIR`` (default ``../shared/data``): three CBSD68 images (481x321) and three DICM
low-light images (up to 960x640), plus two random 480x320+ images.
"""

import math
import os
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy
import scipy.io
from PIL import Image

from restorect_jax.metrics import no_reference as nr

DATA_ROOT = Path(
    os.environ.get(nr.DATA_DIR_ENV, Path(__file__).resolve().parents[2] / "shared" / "data")
)
METRICS_DIR = DATA_ROOT / "metrics"
pytestmark = pytest.mark.skipif(
    not (METRICS_DIR / "niqe_pris_params.npz").is_file(),
    reason=f"benchmark data not found at {DATA_ROOT} (set ${nr.DATA_DIR_ENV})",
)

REAL_IMAGES = [
    "denoise/test/CBSD68/101085.png",
    "denoise/test/CBSD68/108005.png",
    "denoise/test/CBSD68/253027.png",
    "lowlight/test/DICM/01.jpg",
    "lowlight/test/DICM/05.jpg",
    "lowlight/test/DICM/33.jpg",
]

# BasicSR's calculate_niqe(img_bgr, crop_border, convert_to="y") for crop_border 0 and 4,
# recorded from BasicSR's code (niqe.py, matlab_functions.imresize) on these exact inputs.
BASICSR_NIQE = {
    "denoise/test/CBSD68/101085.png": (2.77066540477283, 2.8527432888244983),
    "denoise/test/CBSD68/108005.png": (2.3172120852055804, 2.4348551436074373),
    "denoise/test/CBSD68/253027.png": (3.3657963993227824, 4.080975683964695),
    "lowlight/test/DICM/01.jpg": (3.356773631855098, 3.1768287398096438),
    "lowlight/test/DICM/05.jpg": (3.5054930246910887, 3.621441527270425),
    "lowlight/test/DICM/33.jpg": (4.099077549039366, 4.295659642363617),
    "uniform_noise": (34.536804230773015, 27.96632427210064),
    "waves_noise": (18.003832912134833, 18.707116675522535),
}


RANDOM_IMAGES = ("uniform_noise", "waves_noise")


@pytest.fixture(autouse=True)
def _data_dir_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(nr.DATA_DIR_ENV, str(DATA_ROOT))


def _random_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20250611)
    noise = rng.random((320, 480, 3))
    yy, xx = np.mgrid[0:352, 0:512].astype(np.float64)
    phase = np.array([0.0, 1.0, 2.0])
    waves = 0.5 + 0.25 * np.sin(xx[..., None] / 9.0 + phase) * np.cos(yy[..., None] / 13.0)
    textured = np.clip(waves + rng.normal(0.0, 0.06, waves.shape), 0.0, 1.0)
    return {"uniform_noise": noise, "waves_noise": textured}


def _load(name: str) -> np.ndarray:
    """A test image as [0, 1] float64 RGB, exactly on the 8-bit grid."""
    return np.asarray(Image.open(DATA_ROOT / name).convert("RGB"), np.float64) / 255.0


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    """The real images and the random ones, all quantised to 8 bits."""
    out = {name: _load(name) for name in REAL_IMAGES}
    for name, image in _random_images().items():
        out[name] = np.round(image * 255.0) / 255.0
    return out


def _u8(image: np.ndarray) -> np.ndarray:
    return np.round(image * 255.0).astype(np.uint8)


def _bgr(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(_u8(image)[..., ::-1])


def _rel(value: float, reference: float) -> float:
    return abs(value - reference) / abs(reference)


# ------------------------------------------------------------------------------------------
# NIQE
# ------------------------------------------------------------------------------------------


@pytest.fixture
def skvideo_niqe(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """``skvideo.measure.niqe``'s module, runnable on current NumPy and SciPy.

    Two shims: ``np.int`` (removed from NumPy) and ``scipy.misc.imresize`` (removed from SciPy),
    replaced by what it called: Pillow's bicubic resize of the float32 ("F" mode) image.
    """
    monkeypatch.setattr(np, "int", int, raising=False)

    def imresize(arr: np.ndarray, size: float, interp: str = "bilinear", mode=None) -> np.ndarray:
        assert interp == "bicubic" and mode == "F" and isinstance(size, float)
        image = Image.fromarray(np.asarray(arr, dtype=np.float32))
        assert image.mode == "F"
        new_size = tuple((np.array(image.size) * size).astype(int))
        return np.asarray(image.resize(new_size, Image.Resampling.BICUBIC))

    with warnings.catch_warnings():  # scipy.misc is deprecated (and gone in newer SciPy)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import scipy.misc
        except ImportError:
            monkeypatch.setitem(sys.modules, "scipy.misc", types.ModuleType("scipy.misc"))
            monkeypatch.setattr(scipy, "misc", sys.modules["scipy.misc"], raising=False)
        monkeypatch.setattr(sys.modules["scipy.misc"], "imresize", imresize, raising=False)
        import skvideo.measure  # noqa: F401

    return sys.modules["skvideo.measure.niqe"]


def _skvideo_luma(image: np.ndarray) -> np.ndarray:
    """The rounded BT.601 Y channel, computed independently with scikit-image."""
    from skimage.color import rgb2ycbcr

    return np.round(rgb2ycbcr(image)[..., 0])


def test_luma_matches_scikit_image_rgb2ycbcr_except_exact_halves(
    images: dict[str, np.ndarray],
) -> None:
    """Equal wherever ``16 + (65.481 R + 128.553 G + 24.966 B) / 255`` is not within 1e-4 of k + 1/2.

    There the rounding follows BasicSR's float32 steps, not scikit-image's float64.
    """
    for name, image in images.items():
        pixels = _u8(image).astype(np.int64)
        scaled = 65481 * pixels[..., 0] + 128553 * pixels[..., 1] + 24966 * pixels[..., 2]
        half = np.abs(scaled % 255000 - 127500) < 25.5  # |Y - (k + 1/2)| < 1e-4
        luma = nr._luma_basicsr(_u8(image))
        reference = _skvideo_luma(image)
        np.testing.assert_array_equal(luma[~half], reference[~half], err_msg=name)
        assert np.all(np.abs(luma - reference)[half] <= 1), name


def test_niqe_skvideo_convention_matches_skvideo_rel_1e3(
    images: dict[str, np.ndarray], skvideo_niqe: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both with scikit-video's bundled pristine model and with the shared one."""
    own = scipy.io.loadmat(Path(skvideo_niqe.__file__).parent / "data" / "niqe_image_params.mat")
    shared = nr.load_niqe_params()
    own_params = nr.NiqeParams(
        mu=np.ravel(own["pop_mu"]), cov=np.asarray(own["pop_cov"]), window=shared.window
    )
    worst = 0.0
    for name, image in images.items():
        reference = float(skvideo_niqe.niqe(nr._luma_basicsr(_u8(image)))[0])
        mine = nr.niqe(image, convention="skvideo", params=own_params)
        assert _rel(mine, reference) < 1e-3, (name, mine, reference)
        worst = max(worst, _rel(mine, reference))

    monkeypatch.setattr(
        scipy.io, "loadmat", lambda path: {"pop_mu": shared.mu[None], "pop_cov": shared.cov}
    )
    for name, image in images.items():
        reference = float(skvideo_niqe.niqe(nr._luma_basicsr(_u8(image)))[0])
        mine = nr.niqe(image, convention="skvideo")
        assert _rel(mine, reference) < 1e-3, (name, mine, reference)
        worst = max(worst, _rel(mine, reference))
    print(f"NIQE vs scikit-video: max relative difference {worst:.1e}")


def test_niqe_basicsr_convention_matches_recorded_basicsr_rel_1e3(
    images: dict[str, np.ndarray],
) -> None:
    worst = 0.0
    for name, references in BASICSR_NIQE.items():
        for crop_border, reference in zip((0, 4), references, strict=True):
            mine = nr.niqe(images[name], crop_border)
            assert _rel(mine, reference) < 1e-3, (name, crop_border, mine, reference)
            worst = max(worst, _rel(mine, reference))
    print(f"NIQE vs BasicSR: max relative difference {worst:.1e}")


def test_niqe_grey_input_scores_its_values() -> None:
    image = _random_images()["waves_noise"]
    grey = _skvideo_luma(np.round(image * 255) / 255) / 255.0
    assert nr.niqe(grey) == nr.niqe(np.round(image * 255) / 255)
    assert nr.niqe(grey[..., None]) == nr.niqe(grey)


def test_niqe_clean_scores_lower_than_awgn_sigma_25(images: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(0)
    for name in REAL_IMAGES[:3]:
        clean = images[name]
        noisy = np.clip(clean + rng.normal(0.0, 25 / 255, clean.shape), 0.0, 1.0)
        for convention in ("basicsr", "skvideo"):
            assert nr.niqe(clean, convention=convention) < nr.niqe(noisy, convention=convention)


def test_niqe_needs_two_blocks() -> None:
    with pytest.raises(ValueError, match="two 96x96 blocks"):
        nr.niqe(np.full((100, 150, 3), 0.5))


def test_missing_params_error_names_path_and_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = np.zeros((200, 200, 3))
    monkeypatch.setenv(nr.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=nr.DATA_DIR_ENV) as error:
        nr.niqe(image)
    assert str(tmp_path / "metrics" / "niqe_pris_params.npz") in str(error.value)
    with pytest.raises(FileNotFoundError, match="brisque_model_live.yml"):
        nr.brisque(image, params_dir=tmp_path)
    monkeypatch.delenv(nr.DATA_DIR_ENV)
    with pytest.raises(FileNotFoundError, match=nr.DATA_DIR_ENV):
        nr.load_niqe_params()


# ------------------------------------------------------------------------------------------
# BRISQUE
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cv2_quality() -> types.ModuleType:
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "quality"):
        pytest.fail(
            "cv2 has no 'quality' module: opencv-python was installed over the contrib build. "
            "Repair with: pip install --force-reinstall --no-deps "
            "opencv-contrib-python-headless==5.0.0.93"
        )
    return cv2


def _opencv_brisque(cv2: types.ModuleType, image: np.ndarray) -> float:
    return cv2.quality.QualityBRISQUE_compute(
        _bgr(image),
        str(METRICS_DIR / "brisque_model_live.yml"),
        str(METRICS_DIR / "brisque_range_live.yml"),
    )[0]


def test_brisque_model_parse_matches_opencv_exactly(cv2_quality: types.ModuleType) -> None:
    model = nr.load_brisque_model()
    svm = cv2_quality.ml.SVM_load(str(METRICS_DIR / "brisque_model_live.yml"))
    rho, alpha, index = svm.getDecisionFunction(0)
    np.testing.assert_array_equal(model.support_vectors, svm.getSupportVectors()[index.ravel()])
    np.testing.assert_array_equal(model.alpha, alpha.ravel())
    assert model.rho == rho
    assert model.gamma == svm.getGamma()
    assert model.support_vectors.shape == (774, 36)


def test_brisque_resize_and_blur_match_opencv_to_float32_ulps(
    images: dict[str, np.ndarray], cv2_quality: types.ModuleType
) -> None:
    """Max abs difference 5e-7 on [0, 1] data (a few float32 ulps); the blur is exact on x86-64."""
    cv2 = cv2_quality
    for name in ("denoise/test/CBSD68/101085.png", "lowlight/test/DICM/05.jpg"):
        grey = cv2.cvtColor(_bgr(images[name]), cv2.COLOR_BGR2GRAY)
        np.testing.assert_array_equal(nr._grey_opencv(_u8(images[name])), grey)
        level = grey.astype(np.float32) * np.float32(1 / 255)
        height, width = level.shape
        resized = cv2.resize(level, (width // 2, height // 2), interpolation=cv2.INTER_CUBIC)
        mine = nr._opencv_resize_cubic(level, height // 2, width // 2)
        assert np.abs(mine - resized).max() <= 5e-7, name
        blurred = cv2.GaussianBlur(level, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)
        assert np.abs(nr._blur_opencv(level) - blurred).max() <= 5e-7, name


def test_brisque_matches_opencv_given_opencv_resize_rel_1e3(
    images: dict[str, np.ndarray], cv2_quality: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything but the half-size resize, checked with OpenCV's own resize swapped in.

    Tolerance: 1e-3 relative, 0.01 absolute below a score of 10: OpenCV evaluates the 774 RBF
    kernel values in float32 (weights up to 1024), which alone moves scores by ~1e-3.
    """
    cv2 = cv2_quality
    monkeypatch.setattr(
        nr,
        "_opencv_resize_cubic",
        lambda image, h, w: cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC),
    )
    worst = 0.0
    for name, image in images.items():
        features = cv2.quality.QualityBRISQUE_computeFeatures(_bgr(image)).ravel()
        np.testing.assert_allclose(nr.brisque_features(image), features, rtol=1e-3, atol=1e-6)
        reference = _opencv_brisque(cv2, image)
        mine = nr.brisque(image)
        assert abs(mine - reference) <= 1e-3 * max(abs(reference), 10.0), (name, mine, reference)
        worst = max(worst, abs(mine - reference) / max(abs(reference), 10.0))
    print(f"BRISQUE (OpenCV resize) vs OpenCV: max difference / max(score, 10) {worst:.1e}")


def test_brisque_matches_opencv_end_to_end(
    images: dict[str, np.ndarray], cv2_quality: types.ModuleType
) -> None:
    """Random images: 1e-3 relative. Real images: 0.5 absolute.

    The half-size image agrees with OpenCV 5's resize to a few float32 ulps, not bit for bit, and
    in flat areas that decides which pixels OpenCV drops (negative float32 variance). Over the 186
    CBSD68, DICM, U45 and LIME images: median relative difference 5e-5, 168 within 1e-3, worst
    0.46 absolute (1.7% for scores above 10, more for smaller scores).
    """
    cv2 = cv2_quality
    for name, image in images.items():
        reference = _opencv_brisque(cv2, image)
        mine = nr.brisque(image)
        if name in RANDOM_IMAGES:
            assert _rel(mine, reference) < 1e-3, (name, mine, reference)
        else:
            assert abs(mine - reference) <= 0.5, (name, mine, reference)


def test_brisque_grey_input_and_noise_direction(images: dict[str, np.ndarray]) -> None:
    image = images["denoise/test/CBSD68/101085.png"]
    grey = nr._grey_opencv(_u8(image)) / 255.0
    assert nr.brisque(grey) == nr.brisque(image)
    noisy = np.clip(image + np.random.default_rng(1).normal(0, 25 / 255, image.shape), 0, 1)
    assert nr.brisque(image) < nr.brisque(noisy)
    assert math.isnan(nr.brisque(np.full((64, 64, 3), 0.5)))


# ------------------------------------------------------------------------------------------
# PIQE
# ------------------------------------------------------------------------------------------


def test_piqe_pypiqe_convention_matches_pypiqe_rel_1e3(images: dict[str, np.ndarray]) -> None:
    pypiqe = pytest.importorskip("pypiqe")
    grey = np.asarray(Image.open(DATA_ROOT / "denoise/test/BSD68/test001.png"), np.float64) / 255
    cases = {**images, "BSD68/test001.png (grey)": grey}
    worst = 0.0
    for name, image in cases.items():
        reference = pypiqe.piqe(_bgr(image) if image.ndim == 3 else _u8(image))[0]
        mine = nr.piqe(image, convention="pypiqe")
        assert _rel(mine, reference) < 1e-3, (name, mine, reference)
        worst = max(worst, _rel(mine, reference))
    print(f"PIQE vs pypiqe: max relative difference {worst:.1e}")


def test_piqe_matlab_convention_equals_pypiqe_where_they_coincide_rel_1e9(
    images: dict[str, np.ndarray],
) -> None:
    """Grey, sides a multiple of 16, maximum 255: no padding, grey or stretch differences."""
    pypiqe = pytest.importorskip("pypiqe")
    for name in REAL_IMAGES[:3]:
        grey = nr._grey_opencv(_u8(images[name]))[:320, :320].copy()
        grey[0, 0] = 255
        reference = pypiqe.piqe(grey)[0]
        assert _rel(nr.piqe(grey / 255.0), reference) < 1e-9


def test_piqe_matlab_grey_and_range() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.float64) / 255
    pixels = _u8(rgb).astype(np.float64)
    expected = np.floor(
        pixels @ np.array([0.298936021293776, 0.587043074451121, 0.114020904255103]) + 0.5
    )
    np.testing.assert_array_equal(
        np.clip(np.floor(pixels @ nr._MATLAB_GREY + 0.5), 0, 255), expected
    )
    assert nr.piqe(np.full((64, 48, 3), 0.3)) == 100.0


def test_piqe_clean_scores_lower_than_awgn_sigma_25(images: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(2)
    for name in REAL_IMAGES[:3]:
        clean = images[name]
        noisy = np.clip(clean + rng.normal(0.0, 25 / 255, clean.shape), 0.0, 1.0)
        for convention in ("matlab", "pypiqe"):
            assert (
                0 <= nr.piqe(clean, convention=convention) < nr.piqe(noisy, convention=convention)
            )


# ------------------------------------------------------------------------------------------
# UCIQE
# ------------------------------------------------------------------------------------------

GREY_CHROMA = math.sqrt(2) * 128 / 255  # chroma of a grey pixel in the offset 8-bit encoding


def test_uciqe_flat_grey_has_zero_chroma_spread_and_contrast() -> None:
    for level in (0.2, 0.5, 0.9):
        image = np.full((40, 60, 3), level)
        lightness = nr._lab_8bit(_u8(image))[0, 0, 0] / 255
        assert nr.uciqe(image) == pytest.approx(0.2576 * GREY_CHROMA / lightness, rel=1e-12)
    assert nr.uciqe(np.full((40, 60, 3), 128 / 255)) == pytest.approx(0.3404, abs=1e-4)
    assert nr.uciqe(np.zeros((40, 60, 3))) == pytest.approx(0.0, abs=1e-12)


def test_uciqe_black_and_white_halves() -> None:
    """sigma_c 0, con_l = 1 - 0, mu_s = mean(C / 1, 0): 0.2745 + 0.2576 C / 2."""
    image = np.zeros((50, 80, 3))
    image[:, 40:] = 1.0
    assert nr.uciqe(image) == pytest.approx(0.2745 + 0.2576 * GREY_CHROMA / 2, rel=1e-12)


def test_uciqe_agrees_with_opencv_lab_implementation_rel_2e2(
    cv2_quality: types.ModuleType,
) -> None:
    """The common Python code (OpenCV 8-bit Lab / 255), re-derived here on U45 images.

    OpenCV's table-based 8-bit Lab differs from the exact one by a level on ~10% of pixels.
    """
    cv2 = cv2_quality
    worst = 0.0
    for index in (1, 2, 3, 10, 20):
        image = _load(f"underwater/test/U45/{index}.png")
        lab = cv2.cvtColor(_bgr(image), cv2.COLOR_BGR2LAB).astype(np.float64) / 255
        lum = lab[..., 0].ravel()
        chroma = np.hypot(lab[..., 1], lab[..., 2]).ravel()
        ordered = np.sort(lum)
        contrast = ordered[int(lum.size * 0.99)] - ordered[int(lum.size * 0.01)]
        saturation = np.divide(chroma, lum, out=np.zeros_like(chroma), where=lum != 0)
        reference = 0.4680 * chroma.std() + 0.2745 * contrast + 0.2576 * saturation.mean()
        assert _rel(nr.uciqe(image), reference) < 2e-2, index
        worst = max(worst, _rel(nr.uciqe(image), reference))
    print(f"UCIQE vs OpenCV-Lab implementation: max relative difference {worst:.1e}")


def test_uciqe_drops_with_lower_contrast_and_colour_spread() -> None:
    ramp = np.broadcast_to(np.linspace(0.05, 0.95, 200)[None, :, None], (50, 200, 3)).copy()
    assert nr.uciqe(0.5 * ramp + 0.25) < nr.uciqe(ramp)  # grey: lower con_l and mean C / L
    for index in (1, 7, 30):
        image = _load(f"underwater/test/U45/{index}.png")
        faded = 0.5 * image + 0.5 * image.mean(axis=(0, 1))  # halfway to its mean colour
        assert nr.uciqe(faded) < nr.uciqe(image), index


# ------------------------------------------------------------------------------------------
# UIQM
# ------------------------------------------------------------------------------------------


def test_uiqm_of_flat_grey_is_zero() -> None:
    image = np.full((64, 64, 3), 0.4)
    assert nr.uicm(image) == 0.0
    assert nr.uism(image) == 0.0
    assert nr.uiconm(image) == 0.0
    assert nr.uiqm(image) == 0.0


def test_uicm_of_a_uniform_colour() -> None:
    """RG = 200 - 100, YB = 150 - 50, no spread: -0.0268 sqrt(100^2 + 100^2)."""
    image = np.ones((32, 32, 3)) * np.array([200, 100, 50]) / 255
    assert nr.uicm(image) == pytest.approx(-0.0268 * math.hypot(100, 100), rel=1e-12)


def test_uicm_trimmed_statistics() -> None:
    """n = 20: drop ceil(2) lowest and floor(2) highest; the spread is over all 20 values."""
    values = np.arange(20.0) ** 2
    mu, spread = nr._trimmed_stats(values)
    assert mu == pytest.approx(np.mean(values[2:18]))
    assert spread == pytest.approx(np.mean((values - mu) ** 2))


def test_uiconm_of_blocks_with_two_levels() -> None:
    """Every 8x8 block spans 50..150: rho = 100 / 200 and UIConM = -rho ln rho."""
    image = np.full((32, 48, 3), 50 / 255)
    image[::8, ::8] = 150 / 255
    assert nr.uiconm(image) == pytest.approx(-0.5 * math.log(0.5), rel=1e-9)


def test_uism_of_a_horizontal_ramp() -> None:
    """Grey ramp x_j = a + b j: |Sobel| is 8 b inside and 4 b at the reflected borders.

    The edge map ``|Sobel| x`` per 8-column block then has max/min 2 (a + 7 b) / a,
    (a + 15 b) / (a + 8 b), (a + 23 b) / (a + 16 b) and 2 (a + 30 b) / (a + 31 b) (the last
    column, 4 b (a + 31 b), is that block's minimum); EME = 2 / 8 blocks * 2 rows of blocks * the
    sum of their logs, the same in every channel, and the channel weights add to 1.
    """
    a, b = 20.0, 5.0
    ramp = (a + b * np.arange(32)) / 255
    image = np.broadcast_to(ramp[None, :, None], (16, 32, 3)).copy()
    ratios = [
        2 * (a + 7 * b) / a,
        (a + 15 * b) / (a + 8 * b),
        (a + 23 * b) / (a + 16 * b),
        2 * (a + 30 * b) / (a + 31 * b),
    ]
    assert nr.uism(image) == pytest.approx(2 / 8 * 2 * sum(map(math.log, ratios)), rel=1e-9)


def test_uiqm_drops_with_colour_cast_blur_and_low_contrast(
    images: dict[str, np.ndarray],
) -> None:
    for name in REAL_IMAGES[:3]:
        image = images[name]
        cast = image * np.array([0.5, 0.85, 1.0])  # red absorbed, as under water
        veil = 0.7 * image + 0.3 * np.array([0.1, 0.5, 0.6])  # blue-green haze
        blurred = scipy.ndimage.gaussian_filter(image, sigma=(2.0, 2.0, 0.0))
        flat = 0.3 * image + 0.35
        assert nr.uiqm(cast) < nr.uiqm(image), name
        assert nr.uicm(veil) < nr.uicm(image), name
        assert nr.uism(blurred) < nr.uism(image), name
        assert nr.uiqm(flat) < nr.uiqm(image), name


def test_uiconm_rises_with_block_contrast_up_to_1_over_e() -> None:
    """-rho ln rho increases for rho < 1/e (and falls beyond: UIConM is not monotone)."""
    scores = []
    for high in (60, 80, 100, 150):  # rho = (high - 50) / (high + 50): 0.09, 0.23, 0.33, 0.5
        image = np.full((32, 48, 3), 50 / 255)
        image[::8, ::8] = high / 255
        scores.append(nr.uiconm(image))
    assert scores[0] < scores[1] < scores[2] and scores[3] < scores[2]


def test_inputs_are_validated() -> None:
    with pytest.raises(TypeError, match="float"):
        nr.piqe(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="RGB"):
        nr.uciqe(np.zeros((32, 32)))
    with pytest.raises(ValueError, match="image"):
        nr.brisque(np.zeros((32, 32, 4)))
    with pytest.raises(ValueError, match="non-finite"):
        nr.uiqm(np.full((32, 32, 3), np.nan))
