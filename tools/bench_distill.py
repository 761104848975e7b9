"""Distillation benchmark: teacher, LQ-only restorer, RestoRect student and its baselines, one task.

Colour denoising at AWGN sigma 25: every model trains on CBSD432 crops and is scored on the full
CBSD68 and Kodak24 images with the benchmarks' stored noise (the images `evaluate` scores), RGB
PSNR/SSIM of 8-bit outputs. Rows:
  teacher: the RestoRect teacher; its priors see GT (METHODS 1.2), so it is an upper reference,
    not a restorer a user can run;
  restorer (teacher size, LQ only): the same RGFormer without priors, trained on the same data
    for the same steps as the teacher (configs/restorer_denoise.py): the fair reference for the
    student, whose gap to it is reported;
  students: `restorect`, `feature_mse` and `none` (trained alone), same architecture and steps.
Reports, in `<out>.json`, a markdown table in `<out>.md` and a plot in `<out>_steps.png`:
  params (inference) and FLOPs (XLA cost analysis, one 256x256 image) of every model;
  restore throughput in images/s at 256x256: batch / median call time over `--throughput_reps`
    calls after two warm-up calls, every model timed back to back at the end of the run;
  PSNR/SSIM of every model; PSNR of the RestoRect student at 1, 2, 4, 8 Euler steps.

CPU setting (the default; a few hours on 2 cores when the teacher must be trained):
  RESTORECT_DATA_DIR=../shared/data python tools/bench_distill.py \
      --teacher_workdir runs/teacher_denoise --steps 1500
GPU setting: `--scale gpu` (paper-scale teacher and restorer, a width-32 student, 192 crops) with
more `--steps`. The teacher and restorer train first when their workdirs have no checkpoint
(`--teacher_steps`). Re-running resumes every training run from its checkpoints; scores are
cached per run, keyed by a hash of its config, its checkpoint step and this package's source.
"""

import json
import logging
import pathlib
import sys

import jax
import ml_collections
from absl import app, flags

# The checkout's root, for `configs` (the package itself may be installed elsewhere).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import bench_common
from bench_common import (
    cache_key,
    cached,
    ensure_trained,
    param_count,
    score,
    throughput,
    with_steps,
)
from report import distill_table

from configs import restorect_common, restorer_common, teacher_denoise
from restorect_jax import inference, scoring
from restorect_jax.config_lib import apply_overrides
from restorect_jax.metrics.registry import Protocol

_WORKDIR = flags.DEFINE_string("workdir", "runs/bench_distill", "where the other runs train")
_TEACHER_WORKDIR = flags.DEFINE_string(
    "teacher_workdir",
    "runs/teacher_denoise",
    "a teacher run; trained first if it has no checkpoint",
)
_TEACHER_STEPS = flags.DEFINE_integer(
    "teacher_steps", 2000, "steps of the teacher and of the teacher-size restorer"
)
_STEPS = flags.DEFINE_integer("steps", 1500, "training steps of every student")
_SCALE = flags.DEFINE_enum("scale", "cpu", ["cpu", "gpu"], "model and crop sizes")
_DATASETS = flags.DEFINE_list("datasets", ["CBSD68", "Kodak24"], "test sets under denoise/test")
_SIGMA = flags.DEFINE_integer("sigma", 25, "AWGN level of the stored test noise")
_FLOW_STEPS = flags.DEFINE_list("flow_steps", ["1", "2", "4", "8"], "ODE steps to score RestoRect")
_THROUGHPUT_BATCH = flags.DEFINE_integer("throughput_batch", 4, "images per throughput call")
_THROUGHPUT_REPS = flags.DEFINE_integer("throughput_reps", 10, "timed throughput calls")
_OUT = flags.DEFINE_string("out", "tools/results/bench_distill_cpu", "output path prefix")
_RESTORECT_OVERRIDES = flags.DEFINE_list(
    "restorect_overrides",
    [],
    "key=value settings of config.restorect for the restorect student only (e.g. loss.flex=0.1); "
    "its workdir gets "
    "them as a suffix, so a sweep reuses the trained baselines",
)

DISTILL_MODES = ("restorect", "feature_mse", "none")
_GPU_RGFORMER = {
    "model.width": 64,
    "model.num_blocks": (3, 3, 3, 3),
    "model.num_heads": (1, 2, 4, 8),
    "model.num_refinement_blocks": 3,
    "model.head_features": 64,
    "data.patch_size": 192,
    "train.learning_rate": 2e-4,
}
_GPU_TEACHER = {
    **_GPU_RGFORMER,
    "model.prior_features": 64,
    "model.prior_res_blocks": 5,
    "model.decomp_features": 32,
}
_GPU_RESTORER = {k: v for k, v in _GPU_RGFORMER.items() if k != "model.head_features"}
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
    apply_overrides(config, [f"{key}={value!r}" for key, value in values.items()])
    return config


def teacher_config(steps: int) -> ml_collections.ConfigDict:
    config = with_steps(teacher_denoise.get_config(), steps)
    return _override(config, _GPU_TEACHER) if _SCALE.value == "gpu" else config


def restorer_config() -> ml_collections.ConfigDict:
    """The teacher-size LQ-only restorer, with the teacher's data and steps."""
    config = restorer_common.restorer_config(teacher_config(_TEACHER_STEPS.value), "teacher")
    return _override(config, _GPU_RESTORER) if _SCALE.value == "gpu" else config


def student_overrides(distill: str) -> list[str]:
    """The `--restorect_overrides` for the restorect student, none for the baselines."""
    return {"restorect": _RESTORECT_OVERRIDES.value}.get(distill, [])


def student_config(distill: str, steps: int) -> ml_collections.ConfigDict:
    config = restorect_common.student_config(
        teacher_config(_TEACHER_STEPS.value), _TEACHER_WORKDIR.value, distill
    )
    with_steps(config, steps, eval_every=0)  # the bench scores every run on the full test sets
    config.restorect.phase1_steps = steps // 10
    if _SCALE.value == "gpu":
        _override(config, _GPU_STUDENT)
    apply_overrides(config, [f"restorect.{item}" for item in student_overrides(distill)])
    return config


def student_workdir(distill: str) -> pathlib.Path:
    return pathlib.Path(_WORKDIR.value) / "_".join([distill, *student_overrides(distill)])


def psnr_by_flow_steps(restorer: scoring.Restorer, records_by_set: dict) -> dict[str, float]:
    """PSNR on the first test set with each of `--flow_steps` steps of the model's solver."""
    records = records_by_set[_DATASETS.value[0]]
    steps = [int(s) for s in _FLOW_STEPS.value]
    by_steps = scoring.psnr_by_steps(restorer, records, steps, Protocol())
    return {str(n): psnr for n, psnr in by_steps.items()}


def markdown(report: dict) -> str:
    """`<out>.md`: the docs' table (tools/report.py), the RestoRect student's PSNR by ODE
    steps and the setting."""
    datasets, models = report["datasets"], report["models"]
    by_steps = models["restorect"]["psnr_by_flow_steps"]
    lines = distill_table(report) + [
        "",
        f"RestoRect student, {datasets[0]} PSNR by ODE steps (Euler): "
        + ", ".join(f"{n}: {p:.2f}" for n, p in by_steps.items()),
        "",
        f"Setting: {report['setting']}",
    ]
    return "\n".join(lines) + "\n"


def write_outputs(report: dict) -> None:
    out = pathlib.Path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(markdown(report))

    import matplotlib  # only the plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, first = report["models"], report["datasets"][0]
    steps = models["restorect"]["psnr_by_flow_steps"]
    figure, axes = plt.subplots(figsize=(5, 3.5))
    counts = [int(n) for n in steps]
    axes.plot(counts, list(steps.values()), "o-", label="RestoRect student")
    for name, style in (
        ("teacher", "k--"),
        ("restorer", "b-."),
        ("feature_mse", "g:"),
        ("none", "r:"),
    ):
        axes.axhline(
            models[name]["scores"][first]["psnr"], linestyle=style[1:], color=style[0], label=name
        )
    axes.set_xscale("log", base=2)
    axes.set_xticks(counts, [str(c) for c in counts])
    axes.set_xlabel("ODE steps")
    axes.set_ylabel(f"{first} PSNR (dB)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(str(out) + "_steps.png", dpi=120)


def bench_model(name: str, workdir: pathlib.Path, records_by_set: dict) -> tuple[dict, object]:
    """Params, FLOPs and cached scores of one trained run (and its LoadedModel for timing)."""
    model = inference.load_run(workdir)
    restorer = scoring.restorer_from_model(model)
    entry = {
        "workdir": str(workdir),
        "checkpoint": model.name,
        "params": param_count(model.params),
        "flops": model.flops(256, 256),
        "scores": cached(
            workdir / "bench_scores.json",
            cache_key(model, datasets=_DATASETS.value, sigma=_SIGMA.value),
            lambda: score(restorer, records_by_set),
        ),
    }
    if model.takes_sampler:
        entry["psnr_by_flow_steps"] = cached(
            workdir / "bench_flow_steps.json",
            cache_key(
                model, dataset=_DATASETS.value[0], sigma=_SIGMA.value, steps=_FLOW_STEPS.value
            ),
            lambda: psnr_by_flow_steps(restorer, records_by_set),
        )
    logging.info("%s: %s", name, entry["scores"])
    return entry, model


def main(argv) -> None:
    del argv
    logging.getLogger().setLevel(logging.INFO)
    runs = {
        "teacher": (teacher_config(_TEACHER_STEPS.value), pathlib.Path(_TEACHER_WORKDIR.value)),
        "restorer": (restorer_config(), pathlib.Path(_WORKDIR.value) / "restorer"),
    }
    for distill in DISTILL_MODES:
        runs[distill] = (student_config(distill, _STEPS.value), student_workdir(distill))
    train_seconds = {
        name: ensure_trained(config, workdir) for name, (config, workdir) in runs.items()
    }
    records_by_set = bench_common.test_records(runs["restorer"][0], _DATASETS.value, _SIGMA.value)
    report = {
        "setting": (
            f"scale={_SCALE.value}; teacher and restorer {_TEACHER_STEPS.value} steps, students "
            f"{_STEPS.value} steps (first 10% flow-only for restorect), batch "
            f"{runs['none'][0].train.batch_size} x {runs['none'][0].data.patch_size}^2 crops of "
            f"CBSD432, AWGN sigma 25; test sets at full size with the stored sigma {_SIGMA.value} "
            f"noise; {jax.devices()[0].platform} x {jax.device_count()}; restorect overrides: "
            f"{_RESTORECT_OVERRIDES.value or 'none'}"
        ),
        "datasets": _DATASETS.value,
        "models": {},
    }
    loaded = {}
    for name, (_, workdir) in runs.items():
        report["models"][name], loaded[name] = bench_model(name, workdir, records_by_set)
        report["models"][name]["train_seconds_this_run"] = train_seconds[name]
    report["input_scores"] = score(scoring.baseline_restorer("input"), records_by_set)
    restorer_scores = report["models"]["restorer"]["scores"]
    report["gap_to_restorer_db"] = {
        distill: {
            d: report["models"][distill]["scores"][d]["psnr"] - restorer_scores[d]["psnr"]
            for d in _DATASETS.value
        }
        for distill in DISTILL_MODES
    }
    # Throughput last, back to back in this process, so every model is timed alike.
    for name, model in loaded.items():
        report["models"][name]["images_per_s"] = throughput(
            model, _THROUGHPUT_BATCH.value, _THROUGHPUT_REPS.value
        )
        logging.info("%s: %.2f images/s at 256x256", name, report["models"][name]["images_per_s"])
    write_outputs(report)
    print(pathlib.Path(_OUT.value).with_suffix(".md").read_text())


if __name__ == "__main__":
    app.run(main)
