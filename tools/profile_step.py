"""Profile: where a config's train step, or a bundled model's restoration, spends its time, by
XLA op and by op class.

  python tools/profile_step.py --config teacher_denoise --override data.patch_size=256 \
      --override train.batch_size=1 --profile_out tools/results/profile_teacher_1x256_cpu
  python tools/profile_step.py --restore_task denoise --restore_size 512 \
      --profile_out tools/results/profile_restore_denoise_512_cpu

Compiles the config's train step (the same code as `train_and_evaluate`, via
`bench_train.prepare_step`) or, with `--restore_task`, the bundled model's restoration of one
random `--restore_size`^2 image (`inference.LoadedModel.compile`, as `restorect_jax.restore` runs it
without tiling), traces `--profile_steps` calls with `jax.profiler`, and sums each XLA
thunk's time (the `hlo_op` events of the trace). Each op is put in a class by the Flax module
and primitive its HLO metadata names (`OP_CLASSES`, first match wins), so a fusion counts where
its root came from; the backward pass is in the same class as the forward. Thunks can run on
several threads at once, so the summed time may exceed the wall time; shares are of the sum.
Writes `<out>.json` (per class and the `--top` ops) and `<out>.md`.
"""

import collections
import glob
import pathlib
import re
import sys
import tempfile
import time

import jax
import numpy as np
from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench_common import write_report

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags, defined only when run as a script (with bench_train's, whose
    --override and --keep_cache apply here too): the tests import this module beside others
    that define flags of the same names."""
    import bench_train  # noqa: F401  (defines its flags)

    flags.DEFINE_string("config", "teacher_denoise", "config name or .py path")
    flags.DEFINE_integer("profile_steps", 3, "traced steps")
    flags.DEFINE_integer("top", 15, "ops listed one by one")
    flags.DEFINE_string(
        "profile_out", "tools/results/profile_step_cpu", "output path, no extension"
    )
    flags.DEFINE_string(
        "restore_task", "", "profile this task's bundled model restoring, not a train step"
    )
    flags.DEFINE_integer("restore_size", 512, "side of the image --restore_task restores")


# (class, pattern on the HLO op_name metadata, which names modules by their attribute names in
# restorect_jax.models): the first match wins.
OP_CLASSES = (
    ("depthwise 3x3", r"dwconv|depthwise3x3|_shift_add3x3"),
    ("1x1 (Pointwise)", r"_proj/|/in_proj|/out_proj|Pointwise"),
    ("layer norm", r"_norm/|SCLN|LayerNorm"),
    ("attention (softmax, products)", r"/attn/"),
    ("GELU gate", r"/ffn/"),
    ("prior modulation", r"_mod/"),
    ("dense 3x3 conv", r"conv_general_dilated|Conv_\d|/conv"),
    ("optimizer", r"optax|adam|scale_by|clip"),
)
_METADATA = re.compile(r'%([\w.\-]+) = .*?op_name="([^"]*)"')


def op_names(compiled: jax.stages.Compiled) -> dict[str, str]:
    """{HLO instruction name: its op_name metadata} of the compiled program."""
    return dict(_METADATA.findall(compiled.as_text()))


def op_class(op_name: str) -> str:
    for name, pattern in OP_CLASSES:
        if re.search(pattern, op_name):
            return name
    return "other"


def traced_op_seconds(run, steps: int) -> dict[str, float]:
    """Seconds per step of each XLA thunk (`hlo_op` events) while `run()` is called `steps`
    times under the profiler."""
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            for _ in range(steps):
                jax.block_until_ready(run())
        (path,) = glob.glob(f"{folder}/**/*.xplane.pb", recursive=True)
        profile = jax.profiler.ProfileData.from_file(path)
    totals: dict[str, float] = collections.defaultdict(float)
    for plane in profile.planes:
        for line in plane.lines:
            for event in line.events:
                stats = dict(event.stats)
                if "hlo_op" in stats:
                    totals[stats["hlo_op"]] += event.duration_ns / 1e9 / steps
    return dict(totals)


def profile(prepared, profile_steps: int, top_count: int) -> dict:
    """`profile_program` of `prepared`'s train step (a `bench_train.PreparedStep`)."""
    compiled, frozen, batch = prepared.compiled, prepared.frozen, prepared.batch
    carry = {"state": prepared.state}

    def step():  # the step donates its state: carry the new one
        carry["state"], metrics = compiled(carry["state"], batch, frozen)
        return metrics

    return profile_program(step, compiled, profile_steps, top_count)


def profile_program(run, compiled, profile_steps: int, top_count: int) -> dict:
    """Wall time of one `run()` (a call of `compiled`) and the time per op and per op class
    traced over `profile_steps` calls; the `top_count` slowest ops by name."""
    jax.block_until_ready(run())  # warm-up
    start = time.perf_counter()
    jax.block_until_ready(run())
    wall = time.perf_counter() - start
    seconds = traced_op_seconds(run, profile_steps)
    names = op_names(compiled)
    by_class: dict[str, float] = collections.defaultdict(float)
    for op, value in seconds.items():
        by_class[op_class(names.get(op, ""))] += value
    total = sum(seconds.values())
    top = sorted(seconds.items(), key=lambda item: -item[1])[:top_count]
    return {
        "wall_seconds_per_step": wall,
        "traced_seconds_per_step": total,
        "classes": {
            name: {"seconds": value, "share": value / total}
            for name, value in sorted(by_class.items(), key=lambda item: -item[1])
        },
        "top_ops": [
            {
                "op": op,
                "class": op_class(names.get(op, "")),
                "seconds": value,
                "share": value / total,
                "op_name": names.get(op, ""),
            }
            for op, value in top
        ],
    }


def restore_report(task: str, size: int, profile_steps: int, top_count: int) -> dict:
    """The profile of `task`'s bundled model restoring one random size x size image."""
    from restorect_jax import inference

    model = inference.load_model(task=task)
    compiled = model.compile(size, size)
    image = np.random.default_rng(0).random((1, size, size, 3), dtype=np.float32)
    return {
        "config": f"bundled {task} model ({model.name})",
        "shape": f"1 x {size}^2",
        "phase": "restore",
        **profile_program(
            lambda: compiled(model.params, image, image), compiled, profile_steps, top_count
        ),
    }


def markdown(report: dict) -> list[str]:
    lines = [
        f"`{report['command']}`",
        "",
        (
            f"{report['config']} ({report['shape']}): {report['wall_seconds_per_step']:.3f} s per step "
            f"(wall), {report['traced_seconds_per_step']:.3f} s of traced op time."
        ),
        "",
        "| op class | s per step | share |",
        "|---|---|---|",
    ]
    for name, row in report["classes"].items():
        lines.append(f"| {name} | {row['seconds']:.4f} | {row['share']:.1%} |")
    lines += ["", "| op | class | s per step | share | from |", "|---|---|---|---|---|"]
    for row in report["top_ops"]:
        source = row["op_name"][-90:].replace("|", "/")
        lines.append(
            f"| {row['op']} | {row['class']} | {row['seconds']:.4f} | {row['share']:.1%} "
            f"| {source} |"
        )
    return lines


def main(argv: list[str]) -> None:
    del argv
    import bench_train

    report = {"command": " ".join(["python tools/profile_step.py", *sys.argv[1:]])}
    if FLAGS.restore_task:
        report |= restore_report(
            FLAGS.restore_task, FLAGS.restore_size, FLAGS.profile_steps, FLAGS.top
        )
    else:
        prepared = bench_train.prepare_step(FLAGS.config)
        config = prepared.config
        report |= {
            "config": FLAGS.config,
            "shape": f"{config.train.batch_size} x {config.data.patch_size}^2",
            "phase": prepared.phase,
            **profile(prepared, FLAGS.profile_steps, FLAGS.top),
        }
    write_report(pathlib.Path(FLAGS.profile_out), report, markdown(report))


if __name__ == "__main__":
    define_flags()
    app.run(main)
