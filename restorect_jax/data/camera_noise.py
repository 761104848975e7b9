"""Camera noise on sRGB images by "unprocessing" (Brooks et al., CVPR 2019), in numpy.

A clean sRGB image x in [0, 1] is taken back to what a camera's sensor recorded, given the
noise a sensor adds there, and developed again, with every camera parameter drawn per image
from the generator passed in:

1. linear light: the inverse tone curve `t^-1(y) = 1/2 - sin(asin(1 - 2y) / 3)` (the inverse of
   the smoothstep `t(x) = 3x^2 - 2x^3`), then `max(y, 1e-8)^2.2`;
2. camera colour: `c = M l`, with `M` the sRGB-to-camera matrix of a random convex mix of four
   cameras' XYZ-to-camera matrices (rows normalised to sum 1, so grey stays grey);
3. white balance undone: red and blue divided by gains `g_r ~ U(1.9, 2.4)`, `g_b ~ U(1.5, 1.9)`,
   all channels by a brightness gain `1 / N(0.8, 0.1)`;
4. the RGGB Bayer mosaic: one colour per pixel;
5. sensor noise at each photosite, `r + n`, `n ~ N(0, shot * r + read)`: shot noise whose
   variance grows with the signal, plus read noise, with `log shot ~ U(log 1e-4, log 0.012)` and
   `log read ~ N(2.18 log shot + 1.20, 0.26^2)` (the log-linear relation cameras follow);
6. bilinear demosaicking of the noise, which gives it the spatial and cross-channel correlation
   of a real camera's noise (the clean signal keeps its full resolution: only the noise passes
   through the mosaic, so the clean image is developed back exactly);
7. development: white balance, `M^-1`, clipping, gamma `l^(1/2.2)` and the tone curve;
8. optionally JPEG at a random quality (real photos, PolyU's among them, are JPEGs);
9. the caller rounds to 8 bits (`data.quantize`).

Without noise, steps 1-7 return x (up to float rounding), so the clean image stays the target.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

# XYZ-to-camera matrices of four cameras (from their DNG colour matrices), as in Brooks et al.
XYZ_TO_CAMERAS = np.array(
    [
        [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
        [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
        [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
        [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
    ]
)
# Linear sRGB (D65) to CIE XYZ.
SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
GAMMA = 2.2


@dataclasses.dataclass(frozen=True)
class CameraNoiseParams:
    """Ranges of the camera model (config `data.camera`).

    Attributes:
      shot_min, shot_max: range of the shot-noise factor (log-uniform), on the [0, 1] scale of
        the linear signal: variance `shot * signal` (Brooks et al.: 1e-4 to 0.012).
      read_slope, read_intercept, read_spread: `log read ~ N(slope log shot + intercept,
        spread^2)`.
      jpeg_probability: fraction of images saved as JPEG after development.
      jpeg_quality_min, jpeg_quality_max: range of their JPEG quality (uniform integer).
      awgn_fraction: fraction of images that get the AWGN model of `data.noise_sigma` /
        `data.noise_sigma_max` instead, so that one model serves both kinds of noise.
    """

    shot_min: float = 1e-4
    shot_max: float = 0.012
    read_slope: float = 2.18
    read_intercept: float = 1.20
    read_spread: float = 0.26
    jpeg_probability: float = 0.5
    jpeg_quality_min: int = 60
    jpeg_quality_max: int = 95
    awgn_fraction: float = 0.5

    def __post_init__(self):
        checks = {
            "shot_min": 0 < self.shot_min <= self.shot_max,
            "shot_max": self.shot_max < 1,
            "read_spread": self.read_spread >= 0,
            "jpeg_probability": 0 <= self.jpeg_probability <= 1,
            "jpeg_quality_min": 1 <= self.jpeg_quality_min <= self.jpeg_quality_max,
            "jpeg_quality_max": self.jpeg_quality_max <= 100,
            "awgn_fraction": 0 <= self.awgn_fraction <= 1,
        }
        for key, ok in checks.items():
            if not ok:
                value = getattr(self, key)
                raise ValueError(f"config.data.camera.{key}={value!r}: out of range ({self})")

    @classmethod
    def from_config(cls, camera_config: Any) -> CameraNoiseParams:
        """The params of a `data.camera` ConfigDict (missing keys keep their defaults)."""
        names = {field.name: field.type for field in dataclasses.fields(cls)}
        given = {key: camera_config[key] for key in names if key in (camera_config or {})}
        unknown = sorted(set(camera_config or {}) - set(names))
        if unknown:
            raise ValueError(
                f"config.data.camera.{unknown[0]}: unknown key (known: {sorted(names)})"
            )
        return cls(**given)


@dataclasses.dataclass(frozen=True)
class Camera:
    """One image's draw of the camera parameters."""

    rgb_to_camera: np.ndarray  # (3, 3)
    gains: np.ndarray  # (3,): white-balance gains times the brightness gain
    shot: float
    read: float
    jpeg_quality: int | None


def draw_camera(rng: np.random.Generator, params: CameraNoiseParams) -> Camera:
    """Draws one image's camera (see the module docstring, steps 2, 3, 5 and 8)."""
    weights = rng.uniform(1e-8, 1.0, len(XYZ_TO_CAMERAS))
    xyz_to_camera = np.tensordot(weights / weights.sum(), XYZ_TO_CAMERAS, axes=1)
    rgb_to_camera = xyz_to_camera @ SRGB_TO_XYZ
    rgb_to_camera /= rgb_to_camera.sum(axis=-1, keepdims=True)
    brightness = 1.0 / rng.normal(0.8, 0.1)
    gains = np.array([rng.uniform(1.9, 2.4), 1.0, rng.uniform(1.5, 1.9)]) * brightness
    log_shot = rng.uniform(np.log(params.shot_min), np.log(params.shot_max))
    log_read = rng.normal(params.read_slope * log_shot + params.read_intercept, params.read_spread)
    quality = None
    if rng.uniform() < params.jpeg_probability:
        quality = int(rng.integers(params.jpeg_quality_min, params.jpeg_quality_max + 1))
    return Camera(rgb_to_camera, gains, float(np.exp(log_shot)), float(np.exp(log_read)), quality)


def inverse_tone(y: np.ndarray) -> np.ndarray:
    """The inverse of the smoothstep tone curve: `1/2 - sin(asin(1 - 2y) / 3)`."""
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * np.clip(y, 0.0, 1.0)) / 3.0)


def tone(x: np.ndarray) -> np.ndarray:
    """The smoothstep tone curve `3x^2 - 2x^3` on [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return 3.0 * x**2 - 2.0 * x**3


def unprocess(srgb: np.ndarray, camera: Camera) -> np.ndarray:
    """sRGB (H, W, 3) in [0, 1] to the camera's linear, white-balance-free colour (steps 1-3)."""
    linear = np.maximum(inverse_tone(srgb), 1e-8) ** GAMMA
    return (linear @ camera.rgb_to_camera.T) / camera.gains


def develop(raw: np.ndarray, camera: Camera) -> np.ndarray:
    """The camera's linear colour (H, W, 3) back to sRGB in [0, 1] (step 7)."""
    linear = (raw * camera.gains) @ np.linalg.inv(camera.rgb_to_camera).T
    return tone(np.clip(linear, 1e-8, 1.0) ** (1.0 / GAMMA))


def bayer_masks(height: int, width: int) -> np.ndarray:
    """(H, W, 3) 0/1 masks of the RGGB mosaic: red at (even, even), blue at (odd, odd)."""
    rows, cols = np.mgrid[0:height, 0:width]
    red = (rows % 2 == 0) & (cols % 2 == 0)
    blue = (rows % 2 == 1) & (cols % 2 == 1)
    return np.stack([red, ~(red | blue), blue], axis=-1).astype(np.float64)


def mosaic(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) to the (H, W) Bayer plane: each pixel keeps its RGGB colour."""
    return np.sum(image * bayer_masks(*image.shape[:2]), axis=-1)


def _spread(plane: np.ndarray, axis: int, centre: float) -> np.ndarray:
    """`[0.5, centre, 0.5]` along `axis`, with `mirror` borders (they keep the mosaic's parity)."""
    return ndimage.convolve1d(plane, [0.5, centre, 0.5], axis=axis, mode="mirror")


def demosaic(plane: np.ndarray) -> np.ndarray:
    """Bilinear demosaicking of an RGGB plane (H, W) to (H, W, 3).

    Each colour keeps its own photosites. Red and blue fill their rows, then their columns,
    each new value the mean of its two neighbours (`[1/2, 1, 1/2]` twice); green takes the mean
    of its horizontal and vertical neighbour pairs. Every value is a mean of pairs, so a flat
    plane comes back exactly flat.
    """
    masks = bayer_masks(*plane.shape)
    red, green, blue = (plane * masks[..., c] for c in range(3))
    pairs = 0.5 * (_spread(green, 1, 0.0) + _spread(green, 0, 0.0))
    full_green = green + (1.0 - masks[..., 1]) * pairs
    full = [_spread(_spread(colour, 1, 1.0), 0, 1.0) for colour in (red, blue)]
    return np.stack([full[0], full_green, full[1]], axis=-1)


def sensor_noise(raw: np.ndarray, shot: float, read: float, rng: np.random.Generator) -> np.ndarray:
    """Noise of one mosaic plane (H, W): `N(0, shot * max(raw, 0) + read)` per photosite."""
    variance = shot * np.maximum(raw, 0.0) + read
    return np.sqrt(variance) * rng.standard_normal(raw.shape)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """`image` (H, W, 3) in [0, 1] saved as an 8-bit JPEG at `quality` and read back."""
    buffer = io.BytesIO()
    pixels = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer), dtype=np.float64) / 255.0


def add_camera_noise(
    gt: np.ndarray, rng: np.random.Generator, params: CameraNoiseParams
) -> np.ndarray:
    """`gt` (H, W, 3) in [0, 1] as a camera with randomly drawn parameters would have shot it
    (module docstring, steps 1-8); float32 in [0, 1]. Grey (H, W, 1) images pass as RGB."""
    grey = gt.shape[-1] == 1
    srgb = np.repeat(gt, 3, axis=-1) if grey else gt
    camera = draw_camera(rng, params)
    raw = unprocess(srgb.astype(np.float64), camera)
    noise = demosaic(sensor_noise(mosaic(raw), camera.shot, camera.read, rng))
    noisy = develop(raw + noise, camera)
    if camera.jpeg_quality is not None:
        noisy = jpeg(noisy, camera.jpeg_quality)
    noisy = noisy.astype(np.float32)
    return noisy.mean(axis=-1, keepdims=True) if grey else noisy
