"""No-reference image-quality metrics: NIQE, BRISQUE, PIQE, and the underwater UCIQE and UIQM.

These metrics are defined by their reference code more than by their papers, so each function
states the convention it follows and the reference it reproduces:

* `niqe` (lower is better): BasicSR's ``calculate_niqe`` (what papers report) by default;
  ``convention="skvideo"`` reproduces ``skvideo.measure.niqe`` (scikit-video 1.1.11).
* `brisque` (lower is better): OpenCV's ``cv::quality::QualityBRISQUE`` with the LIVE model.
* `piqe` (lower is better): MATLAB's ``piqe`` by default; ``convention="pypiqe"`` reproduces
  ``pypiqe.piqe`` (1.2).
* `uciqe`, `uiqm` (and its parts `uicm`, `uism`, `uiconm`; higher is better): no canonical code;
  each docstring states the convention.

Inputs are numpy float images in [0, 1]: (H, W, 3) RGB, or (H, W) / (H, W, 1) grey (NIQE, BRISQUE
and PIQE only). Like the full-reference metrics, every metric scores the 8-bit image a saved PNG
would hold: the input is clipped to [0, 1] and rounded to 256 levels first. Every metric returns a
Python float. Numpy and scipy only: the references are CPU code, and several of their results
depend on float32 rounding, which is reproduced here where it matters.

NIQE and BRISQUE read model files from ``params_dir``, which defaults to
``$RESTORECT_DATA_DIR/metrics`` (``RESTORECT_DATA_DIR`` names the data root, e.g.
``../shared/data``): ``niqe_pris_params.npz`` (BasicSR's copy of LIVE's pristine model) and
``brisque_model_live.yml`` / ``brisque_range_live.yml`` (OpenCV's LIVE SVR and feature range).
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from scipy import linalg, ndimage, special

__all__ = [
    "DATA_DIR_ENV",
    "BrisqueModel",
    "NiqeParams",
    "brisque",
    "brisque_features",
    "load_brisque_model",
    "load_niqe_params",
    "metric_params_dir",
    "niqe",
    "piqe",
    "uciqe",
    "uicm",
    "uiconm",
    "uiqm",
    "uism",
]

DATA_DIR_ENV = "RESTORECT_DATA_DIR"
"""Environment variable naming the data root; the model files live in its ``metrics/`` folder."""

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------------------------
# Model files
# --------------------------------------------------------------------------------------------


def metric_params_dir(params_dir: PathLike | None = None) -> Path:
    """The folder of the metric model files: ``params_dir``, else ``$RESTORECT_DATA_DIR/metrics``.

    Raises `FileNotFoundError` when neither is set.
    """
    if params_dir is not None:
        return Path(params_dir)
    root = os.environ.get(DATA_DIR_ENV)
    if not root:
        raise FileNotFoundError(
            "No location for the metric model files: pass params_dir=<folder with the files> or "
            f"set ${DATA_DIR_ENV} to the data root (whose metrics/ folder holds them)."
        )
    return Path(root) / "metrics"


def _params_file(name: str, params_dir: PathLike | None) -> Path:
    path = metric_params_dir(params_dir) / name
    if not path.is_file():
        origin = (
            "from the params_dir argument"
            if params_dir is not None
            else f"from ${DATA_DIR_ENV}={os.environ.get(DATA_DIR_ENV)!r} + /metrics"
        )
        raise FileNotFoundError(
            f"Metric model file not found: {path} (folder {origin}). Pass params_dir=<folder "
            f"holding {name}> or set ${DATA_DIR_ENV} to the data root whose metrics/ holds it."
        )
    return path


@dataclass(frozen=True)
class NiqeParams:
    """NIQE's pristine multivariate Gaussian and its smoothing window.

    Attributes:
      mu: (36,) mean of the pristine patch features.
      cov: (36, 36) covariance of the pristine patch features.
      window: (7, 7) Gaussian window (sigma 7/6, sums to 1) for the local mean and deviation.
    """

    mu: np.ndarray
    cov: np.ndarray
    window: np.ndarray


@functools.lru_cache(maxsize=8)
def _load_niqe_params_cached(path: str) -> NiqeParams:
    with np.load(path) as data:
        params = NiqeParams(
            mu=np.asarray(data["mu_pris_param"], np.float64).reshape(-1),
            cov=np.asarray(data["cov_pris_param"], np.float64),
            window=np.asarray(data["gaussian_window"], np.float64),
        )
    for array in (params.mu, params.cov, params.window):
        array.flags.writeable = False
    return params


def load_niqe_params(params_dir: PathLike | None = None) -> NiqeParams:
    """Loads ``niqe_pris_params.npz`` (``mu_pris_param``, ``cov_pris_param``, ``gaussian_window``)."""
    return _load_niqe_params_cached(str(_params_file("niqe_pris_params.npz", params_dir)))


@dataclass(frozen=True)
class BrisqueModel:
    """BRISQUE's feature range and RBF epsilon-SVR, as read from OpenCV's YAML files.

    Features ``f`` are scaled to ``x = -1 + 2 (f - feature_min) / (feature_max - feature_min)`` and
    scored ``sum_i alpha_i exp(-gamma |x - sv_i|^2) - rho``.

    Attributes:
      feature_min, feature_max: (36,) float32.
      support_vectors: (n, 36) float32.
      alpha: (n,) float64 decision-function coefficients.
      rho: decision-function offset.
      gamma: RBF kernel parameter.
    """

    feature_min: np.ndarray
    feature_max: np.ndarray
    support_vectors: np.ndarray
    alpha: np.ndarray
    rho: float
    gamma: float


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _numbers(text: str) -> np.ndarray:
    return np.array([float(token) for token in _NUMBER.findall(text)])


def _yaml_scalar(text: str, key: str, path: Path) -> str:
    match = re.search(rf"^\s*{key}:\s*(\S+)\s*$", text, flags=re.MULTILINE)
    if match is None:
        raise ValueError(f"{path}: no '{key}:' entry")
    return match.group(1)


def _yaml_list(text: str, key: str, path: Path) -> np.ndarray:
    match = re.search(rf"^\s*{key}:\s*\[([^\]]*)\]", text, flags=re.MULTILINE)
    if match is None:
        raise ValueError(f"{path}: no '{key}: [...]' list")
    return _numbers(match.group(1))


@functools.lru_cache(maxsize=4)
def _load_brisque_model_cached(model_path: str, range_path: str) -> BrisqueModel:
    model_file, range_file = Path(model_path), Path(range_path)
    text = model_file.read_text()
    if _yaml_scalar(text, "svmType", model_file) not in ("EPS_SVR", "NU_SVR"):
        raise ValueError(f"{model_file}: expected a regression SVM (EPS_SVR or NU_SVR)")
    kernel = re.search(r"kernel:\s*\n\s*type:\s*(\w+)\s*\n\s*gamma:\s*(\S+)", text)
    if kernel is None or kernel.group(1) != "RBF":
        raise ValueError(f"{model_file}: expected an RBF kernel with a gamma")
    var_count = int(_yaml_scalar(text, "var_count", model_file))
    sv_total = int(_yaml_scalar(text, "sv_total", model_file))
    sv_start, df_start = text.find("support_vectors:"), text.find("decision_functions:")
    if sv_start < 0 or df_start < sv_start:
        raise ValueError(f"{model_file}: no support_vectors / decision_functions sections")
    vectors = _numbers(text[sv_start + len("support_vectors:") : df_start])
    if vectors.size != sv_total * var_count:
        raise ValueError(
            f"{model_file}: {vectors.size} support-vector values, expected {sv_total} x {var_count}"
        )
    decision = text[df_start:]
    alpha = _yaml_list(decision, "alpha", model_file)
    if re.search(r"^\s*index:", decision, flags=re.MULTILINE):
        index = _yaml_list(decision, "index", model_file).astype(np.int64)
    else:
        index = np.arange(sv_total)
    if alpha.size != index.size:
        raise ValueError(f"{model_file}: {alpha.size} alphas for {index.size} support vectors")

    range_text = range_file.read_text()
    rows = int(_yaml_scalar(range_text, "rows", range_file))
    cols = int(_yaml_scalar(range_text, "cols", range_file))
    data = _yaml_list(range_text, "data", range_file)
    if (rows, cols) != (2, var_count) or data.size != rows * cols:
        raise ValueError(f"{range_file}: expected a 2 x {var_count} range matrix")
    feature_range = data.reshape(2, cols).astype(np.float32)
    model = BrisqueModel(
        feature_min=feature_range[0],
        feature_max=feature_range[1],
        support_vectors=vectors.reshape(sv_total, var_count).astype(np.float32)[index],
        alpha=alpha.astype(np.float64),
        rho=float(_yaml_scalar(decision, "rho", model_file)),
        gamma=float(kernel.group(2)),
    )
    for array in (model.feature_min, model.feature_max, model.support_vectors, model.alpha):
        array.flags.writeable = False
    return model


def load_brisque_model(params_dir: PathLike | None = None) -> BrisqueModel:
    """Parses ``brisque_model_live.yml`` (OpenCV ``cv::ml::SVM``) and ``brisque_range_live.yml``."""
    return _load_brisque_model_cached(
        str(_params_file("brisque_model_live.yml", params_dir)),
        str(_params_file("brisque_range_live.yml", params_dir)),
    )


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------


def _to_uint8(image: np.ndarray, *, colour: bool = False) -> np.ndarray:
    """Validates a [0, 1] float image; returns its 8-bit version, (H, W, 3) or (H, W)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)):
        raise ValueError(f"expected an (H, W, 3), (H, W, 1) or (H, W) image, got {image.shape}")
    if colour and image.ndim != 3:
        raise ValueError(f"this metric needs an (H, W, 3) RGB image, got {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"expected a float image in [0, 1], got dtype {image.dtype}")
    if not np.all(np.isfinite(image)):
        raise ValueError("the image has non-finite values")
    return np.round(np.clip(image.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def _grey_opencv(image_u8: np.ndarray) -> np.ndarray:
    """OpenCV 5's 8-bit RGB to grey, ``(9798 R + 19235 G + 3735 B + 2^14) >> 15`` (exact)."""
    if image_u8.ndim == 2:
        return image_u8
    r, g, b = (image_u8[..., c].astype(np.int32) for c in range(3))
    return ((9798 * r + 19235 * g + 3735 * b + (1 << 14)) >> 15).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# The asymmetric generalised Gaussian (AGGD) moment-matching fit, shared by NIQE and BRISQUE
# --------------------------------------------------------------------------------------------


def _moment_ratio(shape: np.ndarray) -> np.ndarray:
    """``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))`` of a generalised Gaussian; increasing in ``a``."""
    return special.gamma(2.0 / shape) ** 2 / (
        special.gamma(1.0 / shape) * special.gamma(3.0 / shape)
    )


def _opencv_shape_grid() -> np.ndarray:
    values, shape = [], 0.2
    while shape < 10:  # OpenCV steps a double by 0.001 and keeps its rounding
        values.append(shape)
        shape += 0.001
    return np.array(values)


_Fit = Literal["basicsr", "skvideo", "opencv"]
_SHAPES: dict[str, np.ndarray] = {
    "basicsr": np.arange(0.2, 10.001, 0.001),
    "skvideo": np.arange(0.2, 10, 0.001),
    "opencv": _opencv_shape_grid(),
}
_RATIOS = {name: _moment_ratio(grid) for name, grid in _SHAPES.items()}
if not all(np.all(np.diff(ratio) > 0) for ratio in _RATIOS.values()):
    raise AssertionError("the shape search below needs increasing moment ratios")


def _nearest_shape(target: np.ndarray, fit: _Fit) -> np.ndarray:
    """The grid shape whose moment ratio is nearest ``target``, with each reference's tie rules.

    numpy's ``argmin`` (BasicSR, scikit-video) keeps the first of two tied candidates and gives the
    first grid point for a non-finite target; OpenCV's early-exit scan keeps the later one, runs
    to the end for NaN and stops before the grid (shape 0) for +inf.
    """
    grid, ratio = _SHAPES[fit], _RATIOS[fit]
    finite = np.isfinite(target)
    value = np.where(finite, target, 0.0)
    hi = np.clip(np.searchsorted(ratio, value), 0, grid.size - 1)
    lo = np.clip(hi - 1, 0, grid.size - 1)
    d_lo, d_hi = np.abs(ratio[lo] - value), np.abs(ratio[hi] - value)
    if fit == "opencv":
        shape = grid[np.where(d_hi <= d_lo, hi, lo)]
        return np.where(finite, shape, np.where(np.isnan(target), grid[-1], 0.0))
    return np.where(finite, grid[np.where(d_lo <= d_hi, lo, hi)], grid[0])


def _aggd_fit(x: np.ndarray, fit: _Fit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fits an AGGD to each row of ``x`` (N, M) by moment matching; returns ``(alpha, sl, sr)``.

    ``sl^2`` and ``sr^2`` are the mean squares of the negative and the positive samples; with
    ``g = sl / sr`` and ``r = mean(|x|)^2 / mean(x^2)``, the shape ``alpha`` is the grid value whose
    `_moment_ratio` is nearest ``r (g^3 + 1)(g + 1) / (g^2 + 1)^2``. The references differ on zeros
    and empty sides, reproduced here: scikit-video counts zeros as positive and takes 0 for an
    empty side; BasicSR and OpenCV leave zeros out of both sides and get NaN for an empty one.
    """
    x = np.asarray(x, np.float64)
    square = x * x
    negative = x < 0
    positive = x >= 0 if fit == "skvideo" else x > 0
    n_neg, n_pos = negative.sum(axis=1), positive.sum(axis=1)
    sum_neg = np.where(negative, square, 0.0).sum(axis=1)
    sum_pos = np.where(positive, square, 0.0).sum(axis=1)
    mean_abs, mean_square = np.abs(x).mean(axis=1), square.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if fit == "skvideo":
            sl = np.where(n_neg > 0, np.sqrt(sum_neg / np.maximum(n_neg, 1)), 0.0)
            sr = np.where(n_pos > 0, np.sqrt(sum_pos / np.maximum(n_pos, 1)), 0.0)
            g = np.where(sr != 0, sl / np.where(sr != 0, sr, 1.0), np.inf)
            r = np.where(mean_square != 0, mean_abs**2 / mean_square, np.inf)
        else:
            sl, sr = np.sqrt(sum_neg / n_neg), np.sqrt(sum_pos / n_pos)
            g = sl / sr
            r = mean_abs**2 / mean_square
        target = r * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    return _nearest_shape(target, fit), sl, sr


# --------------------------------------------------------------------------------------------
# NIQE
# --------------------------------------------------------------------------------------------


def _luma_basicsr(image_u8: np.ndarray) -> np.ndarray:
    """Rounded BT.601 luma ``round(16 + 65.481 R + 128.553 G + 24.966 B)``, R, G, B in [0, 1].

    MATLAB's ``rgb2ycbcr`` Y in [16, 235], evaluated in BasicSR's float32 steps so that half-way
    values round the same way; a grey image passes through as its 8-bit values.
    """
    if image_u8.ndim == 2:
        return image_u8.astype(np.float64)
    x = (image_u8.astype(np.float32) / np.float32(255.0)).astype(np.float64)
    y = x[..., 2] * 24.966 + x[..., 1] * 128.553 + x[..., 0] * 65.481 + 16.0
    y = (y / 255.0).astype(np.float32) * np.float32(255.0)
    return np.round(y).astype(np.float64)


def _keys_cubic(x: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter ``a`` (MATLAB and Pillow use -0.5)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def _matlab_resize_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) matrix of MATLAB ``imresize`` bicubic (antialiased, symmetric padding).

    Output pixel ``u`` (1-based) centres at ``u / s + (1 - 1/s) / 2`` for the scale
    ``s = out / in``; when shrinking, the kernel is stretched, ``w(d) = s k(s d)``; the weights of
    a pixel are normalised to sum 1, and taps beyond the border mirror back (``-1 -> 0``).
    """
    scale = out_size / in_size
    width = 4.0 / scale if scale < 1 else 4.0
    centre = np.arange(1, out_size + 1) / scale + 0.5 * (1 - 1 / scale)
    taps = np.floor(centre - width / 2)[:, None] + np.arange(math.ceil(width) + 2)[None, :]
    distance = centre[:, None] - taps
    if scale < 1:
        weights = scale * _keys_cubic(distance * scale, -0.5)
    else:
        weights = _keys_cubic(distance, -0.5)
    weights /= weights.sum(axis=1, keepdims=True)
    index = np.mod(taps.astype(np.int64) - 1, 2 * in_size)
    index = np.where(index >= in_size, 2 * in_size - 1 - index, index)
    matrix = np.zeros((out_size, in_size))
    rows = np.repeat(np.arange(out_size), index.shape[1])
    np.add.at(matrix, (rows, index.ravel()), weights.ravel())
    return matrix


def _pillow_resize_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) matrix of Pillow's bicubic resampling (``a = -0.5``).

    Pillow centres output pixel ``i`` at ``(i + 0.5) in / out``, stretches the kernel (support 2)
    by the shrink factor, cuts it at the image border and renormalises what is left.
    """
    scale = in_size / out_size
    stretch = max(scale, 1.0)
    support = 2.0 * stretch
    centre = (np.arange(out_size) + 0.5) * scale
    first = np.maximum(np.trunc(centre - support + 0.5), 0)
    stop = np.minimum(np.trunc(centre + support + 0.5), in_size)
    j = np.arange(in_size)[None, :]
    weights = _keys_cubic((j - centre[:, None] + 0.5) / stretch, -0.5)
    weights = np.where((j >= first[:, None]) & (j < stop[:, None]), weights, 0.0)
    total = weights.sum(axis=1, keepdims=True)
    return weights / np.where(total != 0, total, 1.0)


def _skvideo_taps() -> np.ndarray:
    """scikit-video's 7-tap Gaussian (sigma 7/6), evaluated and normalised in float32 as it does."""
    variance = np.float32(7 / 6) * np.float32(7 / 6)
    tails = [np.exp(np.float32(-0.5) * np.float32(i * i) / variance) for i in (1, 2, 3)]
    total = np.float32(1.0)
    for tail in tails:
        total = total + np.float32(2.0) * tail
    taps = [tails[2], tails[1], tails[0], np.float32(1.0), tails[0], tails[1], tails[2]]
    return np.array([np.float32(tap) / total for tap in taps], dtype=np.float64)


def _niqe_mscn(image: np.ndarray, window: np.ndarray, convention: str) -> np.ndarray:
    """MSCN map ``(I - m) / (s + 1)``, ``m`` and ``s^2 = |E[I^2] - m^2|`` under the Gaussian window.

    Both references compute it in float32, whose rounding decides the values in flat areas (where
    ``E[I^2] - m^2`` cancels), so it is reproduced: BasicSR convolves with the 7x7 window and
    replicates the border; scikit-video filters rows then columns with its 7-tap window (rounding
    to float32 after each pass) and pads with zeros.
    """
    x = image.astype(np.float32)
    if convention == "skvideo":
        taps = _skvideo_taps()

        def smooth(a: np.ndarray) -> np.ndarray:
            a = ndimage.correlate1d(a, taps, axis=0, mode="constant")
            return ndimage.correlate1d(a, taps, axis=1, mode="constant")

    else:

        def smooth(a: np.ndarray) -> np.ndarray:
            return ndimage.convolve(a, window, mode="nearest")

    mu = smooth(x)
    sigma = np.sqrt(np.abs(smooth(x * x) - mu * mu))
    return ((x - mu) / (sigma + np.float32(1.0))).astype(np.float64)


def _niqe_block_features(mscn: np.ndarray, block: int, convention: str) -> np.ndarray:
    """The 18 NIQE features of each ``block`` x ``block`` tile of an MSCN map, (tiles, 18).

    Per tile: the AGGD fit (`_aggd_fit`) of the MSCN values gives ``[alpha, (bl + br) / 2]``; the
    fits of its products with the horizontal, vertical, diagonal and anti-diagonal neighbours
    (circular within the tile) give ``[alpha, (br - bl) Gamma(2/alpha) / Gamma(1/alpha), bl, br]``, where
    ``b = s sqrt(Gamma(1/alpha) / Gamma(3/alpha))``. scikit-video puts ``bl`` where ``br`` belongs
    in both diagonal groups; ``convention="skvideo"`` keeps that.
    """
    rows, cols = mscn.shape[0] // block, mscn.shape[1] // block
    tiles = mscn[: rows * block, : cols * block].reshape(rows, block, cols, block)
    tiles = tiles.transpose(0, 2, 1, 3).reshape(rows * cols, block, block)
    fit: _Fit = "skvideo" if convention == "skvideo" else "basicsr"
    features = []
    for group, shift in enumerate((None, (0, 1), (1, 0), (1, 1), (1, -1))):
        data = tiles if shift is None else tiles * np.roll(tiles, shift, axis=(1, 2))
        alpha, sl, sr = _aggd_fit(data.reshape(len(tiles), -1), fit)
        ratio = np.sqrt(special.gamma(1.0 / alpha) / special.gamma(3.0 / alpha))
        bl, br = sl * ratio, sr * ratio
        if shift is None:
            features += [alpha, (bl + br) / 2]
        else:
            mean = (br - bl) * special.gamma(2.0 / alpha) / special.gamma(1.0 / alpha)
            right = bl if convention == "skvideo" and group >= 3 else br
            features += [alpha, mean, bl, right]
    return np.stack(features, axis=1)


def _half_size(image: np.ndarray, convention: str) -> np.ndarray:
    """The bicubic half-size image NIQE's second scale uses, rounded to float32 like the refs."""
    h, w = image.shape
    if convention == "skvideo":  # Pillow on float32 data: rounds after each pass
        out = (image @ _pillow_resize_matrix(w, w // 2).T).astype(np.float32)
        return (_pillow_resize_matrix(h, h // 2) @ out.astype(np.float64)).astype(np.float32)
    out = _matlab_resize_matrix(h, h // 2) @ image @ _matlab_resize_matrix(w, w // 2).T
    return out.astype(np.float32)


def _niqe_score(luma: np.ndarray, params: NiqeParams, convention: str) -> float:
    block = 96
    height, width = luma.shape
    rows, cols = height // block, width // block
    if rows * cols < 2:
        raise ValueError(f"NIQE needs at least two 96x96 blocks, got a {height}x{width} image")
    image = luma[: rows * block, : cols * block].astype(np.float64)
    features = []
    for scale in (1, 2):
        mscn = _niqe_mscn(image, params.window, convention)
        features.append(_niqe_block_features(mscn, block // scale, convention))
        if scale == 1:
            image = _half_size(image, convention).astype(np.float64)
    feats = np.concatenate(features, axis=1)
    if convention == "skvideo":
        mu = feats.mean(axis=0)
        cov = np.cov(feats.T)
        inverse = linalg.pinv((params.cov + cov) / 2)
    else:  # MATLAB's nanmean and nancov
        mu = np.nanmean(feats, axis=0)
        cov = np.cov(feats[~np.isnan(feats).any(axis=1)], rowvar=False)
        inverse = np.linalg.pinv((params.cov + cov) / 2)
    diff = params.mu - mu
    return float(np.sqrt(diff @ inverse @ diff))


def niqe(
    image: np.ndarray,
    crop_border: int = 0,
    *,
    convention: Literal["basicsr", "skvideo"] = "basicsr",
    params: NiqeParams | None = None,
    params_dir: PathLike | None = None,
) -> float:
    """Naturalness Image Quality Evaluator (Mittal, Soundararajan & Bovik 2013); lower is better.

    ``NIQE = sqrt((mu_p - mu)^T pinv((C_p + C) / 2) (mu_p - mu))``, the distance between the
    Gaussian (mean ``mu``, covariance ``C``) of the image's 96x96-block features and the pristine
    model (``mu_p``, ``C_p``). Each block has 36 features: the 18 of `_niqe_block_features` on the
    MSCN map ``(I - m) / (s + 1)`` of the luma ``I`` in [0, 255] (`_niqe_mscn`), and the same on
    the bicubic half-size image (48x48 blocks). Range [0, inf): about 2-5 for pristine photographs,
    growing with distortion (noise, blur, compression); unreliable below about 480x320.

    ``convention="basicsr"`` (default) reproduces BasicSR's ``calculate_niqe`` (the numbers papers
    report; BasicSR matches MATLAB's ``niqe`` on its test image to 1e-6): the grey image is the
    rounded Y channel (`_luma_basicsr`), blocks at the bottom/right that do not fit are dropped,
    the local statistics use the 7x7 window with a replicated border, the half-size image is
    MATLAB's ``imresize`` (antialiased bicubic), the AGGD shape grid is 0.2:0.001:10, and feature
    rows with NaN (flat blocks) are left out of the covariance.

    ``convention="skvideo"`` reproduces ``skvideo.measure.niqe`` applied to the same grey image. It
    differs in: zero padding (not replication) for the local statistics, and its own separable
    float32 window; Pillow's bicubic for the half-size image (renormalised at the border, not
    mirrored); zeros counted as positive in the AGGD fit, the grid ending at 9.999; ``bl`` in place
    of ``br`` in both diagonal feature groups; no NaN handling; ``scipy.linalg.pinv``. It also
    ships a different pristine model (up to 0.31 off in ``mu``, 0.68 in ``cov`` from
    ``niqe_pris_params.npz``): pass it as ``params`` to reproduce scikit-video's scores.

    Args:
      image: [0, 1] RGB (H, W, 3) or grey (H, W) / (H, W, 1); scored as its 8-bit version.
      crop_border: pixels cut from each edge before scoring (BasicSR's ``crop_border``).
      convention: "basicsr" or "skvideo", see above.
      params: the pristine model; default `load_niqe_params(params_dir)`. Its ``window`` is used
        by the "basicsr" convention only.
      params_dir: folder of ``niqe_pris_params.npz``; default ``$RESTORECT_DATA_DIR/metrics``.
    """
    if convention not in ("basicsr", "skvideo"):
        raise ValueError(f"unknown NIQE convention {convention!r}")
    if params is None:
        params = load_niqe_params(params_dir)
    luma = _luma_basicsr(_to_uint8(image))
    if crop_border:
        luma = luma[crop_border:-crop_border, crop_border:-crop_border]
    return _niqe_score(luma, params, convention)


# --------------------------------------------------------------------------------------------
# BRISQUE
# --------------------------------------------------------------------------------------------


def _opencv_resize_cubic(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """OpenCV's ``resize(INTER_CUBIC)`` of a float32 image (Keys ``a = -0.75``, edge replicated).

    Output pixel ``i`` samples ``(i + 0.5) in / out - 0.5`` from its four nearest pixels; the tap
    weights are evaluated in double and stored as float32 and the sums rounded once to float32.
    OpenCV 5 takes its sums in another order, so this agrees with it to a few float32 ulps, not
    bit for bit; a same-size resize is a copy, as in OpenCV.
    """

    def taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
        position = (np.arange(out_size) + 0.5) * (1.0 / (out_size / in_size)) - 0.5
        start = np.floor(position)
        t = position - start
        a = -0.75
        c0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
        c1 = ((a + 2) * t - (a + 3)) * t * t + 1
        c2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
        weights = np.stack([c0, c1, c2, 1 - c0 - c1 - c2], axis=1).astype(np.float32)
        index = start.astype(np.int64)[:, None] + np.arange(-1, 3)[None, :]
        return np.clip(index, 0, in_size - 1), weights.astype(np.float64)

    if (out_h, out_w) == image.shape:
        return image.copy()
    index_w, weight_w = taps(image.shape[1], out_w)
    rows = np.einsum("hwk,wk->hw", image.astype(np.float64)[:, index_w], weight_w)
    index_h, weight_h = taps(image.shape[0], out_h)
    return np.einsum("hkw,hk->hw", rows[index_h], weight_h).astype(np.float32)


GAUSS_7 = np.exp(-(np.arange(-3.0, 4.0) ** 2) / (2 * (7 / 6) ** 2))
GAUSS_7 /= GAUSS_7.sum()  # 7-tap Gaussian, sigma 7/6 (BRISQUE, PIQE)
_BRISQUE_TAPS = GAUSS_7.astype(np.float32)  # OpenCV's float32 kernel


def _fma32(a: np.ndarray, b: np.float32, c: np.ndarray) -> np.ndarray:
    """float32 fused multiply-add ``round(a b + c)``, through float64 (exact for the product)."""
    return (a.astype(np.float64) * np.float64(b) + c).astype(np.float32)


def _blur_opencv(image: np.ndarray) -> np.ndarray:
    """OpenCV's float32 ``GaussianBlur`` (7x7, sigma 7/6, replicated border), in its rounding order.

    The row pass adds the 7 taps left to right, the column pass the centre tap and then the sums
    of symmetric pairs, each step a float32 fused multiply-add as OpenCV's vector code does on
    x86-64 with AVX2 (its scalar tail, the last ``width mod 8`` columns, rounds products and sums
    separately). This matches OpenCV bit for bit except, rarely, in that tail; exactness matters
    because rounding decides where ``E[I^2] - m^2`` turns negative (see `brisque_features`).
    """
    height, width = image.shape
    vector = width - width % 8
    k = _BRISQUE_TAPS
    rows = np.pad(image, ((0, 0), (3, 3)), mode="edge")
    out = np.zeros((height, width), np.float32)
    for t in range(7):
        window = rows[:, t : t + width]
        out[:, :vector] = _fma32(window[:, :vector], k[t], out[:, :vector])
        product = window[:, vector:] * k[t]
        out[:, vector:] = product if t == 0 else out[:, vector:] + product
    cols = np.pad(out, ((3, 3), (0, 0)), mode="edge")
    result = cols[3 : 3 + height] * k[3]
    for t in range(1, 4):
        pair = cols[3 + t : 3 + t + height] + cols[3 - t : 3 - t + height]
        result[:, :vector] = _fma32(pair[:, :vector], k[3 + t], result[:, :vector])
        result[:, vector:] = result[:, vector:] + pair[:, vector:] * k[3 + t]
    return result


def _shifted(x: np.ndarray, di: int, dj: int) -> np.ndarray:
    """``y[i, j] = x[i + di, j + dj]``, zero where that falls outside."""
    height, width = x.shape
    out = np.zeros_like(x)
    out[max(-di, 0) : height - max(di, 0), max(-dj, 0) : width - max(dj, 0)] = x[
        max(di, 0) : height + min(di, 0), max(dj, 0) : width + min(dj, 0)
    ]
    return out


def brisque_features(image: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features (float32), as OpenCV's ``QualityBRISQUE::computeFeatures``.

    At two scales, the grey image ``I`` in [0, 1] (OpenCV's 8-bit grey times float32(1/255)) and
    its bicubic half-size copy: the MSCN map ``(I - m) / (s + 1/255)``, ``m`` and
    ``s = sqrt(E[I^2] - m^2)`` under a 7x7 Gaussian (sigma 7/6, replicated border), gives the AGGD
    fit ``[alpha, (sl^2 + sr^2) / 2]``; its products with the right, lower, lower-right and
    upper-right neighbours (zero past the border) give ``[alpha, eta, sl^2, sr^2]`` with
    ``eta = (sr - sl) Gamma(2/alpha) / Gamma(1/alpha) sqrt(Gamma(1/alpha) / Gamma(3/alpha))``.
    Like OpenCV this runs in float32, and pixels where rounding makes ``E[I^2] - m^2`` negative
    (OpenCV's NaN, in flat areas) count as zeros: in the sample size, on neither side of the fit.
    """
    grey = _grey_opencv(_to_uint8(image))
    level = grey.astype(np.float32) * np.float32(1.0 / 255.0)
    features: list[float] = []
    for scale in range(2):
        if scale:
            level = _opencv_resize_cubic(level, level.shape[0] // 2, level.shape[1] // 2)
        mu = _blur_opencv(level)
        variance = _blur_opencv(level * level) - mu * mu
        with np.errstate(invalid="ignore"):
            mscn = (level - mu) / (np.sqrt(variance) + np.float32(1.0 / 255.0))
        mscn = np.nan_to_num(mscn, nan=0.0)
        alpha, sl, sr = _aggd_fit(mscn.reshape(1, -1), "opencv")
        features += [alpha[0], (sl[0] ** 2 + sr[0] ** 2) / 2]
        for di, dj in ((0, 1), (1, 0), (1, 1), (-1, 1)):
            product = mscn * _shifted(mscn, di, dj)
            alpha, sl, sr = _aggd_fit(product.reshape(1, -1), "opencv")
            a, left, right = np.float64(alpha[0]), float(sl[0]), float(sr[0])
            with np.errstate(all="ignore"):
                spread = math.sqrt(special.gamma(1 / a)) / math.sqrt(special.gamma(3 / a))
                eta = (right - left) * special.gamma(2 / a) / special.gamma(1 / a) * spread
            features += [a, eta, left**2, right**2]
    return np.array(features, dtype=np.float32)


def brisque(image: np.ndarray, *, params_dir: PathLike | None = None) -> float:
    """Blind/Referenceless Image Spatial Quality Evaluator (Mittal, Moorthy & Bovik 2012).

    Lower is better; range [0, 100] (clamped, as OpenCV does); about 10-40 for good photographs,
    higher with blur, noise or compression. The 36 `brisque_features` are scaled to [-1, 1] with
    the LIVE range, ``x = -1 + 2 (f - f_min) / (f_max - f_min)``, and scored by the LIVE RBF
    epsilon-SVR, ``sum_i alpha_i exp(-gamma |x - sv_i|^2) - rho``, as OpenCV's ``QualityBRISQUE``
    (float32 features and kernel values, double sum). Colour images become grey with OpenCV's
    formula (`_grey_opencv`). A flat image, whose features are undefined, gives NaN (OpenCV
    returns 0 there).

    Args:
      image: [0, 1] RGB (H, W, 3) or grey (H, W) / (H, W, 1); scored as its 8-bit version.
      params_dir: folder of ``brisque_model_live.yml`` and ``brisque_range_live.yml``; default
        ``$RESTORECT_DATA_DIR/metrics``.
    """
    model = load_brisque_model(params_dir)
    features = brisque_features(image)
    one, two = np.float32(1.0), np.float32(2.0)
    scaled = -one + two * (features - model.feature_min) / (model.feature_max - model.feature_min)
    diff = (model.support_vectors - scaled[None, :]).astype(np.float64)
    exponent = (-model.gamma * np.sum(diff * diff, axis=1)).astype(np.float32)
    score = float(np.dot(model.alpha, np.exp(exponent).astype(np.float64)) - model.rho)
    if math.isnan(score):
        return score
    return min(max(score, 0.0), 100.0)


# --------------------------------------------------------------------------------------------
# PIQE
# --------------------------------------------------------------------------------------------

# MATLAB's rgb2gray weights: the first row of the inverse of the NTSC RGB-to-YIQ matrix.
_MATLAB_GREY = np.linalg.inv(
    np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])
)[0]


def mscn_map(image: np.ndarray, c: float) -> np.ndarray:
    """Mean-subtracted contrast-normalised map of a 2-D array, in float64 (PIQE's):
    ``(I - m) / (sqrt(|E[I^2] - m^2|) + c)``, m and E under the 7x7 Gaussian (sigma 7/6) with a
    replicated border. `quality_features.mscn` is the same map in JAX, on feature maps."""
    image = np.asarray(image, np.float64)

    def smooth(a: np.ndarray) -> np.ndarray:
        a = ndimage.correlate1d(a, GAUSS_7, axis=0, mode="nearest")
        return ndimage.correlate1d(a, GAUSS_7, axis=1, mode="nearest")

    mu = smooth(image)
    return (image - mu) / (np.sqrt(np.abs(smooth(image * image) - mu * mu)) + c)


def piqe_blocks(
    mscn: np.ndarray, block: int = 16, threshold: float = 0.1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PIQE's blocks of an MSCN map whose sides are multiples of `block`: the blocks
    (N, block, block) in row-major order, their variances (n - 1 normalised) and the active
    mask (variance above `threshold`)."""
    rows, cols = mscn.shape[0] // block, mscn.shape[1] // block
    blocks = mscn.reshape(rows, block, cols, block).transpose(0, 2, 1, 3).reshape(-1, block, block)
    variance = blocks.reshape(len(blocks), -1).var(axis=1, ddof=1)
    return blocks, variance, variance > threshold


def piqe(image: np.ndarray, *, convention: Literal["matlab", "pypiqe"] = "matlab") -> float:
    """Perception-based Image Quality Evaluator (Venkatanath et al. 2015); lower is better.

    ``PIQE = 100 (1 + sum_k D_k) / (1 + N_active)`` over the 16x16 blocks of the MSCN map
    ``(I - m) / (s + 1)`` (I in [0, 255]; ``m`` and ``s = sqrt(|E[I^2] - m^2|)`` under a 7x7
    Gaussian, sigma 7/6, replicated border). A block is active when its variance ``v``
    (n - 1 normalised) exceeds 0.1. An active block scores ``D = 1 - v`` when a 6-pixel segment of
    one of its edges has a deviation below 0.1 (a noticeable artifact), plus ``D = v`` when its
    deviation ``sqrt(v)`` exceeds ``2 beta`` (noise), where ``beta = |sqrt(v) - c| / max(sqrt(v),
    c)`` and ``c`` is the deviation of the two centre columns (8 and 9, 1-based) over that of the
    block without columns 8 and 10 (MATLAB's code removes those two). Range [0, 100]: 0-20
    excellent, 21-35 good, 36-50 fair, 51-80 poor, 81-100 bad; a flat image scores 100.

    ``convention="matlab"`` (default) follows MATLAB's ``piqe``: replicate-pad to a multiple of 16
    at the bottom and right, then ``rgb2gray`` (``0.2989 R + 0.5870 G + 0.1140 B``, rounded).
    ``convention="pypiqe"`` reproduces ``pypiqe.piqe`` given the 8-bit image in OpenCV's BGR
    order: OpenCV's grey (`_grey_opencv`), symmetric padding (which scores the padded blocks very
    differently from replication on sizes such as 481x321), and the grey image stretched to
    ``round(255 I / max(I))`` (which changes the scores of dark images).

    Args:
      image: [0, 1] RGB (H, W, 3) or grey (H, W) / (H, W, 1); scored as its 8-bit version.
      convention: "matlab" or "pypiqe", see above.
    """
    image_u8 = _to_uint8(image)
    block = 16
    height, width = image_u8.shape[:2]
    pad = ((0, -height % block), (0, -width % block))
    if convention == "matlab":
        padded = np.pad(image_u8, pad + ((0, 0),) * (image_u8.ndim - 2), mode="edge")
        grey = padded.astype(np.float64)
        if grey.ndim == 3:  # imlincomb: round half away from zero, saturate
            grey = np.clip(np.floor(grey @ _MATLAB_GREY + 0.5), 0, 255)
    elif convention == "pypiqe":
        grey = np.pad(_grey_opencv(image_u8), pad, mode="symmetric").astype(np.float64)
        if grey.max() == 0:
            return 100.0
        grey = np.round(255.0 * (grey / grey.max()))
    else:
        raise ValueError(f"unknown PIQE convention {convention!r}")

    blocks, variance, active = piqe_blocks(mscn_map(grey, 1.0), block)
    blocks, variance = blocks[active], variance[active]
    if len(blocks) == 0:
        return 100.0

    # Noticeable artifacts: a 6-pixel segment of an edge (top, right, bottom, left) that is flat.
    edges = np.stack([blocks[:, 0, :], blocks[:, :, -1], blocks[:, -1, :], blocks[:, :, 0]], 1)
    segments = np.lib.stride_tricks.sliding_window_view(edges, 6, axis=2)
    impaired = (segments.std(axis=-1, ddof=1) < 0.1).any(axis=(1, 2))

    # Noise: the centre/surround deviation ratio against the block deviation.
    centre = blocks[:, :, 7:9].reshape(len(blocks), -1)
    surround = np.delete(blocks, [7, 9], axis=2).reshape(len(blocks), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = centre.std(axis=1, ddof=1) / surround.std(axis=1, ddof=1)
        ratio = np.where(np.isnan(ratio), 0.0, ratio)
        sigma = np.sqrt(variance)
        beta = np.abs(sigma - ratio) / np.maximum(sigma, ratio)
    noisy = sigma > 2 * beta

    distortion = np.sum(np.where(impaired, 1 - variance, 0.0) + np.where(noisy, variance, 0.0))
    return float((distortion + 1) / (1 + len(blocks)) * 100)


# --------------------------------------------------------------------------------------------
# Underwater: UCIQE and UIQM
# --------------------------------------------------------------------------------------------


def _lab_8bit(image_u8: np.ndarray) -> np.ndarray:
    """CIELab (sRGB, D65) in OpenCV's 8-bit encoding ``(255 L / 100, a + 128, b + 128)``, rounded."""
    from skimage.color import rgb2lab

    lab = rgb2lab(image_u8.astype(np.float64) / 255.0)
    encoded = np.stack([lab[..., 0] * 2.55, lab[..., 1] + 128.0, lab[..., 2] + 128.0], axis=-1)
    return np.clip(np.round(encoded), 0, 255)


def uciqe(image: np.ndarray) -> float:
    """Underwater Colour Image Quality Evaluation (Yang & Sowmya 2015); higher is better.

    ``UCIQE = 0.4680 sigma_c + 0.2745 con_l + 0.2576 mu_s``, in the convention of the widely used
    Python code (OpenCV's 8-bit Lab divided by 255): with ``L, A, B`` the 8-bit CIELab encoding
    (`_lab_8bit`) over 255, ``sigma_c`` is the standard deviation of the chroma
    ``C = sqrt(A^2 + B^2)``; ``con_l = L_(int(0.99 n)) - L_(int(0.01 n))``, the difference of the
    order statistics at the top and bottom 1% (0-based); ``mu_s`` is the mean of ``C / L``
    (0 where ``L = 0``). As in that code, ``A`` and ``B`` keep the +128 offset, so chroma is
    measured from ``a = b = -128`` and a grey pixel has ``C = 128 sqrt(2) / 255``; and ``C / L``
    grows without bound on dark pixels, so the score is meaningful for normally exposed
    (underwater) images only: about 0.4-0.7 there; a flat grey image gives ``0.2576 C / L``
    (0.340 for mid-grey), a black one 0. Lab is scikit-image's, rounded to 8 bits; OpenCV's
    table-based conversion differs by one level on some pixels, which moves scores by ~1e-3.
    """
    lab = _lab_8bit(_to_uint8(image, colour=True)) / 255.0
    lum, a, b = lab[..., 0].ravel(), lab[..., 1].ravel(), lab[..., 2].ravel()
    chroma = np.sqrt(a * a + b * b)
    n = lum.size
    top, bottom = int(n * 0.99), int(n * 0.01)
    ordered = np.partition(lum, (bottom, top))
    contrast = ordered[top] - ordered[bottom]
    saturation = np.divide(chroma, lum, out=np.zeros_like(chroma), where=lum != 0)
    return float(0.4680 * chroma.std() + 0.2745 * contrast + 0.2576 * saturation.mean())


def _trimmed_stats(values: np.ndarray, alpha: float = 0.1) -> tuple[float, float]:
    """Alpha-trimmed mean and the spread about it (Panetta et al. 2016, eqs. 3-4).

    ``mu`` is the mean of the sorted values without the ``ceil(alpha n)`` lowest and the
    ``floor(alpha n)`` highest; ``s^2 = mean over all n values of (x - mu)^2``.
    """
    n = values.size
    low, high = math.ceil(alpha * n), math.floor(alpha * n)
    ordered = np.sort(values)
    mu = float(ordered[low : n - high].mean())
    return mu, float(np.mean((values - mu) ** 2))


def uicm(image: np.ndarray) -> float:
    """Underwater image colourfulness measure (Panetta, Gao & Agaian 2016); higher is better.

    ``UICM = -0.0268 sqrt(mu_RG^2 + mu_YB^2) + 0.1586 sqrt(s_RG^2 + s_YB^2)`` with ``RG = R - G``
    and ``YB = (R + G) / 2 - B`` on [0, 255], and 10%/10% alpha-trimmed means ``mu`` and spreads
    ``s`` (`_trimmed_stats`). A colour cast (non-zero means) lowers it, colour variety raises it;
    0 for any grey image; range about [-10, 40].
    """
    x = _to_uint8(image, colour=True).astype(np.float64)
    r, g, b = x[..., 0].ravel(), x[..., 1].ravel(), x[..., 2].ravel()
    mu_rg, s_rg = _trimmed_stats(r - g)
    mu_yb, s_yb = _trimmed_stats((r + g) / 2 - b)
    return -0.0268 * math.sqrt(mu_rg**2 + mu_yb**2) + 0.1586 * math.sqrt(s_rg + s_yb)


def _tiles(x: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping ``size`` x ``size`` tiles (a remainder at the bottom/right is cut)."""
    rows, cols = x.shape[0] // size, x.shape[1] // size
    if rows == 0 or cols == 0:
        raise ValueError(f"a {x.shape} image is smaller than one {size}x{size} block")
    tiles = x[: rows * size, : cols * size].reshape(rows, size, cols, size)
    return tiles.transpose(0, 2, 1, 3).reshape(rows * cols, size * size)


def _eme(x: np.ndarray, size: int) -> float:
    """``EME = 2 / (k1 k2) sum over the k1 x k2 blocks of ln(max / min)``; min-0 blocks add 0."""
    tiles = _tiles(x, size)
    high, low = tiles.max(axis=1), tiles.min(axis=1)
    valid = low > 0
    terms = np.log(np.where(valid, high, 1.0) / np.where(valid, low, 1.0))
    return float(2.0 / len(tiles) * terms.sum())


def uism(image: np.ndarray, *, block_size: int = 8) -> float:
    """Underwater image sharpness measure (Panetta, Gao & Agaian 2016); higher is sharper.

    ``UISM = 0.299 EME(R_e) + 0.587 EME(G_e) + 0.114 EME(B_e)``: each channel's edge map
    ``X_e = |Sobel(X)| X`` (the Sobel gradient magnitude, reflected border, times the channel on
    [0, 255]) goes through `_eme` on ``block_size`` blocks (natural log). 0 for a flat image;
    range [0, inf), typically 2-8 for natural images; blur lowers it.
    """
    x = _to_uint8(image, colour=True).astype(np.float64)
    total = 0.0
    for channel, weight in enumerate((0.299, 0.587, 0.114)):
        c = x[..., channel]
        magnitude = np.hypot(ndimage.sobel(c, axis=0), ndimage.sobel(c, axis=1))
        total += weight * _eme(magnitude * c, block_size)
    return total


def uiconm(image: np.ndarray, *, block_size: int = 8) -> float:
    """Underwater image contrast measure (Panetta, Gao & Agaian 2016); higher is more contrast.

    ``UIConM = -1 / (k1 k2) sum over the blocks of rho ln(rho)``, ``rho = (max - min) / (max + min)``
    of each ``block_size`` block of the intensity ``0.299 R + 0.587 G + 0.114 B``: the log-AMEE
    with the PLIP operations replaced by ordinary arithmetic, as common implementations do; blocks
    with ``rho = 0`` add 0. Range [0, 1/e]; 0 for a flat image. Each term peaks at
    ``rho = 1/e``, so the measure rewards moderate block contrast and is not monotone: a mild
    contrast reduction of a high-contrast image can raise it.
    """
    x = _to_uint8(image, colour=True).astype(np.float64)
    tiles = _tiles(x @ np.array([0.299, 0.587, 0.114]), block_size)
    high, low = tiles.max(axis=1), tiles.min(axis=1)
    valid = (high > low) & (high + low > 0)
    rho = np.where(valid, (high - low) / np.where(valid, high + low, 1.0), 1.0)
    return float(-np.sum(rho * np.log(rho)) / len(tiles)) + 0.0


def uiqm(image: np.ndarray, *, block_size: int = 8) -> float:
    """Underwater Image Quality Measure (Panetta, Gao & Agaian 2016); higher is better.

    ``UIQM = 0.0282 UICM + 0.2953 UISM + 3.5753 UIConM`` (`uicm`, `uism`, `uiconm`). About 2-4 for
    real underwater images; 0 for a flat grey image; colour casts, blur and low contrast lower it.
    """
    return (
        0.0282 * uicm(image)
        + 0.2953 * uism(image, block_size=block_size)
        + 3.5753 * uiconm(image, block_size=block_size)
    )
