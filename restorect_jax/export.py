"""Command line: saves a trained student as serialised StableHLO (`jax.export`).

    python -m restorect_jax.export --task denoise --output model.stablehlo [--steps 4]
    python -m restorect_jax.export --workdir runs/restorect_denoise --output model.stablehlo

The exported function maps (B, H, W, 3) float32 in [0, 1] to the restored batch, with the weights
inside. Batch, height and width are symbolic (H and W multiples of the model's stride), so one
file serves every size. `restorect_jax.exported.load_exported` runs it without the model code.
"""

from __future__ import annotations

import json
import pathlib
import sys

import jax
import jax.numpy as jnp
from absl import app, flags
from jax import export

from restorect_jax import inference
from restorect_jax.exported import metadata_path

_TASK = flags.DEFINE_enum("task", None, inference.TASKS, "bundled student to export")
_WORKDIR = flags.DEFINE_string("workdir", None, "a training run to export instead")
_OUTPUT = flags.DEFINE_string("output", None, "file to write (and <file>.json beside it)")
_STEPS = flags.DEFINE_integer("steps", None, "ODE steps of flow models (default: the model's)")


def export_model(model: inference.LoadedModel, steps: int | None) -> export.Exported:
    """`model.predict` at `steps` ODE steps, exported for symbolic (batch, stride*h, stride*w)."""
    if model.method.privileged:
        raise ValueError(f"{model.name} is a privileged teacher (it needs GT); export a student")

    def restore(lq: jax.Array) -> jax.Array:
        batch = {"lq": lq, "gt": lq}
        if model.method.uses_flow:
            return model.method.predict(model.params, {}, batch, steps)
        return model.method.predict(model.params, {}, batch)

    stride = model.stride
    batch, height, width = export.symbolic_shape(f"b, {stride}*h, {stride}*w")
    spec = jax.ShapeDtypeStruct((batch, height, width, 3), jnp.float32)
    return export.export(jax.jit(restore))(spec)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if (_TASK.value is None) == (_WORKDIR.value is None) or not _OUTPUT.value:
        print("error: give --output and exactly one of --task and --workdir", file=sys.stderr)
        raise SystemExit(2)
    try:
        if _WORKDIR.value:
            model = inference.load_run(pathlib.Path(_WORKDIR.value))
        else:
            model = inference.load_bundle(inference.WEIGHTS_DIR / _TASK.value)
        exported = export_model(model, _STEPS.value)
    except (inference.ModelLoadError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    output = pathlib.Path(_OUTPUT.value)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(exported.serialize())
    metadata = {
        "model": model.name,
        "task": model.task,
        "stride": model.stride,
        "steps": _STEPS.value,
        "input": "(B, H, W, 3) float32 in [0, 1]; H, W multiples of stride",
    }
    metadata_path(output).write_text(json.dumps(metadata, indent=2))
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB) and {metadata_path(output)}")


if __name__ == "__main__":
    app.run(main)
