"""Every metric by name, with how it is called and read: the one scoring path of the project.

A metric scores one restored (H, W, C) float image, with the ground truth for full-reference
metrics, under the evaluation `Protocol` (Y channel or RGB, crop border, 8-bit rounding) and
returns a float. `evaluate --metrics` and in-training validation (`config.eval.metrics`) both
score through `score`.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from restorect_jax.metrics import full_reference, lpips, no_reference

Score = Callable[[np.ndarray, np.ndarray | None, Any], float]


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How scores are computed, stated next to every table."""

    y_channel: bool = False
    crop_border: int = 0
    quantize: bool = True
    params_dir: pathlib.Path | None = None  # NIQE / BRISQUE model files (`<data root>/metrics`)

    def describe(self) -> str:
        space = "Y (BT.601)" if self.y_channel else "RGB (grey sets: the grey channel)"
        rounding = "outputs clipped and rounded to 8 bits" if self.quantize else "float outputs"
        return f"PSNR/SSIM on {space}, crop border {self.crop_border}, {rounding}"


@dataclasses.dataclass(frozen=True)
class Metric:
    """How to compute and read one metric.

    Attributes:
      label: the column heading.
      compute: `(output, gt or None, protocol) -> float`; the protocol has `y_channel`,
        `crop_border` and `params_dir` (where the NIQE / BRISQUE model files are).
      higher_is_better: the direction of a better image.
      needs_gt: full-reference.
      needs_colour: undefined on grey images.
    """

    label: str
    compute: Score
    higher_is_better: bool
    needs_gt: bool
    needs_colour: bool = False


def _fidelity(fn) -> Score:
    """PSNR / SSIM / MS-SSIM under the protocol's colour space and border crop."""
    return lambda out, gt, p: float(fn(out, gt, crop_border=p.crop_border, y_channel=p.y_channel))


def _cropped(image: np.ndarray, border: int) -> np.ndarray:
    return image[border : image.shape[0] - border, border : image.shape[1] - border]


def _perceptual(net: str) -> Score:
    """LPIPS with the `net` trunk, on RGB after the protocol's border crop."""
    return lambda out, gt, p: float(
        lpips.lpips(_cropped(out, p.crop_border), _cropped(gt, p.crop_border), net=net)
    )


METRICS: dict[str, Metric] = {
    "psnr": Metric("PSNR", _fidelity(full_reference.psnr), True, True),
    "ssim": Metric("SSIM", _fidelity(full_reference.ssim), True, True),
    "ms_ssim": Metric("MS-SSIM", _fidelity(full_reference.ms_ssim), True, True),
    "lpips_alex": Metric("LPIPS-Alex", _perceptual("alex"), False, True),
    "lpips_vgg": Metric("LPIPS-VGG", _perceptual("vgg"), False, True),
    "ciede2000": Metric(
        "CIEDE2000",
        lambda out, gt, p: float(full_reference.ciede2000(out, gt, crop_border=p.crop_border)),
        False,
        True,
        needs_colour=True,
    ),
    "niqe": Metric(
        "NIQE",
        lambda out, gt, p: no_reference.niqe(
            out, crop_border=p.crop_border, params_dir=p.params_dir
        ),
        False,
        False,
    ),
    "brisque": Metric(
        "BRISQUE",
        lambda out, gt, p: no_reference.brisque(out, params_dir=p.params_dir),
        False,
        False,
    ),
    "piqe": Metric("PIQE", lambda out, gt, p: no_reference.piqe(out), False, False),
    "uciqe": Metric(
        "UCIQE", lambda out, gt, p: no_reference.uciqe(out), True, False, needs_colour=True
    ),
    "uiqm": Metric(
        "UIQM", lambda out, gt, p: no_reference.uiqm(out), True, False, needs_colour=True
    ),
}


def check_names(names: Sequence[str], has_gt: bool = True, grey: bool = False) -> None:
    """Raises ValueError for an unknown metric or one the images cannot support."""
    for name in names:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
        if METRICS[name].needs_gt and not has_gt:
            no_reference_names = ", ".join(n for n, m in METRICS.items() if not m.needs_gt)
            raise ValueError(
                f"{name} needs ground truth, which these images lack (no-reference metrics: "
                f"{no_reference_names})"
            )
        if METRICS[name].needs_colour and grey:
            raise ValueError(f"{name} needs colour images")


def score(
    output: np.ndarray, gt: np.ndarray | None, names: Sequence[str], protocol: Protocol
) -> dict[str, float]:
    """Each named metric of one (H, W, C) output (clipped and 8-bit rounded if the protocol says)."""
    if protocol.quantize:
        output = np.round(np.clip(output, 0.0, 1.0) * 255.0) / 255.0
    return {name: METRICS[name].compute(output, gt, protocol) for name in names}
