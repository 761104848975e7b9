"""Packs a training run into one file, or unpacks one into a run folder that resumes bit-exactly.

  python tools/pack_run.py --workdir runs/denoiser --out tools/packs/denoiser.pack
  python tools/pack_run.py --unpack tools/packs/denoiser.pack --workdir runs/denoiser
  python -m restorect_jax.main --config runs/denoiser/config.json ...   # or the original command

A pack (restorect_jax/packing.py) holds the newest checkpoint's params, EMA params, optimiser
state and step, the data position, the config and metrics.jsonl. A GPU lease's `<run>.tar`
(`tools/device/train_gpu.py`, EMA params only) unpacks too, as an evaluable run that cannot
resume. Errors are one line naming the flag and the file; exit status 2.
"""

import pathlib
import sys
import tarfile

from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from restorect_jax import cli, packing  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "the run folder to pack, or to unpack into")
_OUT = flags.DEFINE_string("out", None, "the pack to write (must not exist)")
_UNPACK = flags.DEFINE_string("unpack", None, "a pack (or a GPU lease's <run>.tar) to unpack")


def _is_lease_tar(path: pathlib.Path) -> bool:
    """True for a `train_gpu.py` tar: EMA params without a pack manifest."""
    try:
        with tarfile.open(path) as tar:
            names = set(tar.getnames())
    except (OSError, tarfile.TarError):
        return False
    return "ema_params.msgpack" in names and "manifest.json" not in names


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not _WORKDIR.value:
        raise app.UsageError("--workdir is required")
    workdir = pathlib.Path(_WORKDIR.value)
    try:
        if _UNPACK.value:
            if _OUT.value:
                raise app.UsageError("give --out (to pack) or --unpack, not both")
            path = pathlib.Path(_UNPACK.value)
            if _is_lease_tar(path):
                sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "device"))
                import unpack as lease_unpack  # noqa: PLC0415 (only for lease tars)

                step = lease_unpack.unpack(path, workdir)
                print(f"unpacked {path} (EMA params of step {step}, no optimiser) into {workdir}")
                return
            step = packing.unpack(path, workdir)
            print(f"unpacked {path} (step {step}) into {workdir}; train there to resume")
        elif _OUT.value:
            step = packing.pack(workdir, pathlib.Path(_OUT.value))
            size = pathlib.Path(_OUT.value).stat().st_size / 2**20
            print(f"packed {workdir} at step {step} into {_OUT.value} ({size:.1f} MiB)")
        else:
            raise app.UsageError("give --out (to pack) or --unpack (a pack to unpack)")
    except packing.PackError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    app.run(cli.one_line_errors(main))
