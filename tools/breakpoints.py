"""Cost-aware breakpoint search (FLUX-IR, METHODS 4) for any flow model here: its best 2-step grid.

    RESTORECT_DATA_DIR=../shared/data python tools/breakpoints.py --workdir runs/irflow_denoise

For `--count` test images (centre crops of `--crop` pixels, the stored noise of `--sigma`), the
model's own ODE (`Method.flow_problem`: IR-Flow's image flow, the RestoRect student's latent
prior flow) is integrated from t = 1 to 0 with `--steps` Euler steps as the reference
trajectory. The cost of sampling in two jumps through an interior grid time t is
`cost(1 -> t) + cost(t -> 0)`, where a jump's cost is the distance between the trajectory's
secant and the one-jump secant (`flow.two_step_costs`), averaged over the images;
`t* = argmin`. `--cost displacement` weights each jump's cost by its length (the distance
between where the jump lands and the trajectory). Writes `<out>.json` with the cost of every
t, the best grid as a sampler text (`euler:1,<t*>,0`, what `--sampler` takes everywhere) and
the PSNR of those crops at that grid, at the uniform 2-step grid and with the reference
sampler.
"""

import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench_common import test_records

from restorect_jax import flow, inference
from restorect_jax.image_ops import pad_to_multiple
from restorect_jax.metrics import full_reference

_WORKDIR = flags.DEFINE_string("workdir", None, "a flow model's run (or bundle) folder")
_TASK = flags.DEFINE_string("task", None, "or a shipped task's bundled model")
_DATASET = flags.DEFINE_string("dataset", "CBSD68", "benchmark set of the search images")
_SIGMA = flags.DEFINE_integer("sigma", 25, "stored AWGN level (0: the set's own LQ images)")
_COUNT = flags.DEFINE_integer("count", 16, "images searched over")
_CROP = flags.DEFINE_integer("crop", 128, "centre crop side in pixels")
_STEPS = flags.DEFINE_integer("steps", 20, "Euler steps of the reference trajectory")
_COST = flags.DEFINE_enum(
    "cost", "secant", list(flow.COSTS), "secant (the paper's) or displacement (x jump length)"
)
_OUT = flags.DEFINE_string("out", None, "output prefix (default tools/results/breakpoints/<model>)")


def centre_crops(records: list[dict], size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, size, size, 3) LQ (clipped) and GT in [0, 1], padded to the model's stride."""
    lqs, gts = [], []
    for record in records:
        height, width = record["gt"].shape[:2]
        top, left = (height - size) // 2, (width - size) // 2
        window = (slice(top, top + size), slice(left, left + size))
        gt = record["gt"][window].astype(np.float32)
        gts.append(gt / 255.0 if record["gt"].dtype == np.uint8 else gt)
        lqs.append(np.clip(record["lq"][window], 0.0, 1.0).astype(np.float32))
    return pad_to_multiple(np.stack(lqs), stride), pad_to_multiple(np.stack(gts), stride)


def psnr(restored: np.ndarray, gt: np.ndarray) -> float:
    """Mean PSNR (dB) of clipped outputs (`metrics.full_reference.psnr`, RGB, no border crop)."""
    return float(np.mean(full_reference.psnr(np.clip(restored, 0, 1), gt)))


def search(model: inference.LoadedModel, lq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(reference grid (N + 1,), mean cost of each interior time (N - 1,))."""
    grid = flow.time_grid(_STEPS.value)
    method = model.method

    @jax.jit
    def costs(params, lq):
        problem = method.flow_problem(params, {}, {"lq": lq, "gt": lq})
        _, trajectory = problem.solve(grid, return_trajectory=True)
        return jnp.mean(flow.two_step_costs(problem, trajectory, grid, _COST.value), axis=1)

    return np.asarray(grid), np.asarray(costs(model.params, jnp.asarray(lq)))


def main(argv) -> None:
    del argv
    model = inference.load_model(workdir=_WORKDIR.value, task=_TASK.value)
    if not model.takes_sampler:
        raise SystemExit(f"error: {model.name} integrates no flow; pick a flow model")
    sigma = _SIGMA.value or None
    records = test_records(model.config, [_DATASET.value], sigma)[_DATASET.value][: _COUNT.value]
    lq, gt = centre_crops(records, _CROP.value, model.stride)
    grid, costs = search(model, lq)
    best = float(grid[1 + int(np.argmin(costs))])
    best_sampler = flow.SamplerSpec("euler", grid=(1.0, round(best, 6), 0.0))
    samplers = {
        "best": best_sampler,
        "uniform": flow.SamplerSpec("euler", grid=(1.0, 0.5, 0.0)),
        "reference": flow.SamplerSpec("euler", _STEPS.value),
    }
    report = {
        "command": "RESTORECT_DATA_DIR=../shared/data python tools/breakpoints.py "
        + " ".join(sys.argv[1:]),
        "model": model.name,
        "workdir": _WORKDIR.value or f"task {_TASK.value}",
        "images": f"{len(records)} {_DATASET.value} centre crops of {_CROP.value}px"
        + (f", AWGN sigma {sigma}" if sigma else ""),
        "reference": samplers["reference"].describe(),
        "cost": _COST.value,
        "costs": {f"{t:.4f}": float(c) for t, c in zip(grid[1:-1], costs)},
        "best_t": best,
        "sampler": best_sampler.describe(),
        "psnr": {
            spec.describe(): psnr(model.predict(lq, gt, spec), gt) for spec in samplers.values()
        },
    }
    out = pathlib.Path(_OUT.value or f"tools/results/breakpoints/{model.name.split('@')[0]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("model", "best_t", "sampler", "psnr")}, indent=2))


if __name__ == "__main__":
    app.run(main)
