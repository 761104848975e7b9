"""Command line: saves a trained restorer as serialised StableHLO (`jax.export`).

    python -m restorect_jax.export --task denoise --output model.stablehlo [--sampler euler:4]
    python -m restorect_jax.export --workdir runs/restorect_denoise --output model.stablehlo

An existing output (or its `.json`) is kept unless `--overwrite`; both are written under
temporary names and renamed.

The exported function maps (B, H, W, 3) float32 in [0, 1] to the restored batch, with the weights
inside. Batch, height and width are symbolic (H and W multiples of the model's stride), so one
file serves every size. A denoiser with a noise-level map takes a second argument, the (B,)
noise levels (sigma / 255), which the caller chooses or estimates. `restorect_jax.exported.load_exported` runs it without the model code.
"""

from __future__ import annotations

import json
import pathlib
import sys

import jax
import jax.numpy as jnp
from absl import app, flags
from jax import export

from restorect_jax import cli, flow, inference, safe_files, writers
from restorect_jax.exported import metadata_path

_TASK = flags.DEFINE_enum("task", None, inference.TASKS, "shipped model to export")
_WORKDIR = flags.DEFINE_string("workdir", None, "a training run (or bundle folder) to export")
_BUNDLE = flags.DEFINE_string("bundle", None, "a weight bundle folder to export")
_OUTPUT = flags.DEFINE_string("output", None, "file to write (and <file>.json beside it)")
_SAMPLER = flags.DEFINE_string(
    "sampler", None, "flow models: solver[:steps or grid], e.g. euler:4 (default: the model's)"
)
_STEPS = flags.DEFINE_integer("steps", None, "flow models: ODE steps with the model's solver")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "replace an existing --output and its .json")


def export_model(model: inference.LoadedModel, sampler: flow.SamplerSpec | None) -> export.Exported:
    """`model.predict` with `sampler`, exported for symbolic (batch, stride*h, stride*w)."""
    if model.needs_ground_truth:
        raise ValueError(f"{model.name} reads the ground truth; export a model that does not")

    def restore(lq: jax.Array, noise_level: jax.Array | None = None) -> jax.Array:
        batch = {"lq": lq, "gt": lq}
        if noise_level is not None:
            batch["noise_level"] = noise_level
        return model.method.predict(model.params, {}, batch, sampler)

    stride = model.stride
    batch, height, width = export.symbolic_shape(f"b, {stride}*h, {stride}*w")
    specs = [jax.ShapeDtypeStruct((batch, height, width, 3), jnp.float32)]
    if model.takes_noise_level:
        specs.append(jax.ShapeDtypeStruct((batch,), jnp.float32))
    return export.export(jax.jit(restore))(*specs)


def check_output(output: pathlib.Path, overwrite: bool) -> None:
    """Raises ValueError naming --output when it, or its `.json`, may not be written."""
    try:
        writers.ensure_writable_folder(output.parent, "--output's folder")
    except writers.FolderError as err:
        raise ValueError(str(err)) from None
    for path in (output, metadata_path(output)):
        if path.is_dir():
            raise ValueError(f"--output {output}: {path} is a folder")
        if path.exists() and not overwrite:
            raise ValueError(f"--output {output}: {path} exists (pass --overwrite to replace it)")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        if not _OUTPUT.value:
            raise ValueError("--output is required")
        output = pathlib.Path(_OUTPUT.value)
        check_output(output, _OVERWRITE.value)
        model = inference.load_model(workdir=_WORKDIR.value, task=_TASK.value, bundle=_BUNDLE.value)
        sampler = flow.sampler_from_flags(
            model.method.default_sampler(), _SAMPLER.value, _STEPS.value
        )
        exported = export_model(model, sampler)
    except (inference.ModelLoadError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    metadata = {
        "model": model.name,
        "task": model.task,
        "stride": model.stride,
        "sampler": (sampler or model.method.default_sampler()).describe()
        if model.takes_sampler
        else None,
        "input": "(B, H, W, 3) float32 in [0, 1]; H, W multiples of stride",
        "noise_level": model.takes_noise_level,
    }
    safe_files.write_new(
        output, lambda path: path.write_bytes(exported.serialize()), overwrite=_OVERWRITE.value
    )
    safe_files.write_text_new(
        metadata_path(output), json.dumps(metadata, indent=2), overwrite=_OVERWRITE.value
    )
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB) and {metadata_path(output)}")


def run() -> None:
    """The `restorect-export` console command (`python -m restorect_jax.export` is the same)."""
    cli.console_command(__name__, main)


if __name__ == "__main__":
    run()
