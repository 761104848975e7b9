"""The camera noise model (unprocessing): its noise formula, mosaic, round trip and seeding."""

import numpy as np
import pytest

from restorect_jax import methods
from restorect_jax.data import camera_noise, degradations

RNG = np.random.default_rng(0)


def _smooth(shape=(48, 64, 3)) -> np.ndarray:
    rows = np.linspace(0.05, 0.95, shape[0])[:, None, None]
    cols = np.linspace(0.1, 0.9, shape[1])[None, :, None]
    return np.clip(rows * cols + 0.1 * np.arange(shape[2]), 0, 1).astype(np.float32)


@pytest.mark.parametrize("level", [0.05, 0.3, 0.8])
def test_sensor_noise_variance_at_a_grey_level_matches_the_formula(level):
    shot, read = 0.01, 1e-4
    plane = np.full((512, 512), level)
    noise = camera_noise.sensor_noise(plane, shot, read, np.random.default_rng(1))
    expected = shot * level + read
    assert abs(noise.var() / expected - 1.0) < 0.05
    assert abs(noise.mean()) < 4 * np.sqrt(expected / plane.size)


@pytest.mark.parametrize("level", [0, 1, 77, 128, 254, 255])
def test_mosaic_then_demosaic_of_a_flat_image_is_exact(level):
    flat = np.full((10, 14, 3), level / 255.0) * np.array([1.0, 0.5, 0.25])
    np.testing.assert_array_equal(camera_noise.demosaic(camera_noise.mosaic(flat)), flat)


def test_the_mosaic_keeps_one_rggb_colour_per_pixel():
    image = RNG.random((4, 4, 3))
    plane = camera_noise.mosaic(image)
    assert plane[0, 0] == image[0, 0, 0] and plane[0, 1] == image[0, 1, 1]
    assert plane[1, 0] == image[1, 0, 1] and plane[1, 1] == image[1, 1, 2]


def test_without_noise_the_camera_develops_the_image_back():
    image = _smooth()
    camera = camera_noise.draw_camera(np.random.default_rng(3), camera_noise.CameraNoiseParams())
    back = camera_noise.develop(camera_noise.unprocess(image.astype(np.float64), camera), camera)
    np.testing.assert_allclose(back, image, atol=2e-6)


def test_the_same_seed_gives_the_same_degraded_image_and_noise_is_correlated():
    params = camera_noise.CameraNoiseParams(jpeg_probability=0.0)
    image = np.full((64, 64, 3), 0.5, np.float32)
    first = camera_noise.add_camera_noise(image, np.random.default_rng(7), params)
    again = camera_noise.add_camera_noise(image, np.random.default_rng(7), params)
    other = camera_noise.add_camera_noise(image, np.random.default_rng(8), params)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other) and first.dtype == np.float32
    # Demosaicking spreads each photosite's noise: neighbours are correlated, unlike AWGN.
    noise = first[..., 1] - 0.5
    correlation = np.corrcoef(noise[:, :-1].ravel(), noise[:, 1:].ravel())[0, 1]
    assert correlation > 0.2


def test_the_camera_degradation_mixes_in_awgn_and_reports_the_noise_level():
    spec = degradations.DegradationSpec(
        name="camera",
        noise_sigma=0.0,
        noise_sigma_max=50.0,
        quantize=True,
        camera=camera_noise.CameraNoiseParams(awgn_fraction=0.5),
    )
    image = _smooth((64, 64, 3))
    levels = [
        degradations.degrade_with_level(image, spec, np.random.default_rng(s)) for s in range(40)
    ]
    for degraded, level in levels:
        assert degraded.shape == image.shape and 0 <= level < 0.5
        np.testing.assert_array_equal(np.round(degraded * 255), degraded * 255)
    measured = [np.std(degraded - image) for degraded, _ in levels]
    assert np.corrcoef(measured, [level for _, level in levels])[0, 1] > 0.9


@pytest.mark.parametrize(
    "key, value",
    [("shot_min", 0.0), ("shot_max", 2.0), ("jpeg_probability", 1.5), ("awgn_fraction", -0.1)],
)
def test_a_bad_parameter_is_a_one_line_config_error(key, value):
    with pytest.raises(ValueError, match=rf"config.data.camera.{key}={value!r}") as error:
        camera_noise.CameraNoiseParams(**{key: value})
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="config.data.camera.shot: unknown key"):
        camera_noise.CameraNoiseParams.from_config({"shot": 0.1})


def test_config_validation_names_a_bad_camera_key():
    from configs import denoiser_smoke

    config = denoiser_smoke.get_config()
    config.data.degradation = "camera"
    methods.validate(config)
    config.data.camera.jpeg_quality_max = 101
    with pytest.raises(ValueError, match=r"config.data.camera.jpeg_quality_max=101"):
        methods.validate(config)
