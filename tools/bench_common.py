"""Pieces the benchmark tools share: training a run, scoring it on stored benchmark images,
caching scores, counting parameters and timing restores. No flags: each tool passes its own.
"""

import hashlib
import json
import logging
import pathlib
import shutil
import time

import jax
import ml_collections
import numpy as np

from restorect_jax import flow, inference, scoring, train
from restorect_jax.data import benchmarks
from restorect_jax.data.pipeline import resolve_data_root
from restorect_jax.metrics.registry import Protocol


def param_count(tree) -> int:
    return int(sum(leaf.size for leaf in jax.tree.leaves(tree)))


def median_seconds(fn, reps: int) -> float:
    """Median wall time of `fn()` (blocked until ready) over `reps` calls after 2 warm-ups."""
    for _ in range(2):
        jax.block_until_ready(fn())
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def ensure_trained(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> float:
    """Trains (or resumes) the run in `workdir`; seconds spent in this process."""
    start = time.perf_counter()
    train.train_and_evaluate(config, workdir)
    return time.perf_counter() - start


def fork_run(source: pathlib.Path, step: int, target: pathlib.Path) -> bool:
    """Starts the run in `target` from `source`'s checkpoint at `step`, unless `target` has
    checkpoints already; True if it copied one. Resuming is bit-exact (tests/test_train.py), so
    when the two configs train the same first `step` steps this equals training them again."""
    checkpoint = source / "checkpoints" / str(step)
    if (target / "checkpoints").exists() or not checkpoint.exists():
        return False
    shutil.copytree(checkpoint, target / "checkpoints" / str(step))
    logging.info("%s starts from %s", target, checkpoint)
    return True


def with_steps(
    config: ml_collections.ConfigDict, steps: int, eval_every: int | None = None
) -> ml_collections.ConfigDict:
    """`config` trained for `steps` steps: warm-up at most half of them; validation every
    `eval_every` steps (0: none), else at most every `steps`. Changes `config` in place."""
    config.train.num_steps = steps
    config.train.warmup_steps = min(config.train.warmup_steps, steps // 2)
    default = min(config.train.eval_every, steps)
    config.train.eval_every = default if eval_every is None else eval_every
    return config


def throughput(
    model: inference.LoadedModel,
    batch_size: int,
    reps: int,
    size: int = 256,
    sampler: flow.SamplerSpec | None = None,
) -> float:
    """Images/s restoring batches of `size`^2 images: batch / median call time after warm-up."""
    rng = np.random.default_rng(0)
    batch = rng.uniform(size=(batch_size, size, size, 3)).astype(np.float32)
    return batch_size / median_seconds(lambda: model.predict(batch, batch, sampler), reps)


def test_records(
    config: ml_collections.ConfigDict, datasets: list[str], sigma: int | None
) -> dict[str, list[dict]]:
    """The stored test images of `datasets` (with the stored AWGN of `sigma` where it applies),
    as `evaluate` reads them."""
    root = resolve_data_root(config.data)
    tfds_dir = pathlib.Path(config.data.tfds_dir or "~/.cache/restorect_jax/tfds").expanduser()
    return {name: benchmarks.load_benchmark(name, root, tfds_dir, sigma=sigma) for name in datasets}


def score(
    restorer: scoring.Restorer,
    records_by_set: dict,
    sampler: flow.SamplerSpec | None = None,
    protocol: Protocol | None = None,
) -> dict[str, dict]:
    """Mean PSNR/SSIM per test set, through the evaluation path `evaluate` uses."""
    results = {}
    for dataset, records in records_by_set.items():
        start = time.perf_counter()
        rows, _ = scoring.evaluate_dataset(
            restorer,
            benchmarks.get_benchmark(dataset),
            records,
            ["psnr", "ssim"],
            protocol or Protocol(),
            sampler,
            grid_images=0,
        )
        results[dataset] = {
            "psnr": float(np.mean([row["psnr"] for row in rows])),
            "ssim": float(np.mean([row["ssim"] for row in rows])),
            "images": len(rows),
        }
        logging.info(
            "%s, %s, %s: PSNR %.2f SSIM %.4f (%.0f s)",
            restorer.name,
            dataset,
            sampler.describe() if sampler else "default",
            results[dataset]["psnr"],
            results[dataset]["ssim"],
            time.perf_counter() - start,
        )
    return results


def source_hash() -> str:
    """A hash of this package's Python source: cached scores are stale once the code changes."""
    digest = hashlib.sha256()
    package = pathlib.Path(inference.__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_key(model: inference.LoadedModel, **extra) -> dict:
    """What a cached score depends on: the run's config and checkpoint, the code, `extra`."""
    config_hash = hashlib.sha256(model.config.to_json(sort_keys=True).encode()).hexdigest()[:16]
    return {"model": model.name, "config": config_hash, "source": source_hash(), **extra}


def cached(path: pathlib.Path, key: dict, compute):
    """`compute()`, or its earlier result saved at `path` for the same `key` (a re-run skips it).

    Scores only: throughput is always measured in the running process.
    """
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved["key"] == key:
            logging.info("Reusing %s", path)
            return saved["value"]
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "value": value}, indent=2))
    return value


def seconds_per_512(
    model: inference.LoadedModel, sampler: flow.SamplerSpec | None, reps: int
) -> float:
    """Median seconds to restore one 512x512 image (batch 1) after warm-up."""
    image = np.random.default_rng(0).uniform(size=(1, 512, 512, 3)).astype(np.float32)
    return median_seconds(lambda: model.predict(image, image, sampler), reps)


DEFAULT = "default"  # the sampler column of a model scored at its own sampler
DISTILL_ROWS = {
    "restorect": "RestoRect student (λ = 0.02; its own runs, speed measured apart)",
    "none": "RestoRect student architecture trained alone (its own run, speed measured apart)",
}
DISTILL_EVAL = {"restorect": "student_restorect_loss.flex=0.02", "none": "student_none"}


def distill_rows(path: pathlib.Path, datasets: tuple[str, ...], sigma: int | None) -> dict:
    """The RestoRect student and the student trained alone: params, FLOPs and images/s from
    bench_distill's JSON (either format), PSNR/SSIM from `evaluate`'s JSON of the same runs
    (`DISTILL_EVAL`, the stored benchmark noise every bench row is scored on)."""
    report = json.loads(path.read_text())
    models = report.get("models") or report["students"]
    rows = {}
    for name, label in DISTILL_ROWS.items():
        entry = models[name]
        evaluated = json.loads(
            (path.parent / "eval" / DISTILL_EVAL[name] / "results.json").read_text()
        )
        scores = {
            result["dataset"]: {key: result["means"][key] for key in ("psnr", "ssim")}
            for result in evaluated["results"]
            if result["dataset"] in datasets and result["sigma"] == sigma
        }
        rows[name] = {
            "label": label,
            "source": f"{path}; {evaluated['command']}",
            "params": entry["params"],
            "images_per_s": {DEFAULT: entry["images_per_s"]},
            "by_sampler": {DEFAULT: {"nfe": 1, "flops": entry["flops"], "scores": scores}},
        }
    return rows


ONE_STEP = "one step"  # the sampler column of models without a flow


def sampler_entry(
    model: inference.LoadedModel,
    spec: flow.SamplerSpec | None,
    records: dict,
    protocol: Protocol,
    workdir: pathlib.Path,
    key_fields: dict,
) -> tuple[str, dict]:
    """(sampler text, {"nfe", "flops", "scores"}) of a trained run at `spec` (None: a model
    without a flow), its scores cached in `workdir/bench/`, keyed by `key_fields` too."""
    key = spec.describe() if spec else ONE_STEP
    nfe = spec.steps(1) * flow.EVALUATIONS_PER_STEP[spec.solver] if spec else 1
    # XLA counts a loop body once, so FLOPs per image are NFE x one network evaluation.
    flops = model.flops(256, 256, flow.SamplerSpec("euler", 1) if spec else None)
    restorer = scoring.restorer_from_model(model)
    scores = cached(
        workdir / "bench" / f"scores_{key.replace(':', '_')}.json",
        cache_key(model, **key_fields, sampler=key),
        lambda: score(restorer, records, spec, protocol),
    )
    return key, {"nfe": nfe, "flops": nfe * flops, "scores": scores}


def plot_psnr_against_nfe(report: dict, path: pathlib.Path) -> None:
    """PSNR on the first test set against NFE: uniform grids as lines, other grids as marks,
    one-sampler rows as dotted levels."""
    import matplotlib  # only the plots need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = report["datasets"][0]
    figure, axes = plt.subplots(figsize=(5.5, 3.8))
    for entry in report["rows"].values():
        points = [
            (at["nfe"], at["scores"][first]["psnr"], "," in key)
            for key, at in entry["by_sampler"].items()
        ]
        if len(points) == 1:
            axes.axhline(
                points[0][1], linestyle=":", label=entry["label"], color=f"C{len(axes.lines)}"
            )
            continue
        uniform = sorted((n, p) for n, p, on_grid in points if not on_grid)
        line = axes.plot(*zip(*uniform), "o-", label=entry["label"])[0]
        gridded = [(n, p) for n, p, on_grid in points if on_grid]
        if gridded:
            axes.plot(*zip(*gridded), "x", color=line.get_color(), markersize=9)
    axes.set_xscale("log", base=2)
    axes.set_xlabel("NFE (x: non-uniform grids)")
    axes.set_ylabel(f"{first} PSNR (dB)")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def write_report(out: pathlib.Path, report: dict, table: list[str]) -> None:
    """Writes `<out>.json` (the report) and `<out>.md` (its table), and prints the table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
