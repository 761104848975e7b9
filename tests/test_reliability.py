"""Hostile but ordinary cases of training: a changed model on an old workdir, damaged
checkpoints set aside twice, a full disk, Ctrl-C twice, SIGTERM during a save, a diverging run's
samples. Each ends in one line, the right exit status, no traceback and nothing lost."""

import json
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import denoiser_smoke
from restorect_jax import checkpoint as checkpoint_lib
from restorect_jax import run_config, train, writers
from restorect_jax import sharding as sharding_lib

REPO = pathlib.Path(__file__).resolve().parents[1]


def _config(tmp_path: pathlib.Path):
    config = denoiser_smoke.get_config()  # a small conv net: quick to compile
    config.data.tfds_dir = str(tmp_path / "tfds")
    config.train.num_steps, config.train.checkpoint_every = 2, 2
    config.train.warmup_steps = 1
    config.train.eval_every = 0
    return config


def _listing(folder: pathlib.Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_a_changed_model_on_a_workdir_is_refused_and_nothing_is_moved(tmp_path):
    config, run = _config(tmp_path), tmp_path / "run"
    train.train_and_evaluate(config, run)
    before, saved_config = _listing(run / "checkpoints"), (run / "config.json").read_text()
    wider = _config(tmp_path)
    wider.model.width = 16
    with pytest.raises(run_config.RunConfigError, match=r"model.width 8 -> 16") as error:
        train.train_and_evaluate(wider, run)
    assert "\n" not in str(error.value)
    # Without config.json (an old run folder), the checkpoint's shapes still refuse it.
    (run / "config.json").unlink()
    with pytest.raises(checkpoint_lib.CheckpointMismatchError, match="another network"):
        train.train_and_evaluate(wider, run)
    (run / "config.json").write_text(saved_config)
    assert _listing(run / "checkpoints") == before
    assert not (run / "checkpoints_damaged").exists()


def test_a_changed_schedule_resumes_and_keeps_the_old_config(tmp_path):
    config, run = _config(tmp_path), tmp_path / "run"
    train.train_and_evaluate(config, run)
    old = (run / "config.json").read_text()
    config.train.num_steps = 4
    assert train.train_and_evaluate(config, run)["step"] == 4
    assert (run / "config_until_step_2.json").read_text() == old
    assert json.loads((run / "config.json").read_text())["train"]["num_steps"] == 4


def _truncate_data_files(folder: pathlib.Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and path.parent.name == "d":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def test_a_step_damaged_twice_is_set_aside_twice_without_nesting(tmp_path):
    config, run = _config(tmp_path), tmp_path / "run"
    config.train.checkpoint_every = 1
    train.train_and_evaluate(config, run)
    for _ in range(2):
        _truncate_data_files(run / "checkpoints" / "2")
        assert train.train_and_evaluate(config, run)["step"] == 2
    damaged = run / "checkpoints_damaged"
    assert sorted(path.name for path in damaged.iterdir()) == ["2", "2_2"]
    assert not (damaged / "2" / "2").exists()


def test_a_diverged_validation_output_writes_no_sample(tmp_path, caplog):
    image = {"lq": np.zeros((8, 8, 3)), "gt": np.zeros((8, 8, 3))}
    train._save_samples(tmp_path, 5, [image], [np.full((8, 8, 3), np.nan)], 1)
    assert not (tmp_path / "samples").exists() and "not finite" in caplog.text
    for _ in range(2):  # a second attempt at the same step keeps the first sample
        train._save_samples(tmp_path, 5, [image], [np.zeros((8, 8, 3))], 1)
    names = sorted(path.name for path in (tmp_path / "samples").iterdir())
    assert names == ["step_0000005.png", "step_0000005_2.png"]


def _main_command(workdir: pathlib.Path, tmp_path: pathlib.Path, steps: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "restorect_jax.main",
        "--config=configs/denoiser_smoke.py",
        f"--workdir={workdir}",
        f"--config.data.tfds_dir={tmp_path / 'tfds'}",
        f"--config.train.num_steps={steps}",
        "--config.train.warmup_steps=1",
        "--config.train.eval_every=0",
        "--config.train.log_every=1",
        "--config.train.checkpoint_every=1",
    ]


def _env() -> dict[str, str]:
    """This session's JAX settings (so the compile cache is shared) and the checkout."""
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _assert_clean_stop(stderr: str, checkpoints: pathlib.Path) -> None:
    assert "Traceback" not in stderr, stderr[-3000:]
    assert not list(checkpoints.glob("*orbax-checkpoint-tmp*")), _listing(checkpoints)
    step, state = checkpoint_lib.load_state(checkpoints)
    assert step >= 1 and all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(state["params"]))


@pytest.mark.parametrize(
    "first, second, code",
    [(signal.SIGINT, signal.SIGINT, 130), (signal.SIGTERM, signal.SIGTERM, 143)],
    ids=["ctrl-c twice", "sigterm twice"],
)
def test_two_signals_in_quick_succession_stop_cleanly(tmp_path, first, second, code):
    run = tmp_path / "run"
    process = subprocess.Popen(
        _main_command(run, tmp_path, 500),
        cwd=REPO,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    while process.poll() is None:  # checkpoints every step: a signal lands during a save
        steps = [row["step"] for row in writers.read_metrics(run)]
        if steps and max(steps) >= 3:
            break
        time.sleep(0.05)
    process.send_signal(first)
    time.sleep(0.3)
    process.send_signal(second)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == code, stderr[-3000:]
    _assert_clean_stop(stderr, run / "checkpoints")


def _mount_tmpfs(folder: pathlib.Path, size: str) -> bool:
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    return mounted.returncode == 0


# Runs `restorect_jax.main` with the free-space check before each checkpoint switched off, so
# that the disk fills while Orbax writes (the harder case, with background threads to stop).
_WITHOUT_SPACE_CHECK = """
import runpy, sys
from restorect_jax import checkpoint
checkpoint.Checkpointer._check_free_space = lambda *args: None
sys.argv = ["main", *sys.argv[1:]]
runpy.run_module("restorect_jax.main", run_name="__main__")
"""


def test_a_disk_that_fills_during_a_checkpoint_is_one_line_and_leaves_no_partial(tmp_path):
    full = tmp_path / "small_disk"
    # Room for two checkpoints of about 280 KB; a third cannot fit.
    if shutil.which("mount") is None or not _mount_tmpfs(full, "700k"):
        pytest.skip("cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN)")
    driver = tmp_path / "driver.py"
    driver.write_text(_WITHOUT_SPACE_CHECK)
    try:
        run = full / "run"
        command = _main_command(run, tmp_path, 50)
        result = subprocess.run(
            [sys.executable, str(driver), *command[3:]],
            cwd=REPO,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode == 1, result.stderr[-3000:]
        assert len(errors) == 1 and "no space left" in errors[0], errors
        assert "newest good checkpoint: step" in errors[0]
        _assert_clean_stop(result.stderr, run / "checkpoints")
    finally:
        subprocess.run(["umount", str(full)], check=False)


def test_too_little_free_space_is_refused_before_writing(tmp_path, monkeypatch):
    checkpointer = checkpoint_lib.Checkpointer(tmp_path / "checkpoints", keep=2)
    free = shutil.disk_usage(tmp_path)._replace(free=3 * 2**20)
    monkeypatch.setattr(checkpoint_lib.shutil, "disk_usage", lambda path: free)
    state = {"params": {"w": np.zeros((1000, 1000), np.float32)}}  # 4 MB of arrays
    with pytest.raises(checkpoint_lib.CheckpointWriteError, match="needs about 9 MB, 3 MB are free.*no checkpoint yet"):
        checkpointer.save(1, state, {"position": 1})
    checkpointer.close()
    assert not list((tmp_path / "checkpoints").iterdir())


def test_checkpoint_shapes_are_compared_before_restoring(tmp_path):
    config, run = _config(tmp_path), tmp_path / "run"
    train.train_and_evaluate(config, run)
    mesh = sharding_lib.create_mesh(config.mesh)
    abstract = train.build_step_functions(config, mesh, train.example_batch()).abstract_state
    checkpointer = checkpoint_lib.Checkpointer(run / "checkpoints", keep=2)
    try:
        saved = checkpointer._manager.item_metadata(2)["state"]
        checkpoint_lib.check_same_network(saved.tree, abstract, run, 2)  # its own: accepted
    finally:
        checkpointer.close()


def test_a_fresh_run_starts_from_another_runs_weights(tmp_path, caplog):
    config, source = _config(tmp_path), tmp_path / "source"
    train.train_and_evaluate(config, source)
    _, saved = checkpoint_lib.load_state(source / "checkpoints")
    tuned = _config(tmp_path)
    tuned.train.init_from = str(source)
    mesh = sharding_lib.create_mesh(tuned.mesh)
    abstract = train.build_step_functions(tuned, mesh, train.example_batch()).abstract_state
    start = train.initial_params(tuned, abstract.params)
    jax.tree.map(np.testing.assert_array_equal, start, saved["ema_params"])
    caplog.set_level(logging.INFO)
    assert train.train_and_evaluate(tuned, tmp_path / "tuned")["step"] == 2
    assert "Initialised the params and EMA from" in (tmp_path / "tuned" / "train.log").read_text()
    wider = _config(tmp_path)
    wider.model.width, wider.train.init_from = 16, str(source)
    abstract = train.build_step_functions(wider, mesh, train.example_batch()).abstract_state
    with pytest.raises(ValueError, match=r"config.train.init_from=.*parameter .* is \("):
        train.initial_params(wider, abstract.params)
