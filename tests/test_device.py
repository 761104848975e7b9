"""The GPU lease's command (tools/device/): its dry run on this CPU, and unpacking its runs."""

import io
import json
import pathlib
import re
import subprocess
import sys
import tarfile

import flax.serialization
import jax
import numpy as np
import pytest
from conftest import init_params
from PIL import Image

from configs import restorect_smoke
from restorect_jax import inference

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run_tool(script: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / script), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )


def _packed_run(path: pathlib.Path, config, params, step: int) -> None:
    """A `<run>.tar` as train_gpu.py packs it."""
    packed = flax.serialization.msgpack_serialize(
        {"step": step, "ema_params": jax.tree.map(np.asarray, params)}
    )
    with tarfile.open(path, "w") as tar:
        for name, data in (
            ("config.json", config.to_json_best_effort().encode()),
            ("ema_params.msgpack", packed),
            ("eval/results.json", b'{"results": []}'),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_unpacked_run_loads_with_the_packed_params(tmp_path):
    config = restorect_smoke.get_config()
    params = init_params(config)
    _packed_run(tmp_path / "student.tar", config, params, step=7)
    workdir = tmp_path / "runs" / "student"
    result = _run_tool(
        "tools/device/unpack.py", [f"--tar={tmp_path / 'student.tar'}", f"--workdir={workdir}"], 300
    )
    assert result.returncode == 0, result.stderr
    model = inference.load_run(workdir)
    assert model.name == "student@7"
    expected = jax.tree.leaves(model.method.inference_params(params))
    for got, want in zip(jax.tree.leaves(model.params), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert (workdir / "eval" / "results.json").is_file()

    again = _run_tool(
        "tools/device/unpack.py", [f"--tar={tmp_path / 'student.tar'}", f"--workdir={workdir}"], 300
    )
    assert again.returncode != 0 and "not empty" in again.stderr
    assert "Traceback" not in again.stderr
    (tmp_path / "bad.tar").write_bytes(b"not a tar")
    bad = _run_tool(
        "tools/device/unpack.py",
        [f"--tar={tmp_path / 'bad.tar'}", f"--workdir={tmp_path / 'x'}"],
        300,
    )
    assert bad.returncode != 0 and "bad.tar" in bad.stderr and "Traceback" not in bad.stderr


def _write_images(folder: pathlib.Path, count: int, shape: tuple[int, int]) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(len(str(folder)))
    for index in range(count):
        image = np.cumsum(rng.normal(0, 8, (*shape, 3)), axis=0) + 128
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"{index:02d}.png")


@pytest.mark.slow
def test_dry_run_trains_evaluates_and_packs_every_run(tmp_path):
    """The whole lease path at tiny size: bench, teacher, two students, evaluation, tars."""
    data_root = tmp_path / "data"
    _write_images(data_root / "denoise/train/CBSD432", 4, (40, 48))
    _write_images(data_root / "denoise/test/Kodak24", 2, (32, 40))
    out = tmp_path / "out"
    args = [
        "--dry_run",
        "--bench",
        f"--data_root={data_root}",
        f"--out={out}",
        f"--workdir={tmp_path / 'runs'}",
        "--budget_s=3000",
    ]
    result = _run_tool("tools/device/train_gpu.py", args, 3000)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "results.json").read_text())
    assert report["plan"]["steps"] == 4
    assert set(report["bench"]) == {"teacher", "student"}
    assert report["bench"]["student"]["phase"] == "student"
    assert report["bench"]["teacher"]["gflop_per_step"] > 0
    for name in ("teacher", "student_restorect", "student_none"):
        run = report["runs"][name]
        assert run["exit_code"] == 0 and run["eval_exit_code"] == 0 and run["step"] == 4
        psnr = run["eval"]["results"][0]["means"]["psnr"]
        assert np.isfinite(psnr)
        workdir = tmp_path / "unpacked" / name
        unpacked = _run_tool(
            "tools/device/unpack.py", [f"--tar={out / f'{name}.tar'}", f"--workdir={workdir}"], 300
        )
        assert unpacked.returncode == 0, unpacked.stderr
        assert inference.load_run(workdir).name == f"{name}@4"
    log = (out / "train_log.txt").read_text()
    assert "----- student_none output -----" in log
    for name in ("student_restorect", "student_none"):
        assert report["runs"][name]["compile_exit_code"] == 0
    # The students load the steps compiled while the teacher trained (and init).
    loaded = [
        int(n)
        for n in re.findall(
            r"Run ended at step 4; \d+ compiles asked the persistent cache, (\d+) loaded", log
        )
    ]
    assert len(loaded) == 3 and min(sorted(loaded)[-2:]) >= 2, loaded
