"""Turns a run packed by `train_gpu.py` (`<run>.tar`) back into a run folder.

    python tools/device/unpack.py --tar /work/.device/.../student_restorect.tar \
        --workdir runs/gpu/student_restorect

The folder gets the run's `config.json`, `metrics.jsonl`, `eval/results.json` and one
checkpoint (at the packed step) whose `params` and `ema_params` are the packed EMA params, so
`python -m restorect_jax.evaluate --workdir`, `tools/make_bundle.py` and students
(`config.frozen.teacher`) read it like any finished run. Optimiser state is not packed: the
run can be evaluated, bundled and distilled from, not resumed.
"""

import pathlib
import sys
import tarfile

import flax.serialization
from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from restorect_jax import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top

_TAR = flags.DEFINE_string("tar", None, "a <run>.tar written by train_gpu.py", required=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "the run folder to create", required=True)

MEMBERS = ("config.json", "metrics.jsonl", "eval/results.json")


def unpack(tar_path: pathlib.Path, workdir: pathlib.Path) -> int:
    """Writes the run folder; returns the packed step."""
    if workdir.exists() and any(workdir.iterdir()):
        raise app.UsageError(f"--workdir {workdir} exists and is not empty")
    try:
        with tarfile.open(tar_path) as tar:
            names = set(tar.getnames())
            if not {"config.json", "ema_params.msgpack"} <= names:
                raise app.UsageError(f"--tar {tar_path}: no config.json or ema_params.msgpack")
            packed = flax.serialization.msgpack_restore(
                tar.extractfile("ema_params.msgpack").read()
            )
            for member in MEMBERS:
                if member in names:
                    target = workdir / member
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(tar.extractfile(member).read())
    except (OSError, tarfile.TarError) as error:
        raise app.UsageError(f"--tar {tar_path}: {error}") from error
    step, params = int(packed["step"]), packed["ema_params"]
    checkpoint_lib.save_params(
        workdir / "checkpoints", step, params, {"unpacked_from": str(tar_path)}
    )
    return step


def main(argv: list[str]) -> None:
    del argv
    step = unpack(pathlib.Path(_TAR.value), pathlib.Path(_WORKDIR.value))
    print(f"unpacked {_TAR.value} (step {step}) into {_WORKDIR.value}")


if __name__ == "__main__":
    app.run(main)
