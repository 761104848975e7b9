"""Synthetic degradations of clean images, in numpy, seeded by the caller's generator.

Images are float arrays in [0, 1] of shape (H, W, C). Every random draw comes from the
``np.random.Generator`` passed in, so one generator state gives one degraded image.

Models (x: clean image, y: degraded image, clip: optional clipping to [0, 1]):

* ``awgn``: additive white Gaussian noise, sigma on the [0, 255] scale,
  ``y = clip(x + (sigma / 255) * n)``, ``n ~ N(0, 1)`` i.i.d. per pixel and channel; blind
  training draws ``sigma ~ U(noise_sigma, noise_sigma_max)`` once per image.
* ``lowlight``: under-exposure then sensor noise,
  ``d = s * x ** g`` with ``g ~ U(gamma_min, gamma_max)`` and ``s ~ U(scale_min, scale_max)``
  drawn once per image, then the Poisson-Gaussian model
  ``y = clip(Poisson(peak * d) / peak + (read_sigma / 255) * n)``, ``n ~ N(0, 1)``:
  shot noise whose variance ``d / peak`` grows with the signal (``peak`` is the photon count
  of a white pixel) plus signal-independent read noise.
* ``rain``: synthetic rain streaks and veil, an approximation of heavy rain (Rain100H-like).
  Seeds ``u ~ U(intensity_min, intensity_max)`` fall on a fraction ``rho ~ U(density_min,
  density_max)`` of the pixels; one motion-blur line of length ``L ~ U(length_min, length_max)``
  at ``theta ~ U(-angle_max, angle_max)`` degrees from vertical (one per image: rain falls in one
  direction) stretches each seed into a streak, ``r = clip(G_w * (k_{L,theta} * u))`` with
  ``k`` a line of unit height and ``G_w`` a Gaussian of width ``w ~ U(width_min, width_max)``;
  streaks are screen-blended, ``s = 1 - (1 - x)(1 - r)``, and a veil of airlight ``A ~
  U(0.7, 1)`` and strength ``h ~ U(0, veil_max)`` is laid over them, ``y = (1 - h) s + h A``.
* ``camera``: the noise of a real camera, by unprocessing the image to raw, adding
  heteroscedastic sensor noise on a Bayer mosaic and developing it again (optionally as a JPEG);
  see ``camera_noise``. A fraction ``data.camera.awgn_fraction`` of the images gets the AWGN
  model instead, so one model serves both.
* ``none``: ``y = x``; for paired data, whose degraded input is read from disk.

``degrade_with_level`` also returns the noise level a noise-map model reads: the drawn sigma
/ 255 for AWGN, the standard deviation of ``y - x`` for camera noise.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy import ndimage

from restorect_jax.data.camera_noise import CameraNoiseParams, add_camera_noise

DEGRADATIONS = ("awgn", "lowlight", "rain", "camera", "none")
NOISES = ("awgn", "camera")  # the degradations with a noise level


def _check_params(params: Any, prefix: str, **checks: bool) -> None:
    """Raises a ValueError naming ``<prefix>.<key>`` for the first check that failed."""
    for key, ok in checks.items():
        if not ok:
            raise ValueError(f"invalid {prefix}.{key} in {params}")


@dataclasses.dataclass(frozen=True)
class LowLightParams:
    """Ranges and noise levels of the low-light model (config ``data.lowlight``).

    Attributes:
      gamma_min, gamma_max: range of the gamma exponent ``g`` (> 1 darkens shadows most).
      scale_min, scale_max: range of the exposure scale ``s`` in (0, 1].
      shot_peak: photon count of a white pixel after darkening by ``s = 1``; lower is noisier.
      read_sigma: standard deviation of the read noise on the [0, 255] scale.
    """

    gamma_min: float = 1.5
    gamma_max: float = 3.0
    scale_min: float = 0.1
    scale_max: float = 0.5
    shot_peak: float = 500.0
    read_sigma: float = 2.0

    def __post_init__(self):
        _check_params(
            self,
            "data.lowlight",
            gamma_min=0 < self.gamma_min <= self.gamma_max,
            scale_min=0 < self.scale_min <= self.scale_max <= 1,
            shot_peak=self.shot_peak > 0,
            read_sigma=self.read_sigma >= 0,
        )


@dataclasses.dataclass(frozen=True)
class RainParams:
    """Ranges of the rain-streak model (config ``data.rain``); see the module docstring.

    Attributes:
      density_min, density_max: fraction of pixels that seed a streak.
      length_min, length_max: streak length in pixels.
      angle_max: largest streak angle from vertical, in degrees.
      width_min, width_max: Gaussian blur across a streak, in pixels.
      intensity_min, intensity_max: brightness of a streak seed in (0, 1].
      veil_max: largest strength of the rain veil (0 = none).
    """

    density_min: float = 0.002
    density_max: float = 0.012
    length_min: float = 15.0
    length_max: float = 50.0
    angle_max: float = 30.0
    width_min: float = 0.3
    width_max: float = 0.8
    intensity_min: float = 0.3
    intensity_max: float = 0.9
    veil_max: float = 0.25

    def __post_init__(self):
        _check_params(
            self,
            "data.rain",
            density_min=0 < self.density_min <= self.density_max <= 1,
            length_min=1 <= self.length_min <= self.length_max,
            angle_max=0 <= self.angle_max <= 90,
            width_min=0 <= self.width_min <= self.width_max,
            intensity_min=0 < self.intensity_min <= self.intensity_max <= 1,
            veil_max=0 <= self.veil_max < 1,
        )


@dataclasses.dataclass(frozen=True)
class DegradationSpec:
    """The degradation named by the data config, with its parameters.

    Attributes:
      name: one of ``DEGRADATIONS`` (config ``data.degradation``).
      noise_sigma: AWGN sigma on the [0, 255] scale (``data.noise_sigma``).
      noise_sigma_max: blind AWGN when > 0: each image's sigma is drawn uniformly from
        ``[noise_sigma, noise_sigma_max]`` (``data.noise_sigma_max``).
      clip: clip degraded images to [0, 1] (``data.clip``).
      quantize: round degraded images to 8 bits, ``round(255 y) / 255``, as saved photos are
        (``data.quantize``; needs ``clip``).
      lowlight: low-light parameters (``data.lowlight``).
      rain: rain-streak parameters (``data.rain``).
      camera: camera-noise parameters (``data.camera``).
    """

    name: str
    noise_sigma: float = 25.0
    noise_sigma_max: float = 0.0
    clip: bool = True
    quantize: bool = False
    lowlight: LowLightParams = LowLightParams()
    rain: RainParams = RainParams()
    camera: CameraNoiseParams = CameraNoiseParams()

    def __post_init__(self):
        if self.name not in DEGRADATIONS:
            raise ValueError(f"data.degradation must be one of {DEGRADATIONS}, got {self.name!r}")
        if self.noise_sigma < 0:
            raise ValueError(f"data.noise_sigma must be >= 0, got {self.noise_sigma}")
        if self.noise_sigma_max and self.noise_sigma_max < self.noise_sigma:
            raise ValueError(
                f"data.noise_sigma_max={self.noise_sigma_max} must be 0 (fixed sigma) or at "
                f"least data.noise_sigma={self.noise_sigma}"
            )
        if self.quantize and not self.clip:
            raise ValueError("data.quantize needs data.clip (8-bit images are in [0, 1])")

    @classmethod
    def from_config(cls, data_config: Any) -> DegradationSpec:
        """Reads ``degradation``, ``noise_sigma``, ``clip``, ``lowlight`` and ``rain``.

        A config without ``rain`` or ``camera`` (saved before they existed) gets the defaults.
        """
        lowlight = data_config.lowlight
        rain_config = data_config.get("rain") or {}
        rain = {
            field.name: float(rain_config[field.name])
            for field in dataclasses.fields(RainParams)
            if field.name in rain_config
        }
        return cls(
            name=data_config.degradation,
            noise_sigma=float(data_config.noise_sigma),
            noise_sigma_max=float(data_config.get("noise_sigma_max", 0.0)),
            clip=bool(data_config.clip),
            quantize=bool(data_config.get("quantize", False)),
            lowlight=LowLightParams(
                gamma_min=float(lowlight.gamma_min),
                gamma_max=float(lowlight.gamma_max),
                scale_min=float(lowlight.scale_min),
                scale_max=float(lowlight.scale_max),
                shot_peak=float(lowlight.shot_peak),
                read_sigma=float(lowlight.read_sigma),
            ),
            rain=RainParams(**rain),
            camera=CameraNoiseParams.from_config(data_config.get("camera") or {}),
        )


def add_gaussian_noise(
    gt: np.ndarray, sigma_255: float, rng: np.random.Generator, clip: bool = True
) -> np.ndarray:
    """Returns ``gt + (sigma_255 / 255) * n``, ``n ~ N(0, 1)``, clipped to [0, 1] if ``clip``."""
    noisy = gt + rng.standard_normal(gt.shape, dtype=np.float32) * np.float32(sigma_255 / 255.0)
    return np.clip(noisy, 0.0, 1.0) if clip else noisy


def darken_low_light(
    gt: np.ndarray,
    rng: np.random.Generator,
    params: LowLightParams = LowLightParams(),
    clip: bool = True,
) -> np.ndarray:
    """Returns a dark, noisy version of ``gt`` by the low-light model of the module docstring.

    ``d = s * gt ** g`` with ``g ~ U(gamma_min, gamma_max)``, ``s ~ U(scale_min, scale_max)``;
    then ``Poisson(shot_peak * d) / shot_peak + (read_sigma / 255) * N(0, 1)``, clipped to
    [0, 1] if ``clip``.
    """
    gamma = rng.uniform(params.gamma_min, params.gamma_max)
    scale = rng.uniform(params.scale_min, params.scale_max)
    dark = scale * np.power(np.clip(gt, 0.0, 1.0), gamma)
    shot = rng.poisson(dark * params.shot_peak) / params.shot_peak
    read = rng.standard_normal(gt.shape) * (params.read_sigma / 255.0)
    noisy = (shot + read).astype(np.float32)
    return np.clip(noisy, 0.0, 1.0) if clip else noisy


def streak_kernel(length: float, angle_degrees: float) -> np.ndarray:
    """A line of unit height, ``length`` pixels long, ``angle_degrees`` from vertical.

    The line is sampled at twice the pixel rate and splatted bilinearly, then scaled so its
    largest tap is 1: convolving a seed of value ``u`` gives a streak of brightness about ``u``.
    """
    half = length / 2
    size = 2 * int(np.ceil(half)) + 3
    centre = size // 2
    t = np.linspace(-half, half, max(int(np.ceil(2 * length)), 2))
    theta = np.deg2rad(angle_degrees)
    rows, cols = centre + t * np.cos(theta), centre + t * np.sin(theta)
    kernel = np.zeros((size, size), np.float64)
    top, left = np.floor(rows).astype(int), np.floor(cols).astype(int)
    fr, fc = rows - top, cols - left
    for dr, dc, weight in (
        (0, 0, (1 - fr) * (1 - fc)),
        (0, 1, (1 - fr) * fc),
        (1, 0, fr * (1 - fc)),
        (1, 1, fr * fc),
    ):
        np.add.at(kernel, (top + dr, left + dc), weight)
    return (kernel / kernel.max()).astype(np.float32)


def add_rain(
    gt: np.ndarray,
    rng: np.random.Generator,
    params: RainParams = RainParams(),
    clip: bool = True,
) -> np.ndarray:
    """Returns ``gt`` with rain streaks and veil by the rain model of the module docstring."""
    height, width = gt.shape[:2]
    density = rng.uniform(params.density_min, params.density_max)
    length = rng.uniform(params.length_min, params.length_max)
    angle = rng.uniform(-params.angle_max, params.angle_max)
    blur = rng.uniform(params.width_min, params.width_max)
    veil = rng.uniform(0.0, params.veil_max)
    airlight = rng.uniform(0.7, 1.0)
    seeds = (rng.random((height, width)) < density) * rng.uniform(
        params.intensity_min, params.intensity_max, (height, width)
    )
    from scipy import signal  # imported here: scipy.signal takes 0.7 s, only rain needs it

    streaks = signal.fftconvolve(seeds, streak_kernel(length, angle), mode="same")
    streaks = np.clip(ndimage.gaussian_filter(streaks, blur), 0.0, 1.0).astype(np.float32)
    rainy = 1.0 - (1.0 - gt) * (1.0 - streaks[..., None])
    rainy = ((1.0 - veil) * rainy + veil * airlight).astype(np.float32)
    return np.clip(rainy, 0.0, 1.0) if clip else rainy


def degrade(gt: np.ndarray, spec: DegradationSpec | Any, rng: np.random.Generator) -> np.ndarray:
    """Applies the degradation named by ``spec`` (a ``DegradationSpec`` or a data config).

    Returns a float32 array of the shape of ``gt``, rounded to 8 bits with ``spec.quantize``.
    """
    return degrade_with_level(gt, spec, rng)[0]


def degrade_with_level(
    gt: np.ndarray, spec: DegradationSpec | Any, rng: np.random.Generator
) -> tuple[np.ndarray, float | None]:
    """``degrade``, and the AWGN sigma it drew on the [0, 1] scale (sigma / 255; None for the
    degradations that are not AWGN). The same generator state gives the same image as
    ``degrade``."""
    if not isinstance(spec, DegradationSpec):
        spec = DegradationSpec.from_config(spec)
    gt = np.asarray(gt, dtype=np.float32)
    level = None
    name = spec.name
    if name == "camera" and rng.uniform() < spec.camera.awgn_fraction:
        name = "awgn"
    if name == "awgn":
        sigma = spec.noise_sigma
        if spec.noise_sigma_max:
            sigma = rng.uniform(spec.noise_sigma, spec.noise_sigma_max)
        degraded, level = add_gaussian_noise(gt, sigma, rng, clip=spec.clip), sigma / 255.0
    elif name == "camera":
        degraded = add_camera_noise(gt, rng, spec.camera)
        level = float(np.std(degraded - gt))
    elif name == "lowlight":
        degraded = darken_low_light(gt, rng, spec.lowlight, clip=spec.clip)
    elif name == "rain":
        degraded = add_rain(gt, rng, spec.rain, clip=spec.clip)
    else:
        degraded = gt.copy()
    if spec.quantize:
        degraded = np.round(degraded * np.float32(255.0)) / np.float32(255.0)
    return degraded, level
