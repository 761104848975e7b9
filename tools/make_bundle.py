"""Packs a trained run's prediction weights into `restorect_jax/weights/<task>/` for `restore`.

    python tools/make_bundle.py --workdir runs/bench_distill/restorect_loss.flex=0.02 --task denoise

Writes the run's config.json, the EMA prediction params as params.msgpack (float32) and the
run's name; `restorect_jax.inference.load_bundle` reads them back (and checks their shapes).
A bundle already there is replaced only with `--overwrite`.
"""

import pathlib

from absl import app, flags

from restorect_jax import inference

_WORKDIR = flags.DEFINE_string("workdir", None, "the trained run", required=True)
_TASK = flags.DEFINE_enum("task", None, inference.TASKS, "which bundle to write", required=True)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "replace the bundle already there")


def main(argv: list[str]) -> None:
    del argv
    model = inference.load_run(pathlib.Path(_WORKDIR.value))
    if model.needs_ground_truth:
        raise app.UsageError(f"{model.name} reads the ground truth; bundle a model that does not")
    folder = inference.WEIGHTS_DIR / _TASK.value
    try:
        inference.save_bundle(model, folder, overwrite=_OVERWRITE.value)
    except FileExistsError as err:
        raise SystemExit(f"error: {err}") from None
    size = sum(path.stat().st_size for path in folder.iterdir())
    print(f"wrote {model.name} to {folder} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    app.run(main)
