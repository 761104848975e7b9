"""Synthetic degradations of clean images, in numpy, seeded by the caller's generator.

Images are float arrays in [0, 1] of shape (H, W, C). Every random draw comes from the
``np.random.Generator`` passed in, so one generator state gives one degraded image.

Models (x: clean image, y: degraded image, clip: optional clipping to [0, 1]):

* ``awgn``: additive white Gaussian noise, sigma on the [0, 255] scale,
  ``y = clip(x + (sigma / 255) * n)``, ``n ~ N(0, 1)`` i.i.d. per pixel and channel.
* ``lowlight``: under-exposure then sensor noise,
  ``d = s * x ** g`` with ``g ~ U(gamma_min, gamma_max)`` and ``s ~ U(scale_min, scale_max)``
  drawn once per image, then the Poisson-Gaussian model
  ``y = clip(Poisson(peak * d) / peak + (read_sigma / 255) * n)``, ``n ~ N(0, 1)``:
  shot noise whose variance ``d / peak`` grows with the signal (``peak`` is the photon count
  of a white pixel) plus signal-independent read noise.
* ``none``: ``y = x``; for paired data, whose degraded input is read from disk.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

DEGRADATIONS = ("awgn", "lowlight", "none")


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
        checks = {
            "gamma_min": 0 < self.gamma_min <= self.gamma_max,
            "scale_min": 0 < self.scale_min <= self.scale_max <= 1,
            "shot_peak": self.shot_peak > 0,
            "read_sigma": self.read_sigma >= 0,
        }
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"invalid data.lowlight.{key} in {self}")


@dataclasses.dataclass(frozen=True)
class DegradationSpec:
    """The degradation named by the data config, with its parameters.

    Attributes:
      name: one of ``DEGRADATIONS`` (config ``data.degradation``).
      noise_sigma: AWGN sigma on the [0, 255] scale (``data.noise_sigma``).
      clip: clip degraded images to [0, 1] (``data.clip``).
      lowlight: low-light parameters (``data.lowlight``).
    """

    name: str
    noise_sigma: float = 25.0
    clip: bool = True
    lowlight: LowLightParams = LowLightParams()

    def __post_init__(self):
        if self.name not in DEGRADATIONS:
            raise ValueError(f"data.degradation must be one of {DEGRADATIONS}, got {self.name!r}")
        if self.noise_sigma < 0:
            raise ValueError(f"data.noise_sigma must be >= 0, got {self.noise_sigma}")

    @classmethod
    def from_config(cls, data_config: Any) -> DegradationSpec:
        """Reads ``degradation``, ``noise_sigma``, ``clip`` and ``lowlight`` of the data config."""
        lowlight = data_config.lowlight
        return cls(
            name=data_config.degradation,
            noise_sigma=float(data_config.noise_sigma),
            clip=bool(data_config.clip),
            lowlight=LowLightParams(
                gamma_min=float(lowlight.gamma_min),
                gamma_max=float(lowlight.gamma_max),
                scale_min=float(lowlight.scale_min),
                scale_max=float(lowlight.scale_max),
                shot_peak=float(lowlight.shot_peak),
                read_sigma=float(lowlight.read_sigma),
            ),
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


def degrade(gt: np.ndarray, spec: DegradationSpec | Any, rng: np.random.Generator) -> np.ndarray:
    """Applies the degradation named by ``spec`` (a ``DegradationSpec`` or a data config).

    Returns a float32 array of the shape of ``gt``.
    """
    if not isinstance(spec, DegradationSpec):
        spec = DegradationSpec.from_config(spec)
    gt = np.asarray(gt, dtype=np.float32)
    if spec.name == "awgn":
        return add_gaussian_noise(gt, spec.noise_sigma, rng, clip=spec.clip)
    if spec.name == "lowlight":
        return darken_low_light(gt, rng, spec.lowlight, clip=spec.clip)
    return gt.copy()
