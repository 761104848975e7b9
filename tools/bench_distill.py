"""Distillation benchmark: teacher vs RestoRect student vs the two baselines, one task.

Colour denoising at AWGN sigma 25: students train on CBSD432 crops and are scored on the full
CBSD68 and Kodak24 images (8-bit RGB PSNR/SSIM, fixed noise seeds). The three students
(`restorect`, `feature_mse`, `none`) have the same architecture and train for the same number of
steps in the same loop. Reports, in `<out>.json`, a markdown table in `<out>.md` and a plot in
`<out>_steps.png`:
  params (inference) and FLOPs (XLA cost analysis, one 256x256 image) of teacher and student;
  restore throughput in images/s at 256x256: batch / median call time over `--throughput_reps`
    calls after two warm-up calls, every model timed back to back at the end of the run;
  PSNR/SSIM of the teacher and each student; PSNR of the RestoRect student at 1, 2, 4, 8 steps.
The teacher is privileged (its priors see GT, METHODS 1.2): its scores are an upper reference.

CPU setting (the default; about an hour on 2 cores with a trained teacher):
  RESTORECT_DATA_DIR=../shared/data python tools/bench_distill.py \
      --teacher_workdir runs/teacher_denoise --steps 1500
GPU setting: `--scale gpu` (paper-scale teacher and a width-32 student, 192 crops) with more
`--steps`. A teacher workdir without a checkpoint is trained first (`--teacher_steps`).
Re-running resumes every training run from its checkpoints.
"""

import ast
import functools
import json
import logging
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags

from configs import restorect_common, teacher_denoise
from restorect_jax import checkpoint as checkpoint_lib
from restorect_jax import data as data_lib
from restorect_jax import methods, train
from restorect_jax.methods import restorect as restorect_method

_WORKDIR = flags.DEFINE_string("workdir", "runs/bench_distill", "where the students train")
_TEACHER_WORKDIR = flags.DEFINE_string(
    "teacher_workdir",
    "runs/teacher_denoise",
    "a teacher run; trained first if it has no checkpoint",
)
_TEACHER_STEPS = flags.DEFINE_integer("teacher_steps", 2000, "steps if the teacher must be trained")
_STEPS = flags.DEFINE_integer("steps", 1500, "training steps of every student")
_SCALE = flags.DEFINE_enum("scale", "cpu", ["cpu", "gpu"], "model and crop sizes")
_DATASETS = flags.DEFINE_list("datasets", ["CBSD68", "Kodak24"], "test sets under denoise/test")
_FLOW_STEPS = flags.DEFINE_list("flow_steps", ["1", "2", "4", "8"], "ODE steps to score RestoRect")
_THROUGHPUT_BATCH = flags.DEFINE_integer("throughput_batch", 4, "images per throughput call")
_THROUGHPUT_REPS = flags.DEFINE_integer("throughput_reps", 10, "timed throughput calls")
_OUT = flags.DEFINE_string("out", "tools/results/bench_distill_cpu", "output path prefix")
_RESTORECT_OVERRIDES = flags.DEFINE_list(
    "restorect_overrides",
    [],
    "section.key=value settings for the restorect student only (e.g. loss.flex=0.1); its workdir "
    "gets them as a suffix, so a sweep reuses the trained baselines",
)

DISTILL_MODES = ("restorect", "feature_mse", "none")
_GPU_TEACHER = {
    "model.width": 64,
    "model.num_blocks": (3, 3, 3, 3),
    "model.num_heads": (1, 2, 4, 8),
    "model.num_refinement_blocks": 3,
    "model.prior_features": 64,
    "model.prior_res_blocks": 5,
    "model.decomp_features": 32,
    "model.head_features": 64,
    "data.patch_size": 192,
    "train.learning_rate": 2e-4,
}
_GPU_STUDENT = {
    "model.width": 32,
    "model.num_blocks": (2, 2, 2, 2),
    "model.num_heads": (1, 2, 4, 8),
    "model.condition_features": 32,
    "model.condition_res_blocks": 3,
    "model.velocity_hidden": 256,
    "data.patch_size": 192,
    "train.learning_rate": 2e-4,
}


def _override(config: ml_collections.ConfigDict, values: dict) -> ml_collections.ConfigDict:
    for key, value in values.items():
        section, name = key.split(".")
        config[section][name] = value
    return config


def parse_overrides(items: list[str]) -> dict:
    """`["loss.flex=0.1", ...]` as `{"loss.flex": 0.1}`; values are Python literals."""
    values = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key.count(".") != 1:
            raise ValueError(f"--restorect_overrides: {item!r} is not section.key=value")
        values[key] = ast.literal_eval(text)
    return values


def teacher_config(steps: int) -> ml_collections.ConfigDict:
    config = teacher_denoise.get_config()
    config.train.num_steps = steps
    return _override(config, _GPU_TEACHER) if _SCALE.value == "gpu" else config


def student_config(distill: str, steps: int) -> ml_collections.ConfigDict:
    config = restorect_common.student_config(
        teacher_config(_TEACHER_STEPS.value), _TEACHER_WORKDIR.value, distill
    )
    config.train.num_steps = steps
    config.train.phase1_steps = steps // 10
    config.train.warmup_steps = min(config.train.warmup_steps, steps // 2)
    config.train.eval_every = steps
    config.data.val_count = 4  # the loop's own end-of-run check; the bench scores all images
    if _SCALE.value == "gpu":
        _override(config, _GPU_STUDENT)
    if distill == "restorect":
        _override(config, parse_overrides(_RESTORECT_OVERRIDES.value))
    return config


def student_workdir(distill: str) -> pathlib.Path:
    name = "_".join([distill, *_RESTORECT_OVERRIDES.value]) if distill == "restorect" else distill
    return pathlib.Path(_WORKDIR.value) / name


def test_images(config: ml_collections.ConfigDict, dataset: str) -> list[dict]:
    data_config = config.data.copy_and_resolve_references()
    data_config.val_dir = f"denoise/test/{dataset}"
    data_config.val_crop = 0
    data_config.val_count = 0
    data_config.val_range = (0, 0)
    return data_lib.load_eval_images(data_config, seed=config.seed)


def param_count(tree) -> int:
    return int(sum(leaf.size for leaf in jax.tree.leaves(tree)))


def flops(fn, params, size: int = 256) -> float:
    """XLA's FLOP count for restoring one `size`^2 image."""
    one = {key: jnp.zeros((1, size, size, 3), jnp.float32) for key in ("lq", "gt")}
    cost = jax.jit(fn).lower(params, one).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"])


def throughput(fn, params, size: int = 256) -> float:
    """Images/s restoring batches of `size`^2 images: batch / median call time after warm-up."""
    rng = np.random.default_rng(0)
    batch = {
        key: jnp.asarray(rng.uniform(size=(_THROUGHPUT_BATCH.value, size, size, 3)), jnp.float32)
        for key in ("lq", "gt")
    }
    jitted = jax.jit(fn)
    for _ in range(2):
        jitted(params, batch).block_until_ready()
    seconds = []
    for _ in range(_THROUGHPUT_REPS.value):
        start = time.perf_counter()
        jitted(params, batch).block_until_ready()
        seconds.append(time.perf_counter() - start)
    return _THROUGHPUT_BATCH.value / float(np.median(seconds))


def score(predict_fn, params, images_by_set: dict[str, list[dict]]) -> dict[str, dict]:
    results = {}
    for dataset, images in images_by_set.items():
        start = time.perf_counter()
        scores, _ = train.evaluate(predict_fn, params, {}, images)
        results[dataset] = {
            "psnr": scores["psnr"],
            "ssim": scores["ssim"],
            "psnr_input": scores["psnr_input"],
            "ssim_input": scores["ssim_input"],
            "images": len(images),
        }
        logging.info(
            "%s: PSNR %.2f SSIM %.4f (%.0f s)",
            dataset,
            scores["psnr"],
            scores["ssim"],
            time.perf_counter() - start,
        )
    return results


def psnr_by_flow_steps(method, params, images_by_set: dict[str, list[dict]]) -> dict[str, float]:
    """PSNR on the first test set when sampling the priors with each of `--flow_steps` steps."""
    first = _DATASETS.value[0]
    result = {}
    for steps in _FLOW_STEPS.value:
        predict = jax.jit(functools.partial(method.predict, num_steps=int(steps)))
        result[steps] = score(predict, params, {first: images_by_set[first]})[first]["psnr"]
    return result


def cached(path: pathlib.Path, key: dict, compute):
    """`compute()`, or its earlier result saved at `path` for the same `key` (a re-run skips it).

    Scores only: throughput is always measured in this process.
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


def ensure_teacher() -> None:
    checkpoints = pathlib.Path(_TEACHER_WORKDIR.value) / "checkpoints"
    if checkpoints.is_dir() and any(path.name.isdigit() for path in checkpoints.iterdir()):
        return
    logging.info("No teacher checkpoint in %s: training one", _TEACHER_WORKDIR.value)
    train.train_and_evaluate(teacher_config(_TEACHER_STEPS.value), _TEACHER_WORKDIR.value)


def write_outputs(report: dict) -> None:
    out = pathlib.Path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    teacher, students = report["teacher"], report["students"]
    datasets = list(teacher["scores"])
    header = ["model", "params", "GFLOPs @256", "images/s @256"] + [
        f"{name} PSNR / SSIM" for name in datasets
    ]
    rows = [header, ["---"] * len(header)]

    def row(name, entry):
        return [
            name,
            f"{entry['params'] / 1e6:.3f}M ({entry['params'] / teacher['params']:.1%})",
            f"{entry['flops'] / 1e9:.2f} ({entry['flops'] / teacher['flops']:.1%})",
            f"{entry['images_per_s']:.2f} ({entry['images_per_s'] / teacher['images_per_s']:.1f}x)",
        ] + [
            f"{entry['scores'][d]['psnr']:.2f} / {entry['scores'][d]['ssim']:.4f}" for d in datasets
        ]

    rows.append(row("teacher (privileged: sees GT)", teacher))
    for distill, entry in students.items():
        rows.append(row(f"student, distill={distill}", entry))
    rows.append(
        ["noisy input", "", "", ""]
        + [
            f"{teacher['scores'][d]['psnr_input']:.2f} / {teacher['scores'][d]['ssim_input']:.4f}"
            for d in datasets
        ]
    )
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    steps = students["restorect"]["psnr_by_flow_steps"]
    lines += [
        "",
        f"RestoRect student, {datasets[0]} PSNR by ODE steps (Euler): "
        + ", ".join(f"{n}: {p:.2f}" for n, p in steps.items()),
        "",
        f"Setting: {report['setting']}",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 3.5))
    counts = [int(n) for n in steps]
    axes.plot(counts, list(steps.values()), "o-", label="RestoRect student")
    for name, entry, style in (
        ("teacher", teacher, "k--"),
        ("feature_mse", students["feature_mse"], "g:"),
        ("none", students["none"], "r:"),
    ):
        axes.axhline(
            entry["scores"][datasets[0]]["psnr"], linestyle=style[1:], color=style[0], label=name
        )
    axes.set_xscale("log", base=2)
    axes.set_xticks(counts, [str(c) for c in counts])
    axes.set_xlabel("ODE steps")
    axes.set_ylabel(f"{datasets[0]} PSNR (dB)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(str(out) + "_steps.png", dpi=120)


def main(argv) -> None:
    del argv
    logging.getLogger().setLevel(logging.INFO)
    ensure_teacher()
    probe = student_config("restorect", _STEPS.value)
    images_by_set = {name: test_images(probe, name) for name in _DATASETS.value}

    teacher_model, teacher_params = restorect_method.load_teacher(_TEACHER_WORKDIR.value)
    teacher_step, _ = checkpoint_lib.load_state(
        pathlib.Path(_TEACHER_WORKDIR.value) / "checkpoints"
    )

    def teacher_predict(params, frozen, batch):
        del frozen
        return teacher_model.apply(params, batch["lq"], batch["gt"]).restored

    teacher_key = {
        "teacher": str(pathlib.Path(_TEACHER_WORKDIR.value).absolute()),
        "step": teacher_step,
        "datasets": _DATASETS.value,
    }
    report = {
        "setting": (
            f"scale={_SCALE.value}; students {_STEPS.value} steps (first 10% flow-only for "
            f"restorect), batch {probe.train.batch_size} x {probe.data.patch_size}^2 crops of "
            f"CBSD432, AWGN sigma {probe.data.noise_sigma:g}; teacher {_TEACHER_WORKDIR.value}; "
            f"test sets at full size; {jax.devices()[0].platform} x {jax.device_count()}; "
            f"restorect overrides: {_RESTORECT_OVERRIDES.value or 'none'}"
        ),
        "teacher": {
            "params": param_count(teacher_params),
            "flops": flops(lambda p, b: teacher_predict(p, {}, b), teacher_params),
            "scores": cached(
                pathlib.Path(_WORKDIR.value) / "teacher_scores.json",
                teacher_key,
                lambda: score(jax.jit(teacher_predict), teacher_params, images_by_set),
            ),
        },
        "students": {},
    }
    restore_fns = {"teacher": (lambda p, b: teacher_predict(p, {}, b), teacher_params)}
    for distill in DISTILL_MODES:
        config = student_config(distill, _STEPS.value)
        workdir = student_workdir(distill)
        start = time.perf_counter()
        train.train_and_evaluate(config, workdir)
        train_seconds = time.perf_counter() - start
        method = methods.get_method("restorect")(config)
        step, state = checkpoint_lib.load_state(workdir / "checkpoints")
        params = state["ema_params"]
        key = {"step": step, "datasets": _DATASETS.value}
        entry = {
            "params": param_count(params["student"]),
            "train_seconds_this_run": train_seconds,
            "flops": flops(lambda p, b, m=method: m.predict(p, {}, b), params),
            "scores": cached(
                workdir / "bench_scores.json",
                key,
                lambda m=method, p=params: score(jax.jit(m.predict), p, images_by_set),
            ),
        }
        if distill == "restorect":
            entry["psnr_by_flow_steps"] = cached(
                workdir / "bench_flow_steps.json",
                {**key, "flow_steps": _FLOW_STEPS.value},
                lambda m=method, p=params: psnr_by_flow_steps(m, p, images_by_set),
            )
        report["students"][distill] = entry
        restore_fns[distill] = (lambda p, b, m=method: m.predict(p, {}, b), params)

    # Throughput last, back to back in this process, so every model is timed alike.
    for name, (fn, params) in restore_fns.items():
        entry = report["teacher"] if name == "teacher" else report["students"][name]
        entry["images_per_s"] = throughput(fn, params)
        logging.info("%s: %.2f images/s at 256x256", name, entry["images_per_s"])
    write_outputs(report)
    print(pathlib.Path(_OUT.value).with_suffix(".md").read_text())


if __name__ == "__main__":
    app.run(main)
