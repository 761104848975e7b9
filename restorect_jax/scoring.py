"""Scoring restorers on benchmark images: the one evaluation path of every tool.

`evaluate` (the command line), `tools/bench_distill.py` and the other benches restore the
stored benchmark images (`data.benchmarks`, fixed noise) through `run_restorer` (grey to RGB,
`image_ops.pad_to_multiple`, crop back) and score them with `metrics.registry.score`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tqdm

from restorect_jax import flow, inference, noise_level
from restorect_jax.data import benchmarks
from restorect_jax.image_ops import dihedral, pad_to_multiple
from restorect_jax.metrics.registry import Protocol, score


@dataclasses.dataclass
class Restorer:
    """Restores one (H, W, 3) float image: `restore(lq, gt, sampler, sigma)`.

    `needs_gt` restorers also read the ground truth; `takes_sampler` ones a `flow.SamplerSpec`
    (None: their default); `needs_sigma` ones the set's AWGN level (on the [0, 255] scale, None
    on a set of real noise).
    """

    name: str
    restore: Callable[..., np.ndarray]
    stride: int = 1
    needs_gt: bool = False
    takes_sampler: bool = False
    needs_sigma: bool = False
    task: str | None = None
    clip_input: bool = True
    default_sampler: flow.SamplerSpec | None = None


def _bm3d(lq: np.ndarray, gt, sampler, sigma: float | None) -> np.ndarray:
    """CBM3D (colour), from the optional `bm3d` package, at the set's true noise level, or
    on a set of real noise (`sigma` None) at the level `noise_level.estimate_sigma` gives."""
    del gt, sampler
    import bm3d  # the optional extra

    if sigma is None:
        level = noise_level.image_sigma(lq)
    else:
        level = sigma / 255.0
    return np.asarray(bm3d.bm3d_rgb(lq, level), np.float32)


def baseline_restorer(kind: str) -> Restorer:
    """The degraded input, the clean image, or (C)BM3D as the output."""
    if kind == "input":
        return Restorer("input", lambda lq, gt, sampler, sigma: lq, clip_input=False)
    if kind == "bm3d":
        try:
            import bm3d  # noqa: F401
        except ImportError:
            raise ValueError(
                "the bm3d baseline needs the optional package: pip install bm3d"
            ) from None
        return Restorer("CBM3D", _bm3d, needs_sigma=True, task="denoise")
    return Restorer("ground_truth", lambda lq, gt, sampler, sigma: gt, needs_gt=True)


def restorer_from_model(
    model: inference.LoadedModel, self_ensemble: bool = False, known_noise_level: bool = False
) -> Restorer:
    """A loaded model (a run or a bundle) as a Restorer (8 dihedral passes if asked).

    A denoiser with a noise-level map estimates each image's level, or with `known_noise_level`
    reads the set's true sigma (non-blind, as FFDNet's published figures are).
    """

    def restore(lq: np.ndarray, gt: np.ndarray | None, sampler, sigma=None) -> np.ndarray:
        level = sigma / 255.0 if known_noise_level and sigma is not None else None
        variants = range(8) if self_ensemble else (0,)
        outputs = []
        for k in variants:
            gt_k = None if gt is None else dihedral(gt, k)[None]
            out = model.predict(dihedral(lq, k)[None], gt_k, sampler, noise_level=level)[0]
            outputs.append(dihedral(out, k, inverse=True))
        return np.mean(outputs, axis=0)

    return Restorer(
        model.name,
        restore,
        stride=model.stride,
        needs_gt=model.needs_ground_truth,
        takes_sampler=model.takes_sampler,
        task=model.task,
        clip_input=bool(model.config.data.clip),
        default_sampler=model.method.default_sampler(),
    )


def as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 1) grey as three equal channels; RGB unchanged."""
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def run_restorer(
    restorer: Restorer,
    lq: np.ndarray,
    gt: np.ndarray | None,
    sampler: flow.SamplerSpec | None,
    sigma: float | None = None,
) -> np.ndarray:
    """The restored (H, W, C) image: grey to RGB and back, padding to the stride, cropping."""
    height, width, channels = lq.shape
    if restorer.clip_input:
        lq = np.clip(lq, 0.0, 1.0)
    lq_in = pad_to_multiple(as_rgb(lq), restorer.stride)
    gt_in = None if gt is None else pad_to_multiple(as_rgb(gt), restorer.stride)
    out = restorer.restore(lq_in, gt_in, sampler, sigma)[:height, :width]
    return out.mean(axis=-1, keepdims=True) if channels == 1 else out


# --- scoring ---------------------------------------------------------------------------------


def default_metrics(benchmark: benchmarks.Benchmark) -> list[str]:
    """The metrics that apply to a set: full-reference with GT, no-reference without."""
    if benchmark.has_gt:
        names = ["psnr", "ssim", "ms_ssim", "lpips_alex"]
        return names if benchmark.grey else [*names, "ciede2000"]
    names = ["niqe", "brisque", "piqe"]
    return [*names, "uciqe", "uiqm"] if benchmark.task == "underwater" else names


def evaluate_dataset(
    restorer: Restorer,
    benchmark: benchmarks.Benchmark,
    records: list[dict[str, Any]],
    metric_names: Sequence[str],
    protocol: Protocol,
    sampler: flow.SamplerSpec | None,
    grid_images: int = 4,
    sigma: float | None = None,
) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """Per-image rows (name, seconds, metrics) and the outputs of the first `grid_images`."""
    rows, grid_outputs = [], []
    for index, record in enumerate(tqdm.tqdm(records, desc=benchmark.name, unit="img")):
        start = time.perf_counter()
        output = run_restorer(restorer, record["lq"], record.get("gt"), sampler, sigma)
        seconds = time.perf_counter() - start
        scores = score(output, record.get("gt"), metric_names, protocol)
        rows.append({"image": record["name"], "restore_seconds": seconds, **scores})
        if index < grid_images:
            grid_outputs.append(output)
    return rows, grid_outputs


def psnr_by_steps(
    restorer: Restorer, records: list[dict[str, Any]], sweep: Sequence[int], protocol: Protocol
) -> dict[int, float]:
    """Mean PSNR of a flow model's outputs for each step count of its default solver."""
    by_steps = {}
    for steps in sweep:
        sampler = dataclasses.replace(restorer.default_sampler, num_steps=steps, grid=None)
        outputs = [run_restorer(restorer, r["lq"], r["gt"], sampler) for r in records]
        scores = [score(o, r["gt"], ["psnr"], protocol)["psnr"] for o, r in zip(outputs, records)]
        by_steps[steps] = float(np.mean(scores))
    return by_steps
