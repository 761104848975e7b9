"""The training loop: sharded step equivalence, resume, checkpoints, metrics, NaN stop."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import denoiser_smoke, smoke
from restorect_jax import checkpoint as checkpoint_lib
from restorect_jax import methods, train, writers
from restorect_jax import sharding as sharding_lib


def _smoke_config(tmp_path):
    """The RestoRect teacher's smoke run: for what depends on the network (sharding, dtypes)."""
    config = smoke.get_config()
    config.data.tfds_dir = str(tmp_path / "tfds")
    return config


def _loop_config(tmp_path):
    """A restorer with the smallest CNN (configs/denoiser_smoke.py): for the loop's logic
    (resume, signals, checkpoints, validation errors), which no network changes, at a
    fraction of the teacher's compile time. The teacher's own runs are in test_restorect."""
    config = denoiser_smoke.get_config()
    config.data.tfds_dir = str(tmp_path / "tfds")
    return config


def _one_step(config, devices, batch):
    """One train step of the smoke teacher on a (data=len(devices), model=1) mesh."""
    config.mesh.data = len(devices)
    mesh = sharding_lib.create_mesh(config.mesh, devices)
    steps = train.build_step_functions(config, mesh, batch)
    state = steps.init(jax.random.PRNGKey(0), batch)
    global_batch = jax.device_put(batch, sharding_lib.batch_sharding(mesh))
    new_state, metrics = steps.train_step(state, global_batch, {})
    return new_state, metrics, steps.state_sharding


# Slow: tests/test_sharding.py::test_fsdp_step_matches_replicated runs the same comparison on a
# 2 x 4 mesh (batch split over both axes, state sharded) and keeps the cold suite under 20 min.
@pytest.mark.slow
def test_sharded_step_matches_single_device(tmp_path):
    assert jax.device_count() == 8, "conftest should provide 8 fake CPU devices"
    config = _smoke_config(tmp_path)
    rng = np.random.default_rng(0)
    gt = rng.uniform(size=(8, 24, 24, 3)).astype(np.float32)
    batch = {
        "gt": jnp.asarray(gt),
        "lq": jnp.asarray(np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1), jnp.float32),
    }

    state8, metrics8, sharding8 = _one_step(config, jax.devices(), batch)
    state1, metrics1, _ = _one_step(config, jax.devices()[:1], batch)

    np.testing.assert_allclose(metrics8["loss"], metrics1["loss"], rtol=1e-5, atol=1e-6)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        jax.device_get(state8.params),
        jax.device_get(state1.params),
    )
    assert int(state8.step) == 1
    for leaf, expected in zip(jax.tree.leaves(state8), jax.tree.leaves(sharding8)):
        assert leaf.sharding.is_equivalent_to(expected, leaf.ndim)
    assert len(jax.tree.leaves(state8.params)[0].sharding.device_set) == 8


@pytest.mark.slow  # About 2 min from a cold compile cache; CI keeps the suite under 20 min.
def test_train_and_evaluate_writes_checkpoint_metrics_and_samples(tmp_path):
    config = _smoke_config(tmp_path)
    workdir = tmp_path / "run"
    result = train.train_and_evaluate(config, workdir)

    assert result["step"] == config.train.num_steps
    rows = writers.read_metrics(workdir)
    train_rows = [row for row in rows if "train/loss" in row]
    assert [row["step"] for row in train_rows] == [2, 4, 6]
    assert all(np.isfinite(row["train/loss"]) for row in train_rows)
    assert {"val/psnr", "val/ssim", "val/psnr_input"} <= set(rows[-1])
    assert list((workdir / "tensorboard").iterdir()), "no TensorBoard event file"
    assert sorted(p.name for p in (workdir / "samples").iterdir()) == [
        "step_0000003.png",
        "step_0000006.png",
    ]
    assert json.loads((workdir / "final_metrics.json").read_text())["step"] == 6

    step, state = checkpoint_lib.load_state(workdir / "checkpoints")
    assert step == 6 and int(state["step"]) == 6
    assert set(state) == {"step", "params", "ema_params", "opt_state"}
    _assert_loads_on_one_device(workdir / "checkpoints", state)


def _assert_loads_on_one_device(checkpoints, state):
    """A checkpoint written on the 8-device mesh loads in a process with a single device."""
    script = (
        "import sys, jax, numpy as np; from restorect_jax import checkpoint;"
        "step, state = checkpoint.load_state(sys.argv[1]);"
        "assert jax.device_count() == 1, jax.devices();"
        "print(step, float(sum(np.sum(x) for x in jax.tree.leaves(state['params']))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(checkpoints)],
        env={**os.environ, "XLA_FLAGS": ""},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        cwd=pathlib.Path(__file__).resolve().parents[1],
    )
    step, total = out.stdout.split()
    assert int(step) == 6
    expected = float(sum(np.sum(x) for x in jax.tree.leaves(state["params"])))
    np.testing.assert_allclose(float(total), expected, rtol=1e-6)


def test_resume_matches_uninterrupted_run(tmp_path):
    config = _loop_config(tmp_path)
    config.train.eval_every = 100  # only the final evaluation
    config.train.progressive = ((4, 32, 8),)  # a new stage exactly where the first run stops
    interrupted, straight = tmp_path / "interrupted", tmp_path / "straight"

    first = train.train_and_evaluate(config, interrupted, stop_at=4)  # between periodic saves
    assert first["step"] == 4
    assert checkpoint_lib.load_state(interrupted / "checkpoints")[0] == 4
    train.train_and_evaluate(config, interrupted)
    train.train_and_evaluate(config, straight)

    _, resumed = checkpoint_lib.load_state(interrupted / "checkpoints")
    _, reference = checkpoint_lib.load_state(straight / "checkpoints")
    jax.tree.map(np.testing.assert_array_equal, resumed, reference)
    # The loss curve after the resume point is the same too: same batches in the same order.
    resumed_losses = {
        r["step"]: r["train/loss"] for r in writers.read_metrics(interrupted) if "train/loss" in r
    }
    reference_losses = {
        r["step"]: r["train/loss"] for r in writers.read_metrics(straight) if "train/loss" in r
    }
    assert resumed_losses[6] == reference_losses[6]


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    config = _loop_config(tmp_path)
    workdir = tmp_path / "run"
    train.train_and_evaluate(config, workdir, stop_at=2)
    config.restorer.loss.psnr = float("inf")  # an infinite weight: the loss is no longer finite
    with pytest.raises(train.NonFiniteLossError, match=r"step 3 .*step 2"):
        train.train_and_evaluate(config, workdir)
    step, state = checkpoint_lib.load_state(workdir / "checkpoints")
    assert step == 2
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state["params"]))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("train.batch_size", 0, "config.train.batch_size"),
        ("data.patch_size", 21, "config.data.patch_size"),
        ("data.degradation", "blur", "config.data.degradation"),
        ("model.width", 0, "config.model.width"),
        ("train.progressive", ((3, 31, 8),), "config.train.progressive"),
    ],
)
def test_config_validation_names_the_key(tmp_path, key, value, message):
    config = _loop_config(tmp_path)
    section, field = key.split(".")
    config[section][field] = value
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        train.train_and_evaluate(config, tmp_path / "run")


def test_batch_not_divisible_by_mesh_is_rejected(tmp_path):
    config = _loop_config(tmp_path)
    config.train.batch_size = 6
    with pytest.raises(ValueError, match=r"config\.train\.batch_size: batch size 6 .* 8 dev"):
        train.train_and_evaluate(config, tmp_path / "run")


@pytest.mark.slow  # A subprocess training run twice: about 2 min from a cold cache.
def test_command_line_runs_with_overrides_and_resumes(tmp_path):
    workdir = tmp_path / "cli"
    command = [
        sys.executable,
        "-m",
        "restorect_jax.main",
        "--config",
        "configs/smoke.py",
        "--workdir",
        str(workdir),
        f"--config.data.tfds_dir={tmp_path / 'tfds'}",
        "--config.train.log_every=3",
    ]
    root = pathlib.Path(__file__).resolve().parents[1]
    subprocess.run(command, cwd=root, check=True, capture_output=True, timeout=600)
    assert [row["step"] for row in writers.read_metrics(workdir) if "train/loss" in row] == [3, 6]
    again = subprocess.run(
        command, cwd=root, check=True, capture_output=True, text=True, timeout=600
    )
    assert "Resumed from step 6" in again.stderr

    bad = subprocess.run(
        command + ["--config.data.patch_size=20"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode != 0 and "config.data.patch_size=20" in bad.stderr


def test_sigterm_saves_a_checkpoint_and_stops(tmp_path, monkeypatch):
    config = _loop_config(tmp_path)
    workdir = tmp_path / "run"
    write_scalars = writers.MetricWriter.write_scalars
    handler_before = signal.getsignal(signal.SIGTERM)

    def write_then_get_killed(self, step, scalars):
        write_scalars(self, step, scalars)
        os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler pre-empting the job would

    monkeypatch.setattr(writers.MetricWriter, "write_scalars", write_then_get_killed)
    result = train.train_and_evaluate(config, workdir)
    assert result["step"] == config.train.log_every and result["preempted"]
    assert checkpoint_lib.load_state(workdir / "checkpoints")[0] == config.train.log_every
    assert signal.getsignal(signal.SIGTERM) is handler_before


class _LinearMethod(methods.Method):
    """A one-weight model, `restored = w * lq`, so a step's effect can be computed by hand."""

    def init_params(self, rng, batch):
        return {"w": jnp.ones((1, 1))}

    def loss(self, params, frozen, batch, rng, phase="train"):
        return jnp.mean((params["w"][0, 0] * batch["lq"] - batch["gt"]) ** 2), {}

    def predict(self, params, frozen, batch):
        return params["w"][0, 0] * batch["lq"]


def _linear_step_functions(tmp_path):
    config = _loop_config(tmp_path)
    config.train.grad_clip_norm = 0.0
    config.train.weight_decay = 0.0
    config.train.warmup_steps = 0  # the warm-up starts at learning rate 0: no first update
    config.mesh.data = 1
    mesh = sharding_lib.create_mesh(config.mesh, jax.devices()[:1])
    example = {"lq": jnp.ones((2, 2, 2, 3)), "gt": jnp.ones((2, 2, 2, 3))}
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(methods._METHODS, "linear", _LinearMethod)
        config.method = "linear"
        return train.build_step_functions(config, mesh, example), example


def test_ema_follows_the_warm_up_decay(tmp_path):
    steps, example = _linear_step_functions(tmp_path)
    state = steps.init(jax.random.PRNGKey(0), example)
    batch = {"lq": jnp.ones((2, 2, 2, 3)), "gt": jnp.full((2, 2, 2, 3), 3.0)}
    new_state, _ = steps.train_step(state, batch, {})
    w0, w1 = 1.0, float(new_state.params["w"][0, 0])
    assert w1 > w0  # moved towards gt / lq = 3
    # Step 0 uses decay min(0.999, 1/10) = 0.1: ema = 0.1 * w0 + 0.9 * w1.
    np.testing.assert_allclose(new_state.ema_params["w"][0, 0], 0.1 * w0 + 0.9 * w1, rtol=1e-6)
    np.testing.assert_allclose(train.ema_decay_at(jnp.asarray(990), 0.999), 0.991, rtol=1e-6)
    np.testing.assert_allclose(train.ema_decay_at(jnp.asarray(10**6), 0.999), 0.999)


def test_non_finite_step_leaves_the_state_untouched_and_training_continues(tmp_path):
    steps, example = _linear_step_functions(tmp_path)
    state = steps.init(jax.random.PRNGKey(0), example)
    good = {"lq": jnp.ones((2, 2, 2, 3)), "gt": jnp.full((2, 2, 2, 3), 3.0)}
    bad = {"lq": jnp.full((2, 2, 2, 3), jnp.nan), "gt": good["gt"]}
    state, _ = steps.train_step(state, good, {})
    before = jax.device_get(state)
    state, metrics = steps.train_step(state, bad, {})
    assert not bool(metrics["finite"])
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(state), before)
    state, metrics = steps.train_step(state, good, {})
    assert bool(metrics["finite"]) and int(state.step) == 2


def _smoke_batch(size: int = 16) -> dict[str, jax.Array]:
    gt = jax.random.uniform(jax.random.PRNGKey(3), (8, size, size, 3))
    lq = jnp.clip(gt + 0.1 * jax.random.normal(jax.random.PRNGKey(4), gt.shape), 0.0, 1.0)
    return {"lq": lq, "gt": gt}


def test_bfloat16_compute_keeps_a_float32_state_and_the_float32_loss(tmp_path):
    """Mixed precision: the loss in bf16 on cast copies, gradients and updates in float32."""
    batch = _smoke_batch()
    device = jax.devices()[:1]
    full, full_metrics, _ = _one_step(_loop_config(tmp_path), device, batch)
    config = _loop_config(tmp_path)
    config.train.compute_dtype = "bfloat16"
    mixed, mixed_metrics, _ = _one_step(config, device, batch)
    assert bool(mixed_metrics["finite"])
    assert {leaf.dtype for leaf in jax.tree.leaves(mixed.params)} == {jnp.dtype(jnp.float32)}
    assert mixed_metrics["loss"].dtype == jnp.float32
    # bf16 keeps 8 bits of mantissa: the loss agrees to about 1%, not to float32 round-off.
    np.testing.assert_allclose(mixed_metrics["loss"], full_metrics["loss"], rtol=2e-2)
    assert float(jnp.abs(mixed_metrics["loss"] - full_metrics["loss"])) > 0  # bf16 really ran
    moved = [
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(jax.tree.leaves(mixed.params), jax.tree.leaves(full.params), strict=True)
    ]
    assert max(moved) < 5e-3  # one step at most: both moved by the learning rate, nearly alike


def test_compute_dtype_must_be_float32_or_bfloat16(tmp_path):
    config = _loop_config(tmp_path)
    config.train.compute_dtype = "float16"
    with pytest.raises(ValueError, match="config.train.compute_dtype='float16'"):
        train.train_and_evaluate(config, tmp_path / "run")


class _CopyingRestorer(methods.RestorerMethod):
    """A restorer that keeps a frozen copy of itself, refreshed every 2 steps, and reads it."""

    def frozen_copies(self) -> dict[str, int]:
        return {"copy": 2}

    def loss(self, params, frozen, batch, rng, phase="train"):
        total, terms = super().loss(params, frozen, batch, rng, phase)
        terms["copy_sum"] = sum(jnp.sum(leaf) for leaf in jax.tree.leaves(frozen["copy"]))
        return total, terms


def test_frozen_copies_equal_the_state_at_each_refresh_and_resume_exactly(tmp_path, monkeypatch):
    monkeypatch.setitem(methods._METHODS, "copying_restorer", _CopyingRestorer)
    config = _loop_config(tmp_path)
    config.method = "copying_restorer"
    config.train.num_steps, config.train.eval_every = 5, 0
    config.train.log_every, config.train.checkpoint_every = 1, 4  # checkpoints at 4 and 5
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train.train_and_evaluate(config, straight)
    train.train_and_evaluate(config, resumed, stop_at=3)  # resumes between two refreshes
    train.train_and_evaluate(config, resumed)

    # The copy the last step read is the state's params at step 4 (its refresh).
    _, state_at_4 = checkpoint_lib.load_state(straight / "checkpoints", 4)
    _, copies = checkpoint_lib.load_state(straight / "checkpoints", item="copies")
    jax.tree.map(np.testing.assert_array_equal, copies["copy"], state_at_4["params"])
    # The loss read it: the logged sum at step 5 is the sum of those params.
    logged = {
        r["step"]: r["train/loss/copy_sum"]
        for r in writers.read_metrics(straight)
        if "train/loss/copy_sum" in r
    }
    expected = float(sum(np.sum(leaf) for leaf in jax.tree.leaves(state_at_4["params"])))
    np.testing.assert_allclose(logged[5], expected, rtol=1e-5)
    # A run stopped at step 3 and resumed ends bit-identical, copies included.
    for item in ("state", "copies"):
        _, a = checkpoint_lib.load_state(straight / "checkpoints", item=item)
        _, b = checkpoint_lib.load_state(resumed / "checkpoints", item=item)
        jax.tree.map(np.testing.assert_array_equal, a, b)


def _truncate_data_files(folder: pathlib.Path) -> None:
    """Cuts every array data file of a checkpoint step to a third (a disk-full or killed copy)."""
    for path in folder.rglob("*"):
        if path.is_file() and path.parent.name == "d":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def test_damaged_newest_checkpoint_falls_back_and_is_kept(tmp_path, caplog):
    config = _loop_config(tmp_path)
    config.train.eval_every = 0
    run = tmp_path / "run"
    train.train_and_evaluate(config, run)  # checkpoints at steps 3 and 6
    _, good = checkpoint_lib.load_state(run / "checkpoints")
    _truncate_data_files(run / "checkpoints" / "6")

    step, _ = checkpoint_lib.load_state(run / "checkpoints")  # what evaluate and restore read
    assert step == 3 and "step 6" in caplog.text
    with pytest.raises(FileNotFoundError, match="checkpoint step 6 .* cannot be restored"):
        checkpoint_lib.load_state(run / "checkpoints", 6)

    result = train.train_and_evaluate(config, run)  # resumes from 3, writes 6 again
    assert result["step"] == 6
    assert (run / "checkpoints_damaged" / "6").is_dir()  # set aside, not deleted
    step, again = checkpoint_lib.load_state(run / "checkpoints")
    assert step == 6
    jax.tree.map(np.testing.assert_array_equal, again["params"], good["params"])


def test_a_second_run_on_a_locked_workdir_is_refused_and_a_killed_holder_leaves_no_lock(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import pathlib, sys, time\n"
                "from restorect_jax import writers\n"
                f"with writers.workdir_lock(pathlib.Path({str(workdir)!r})):\n"
                "    print('locked', flush=True)\n"
                "    time.sleep(600)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(writers.WorkdirInUseError, match=f"in use by process {holder.pid}"):
            train.train_and_evaluate(_loop_config(tmp_path), workdir)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with writers.workdir_lock(workdir):  # the killed run's lock is gone
        assert (workdir / ".lock").read_text() == str(os.getpid())


@pytest.mark.slow  # four subprocess runs: about 5 min on 2 cores
def test_kill_9_at_three_random_steps_then_resume_ends_bit_identical(tmp_path):
    """`kill -9` (no handler runs) at three seeded random steps, each followed by the same
    command: the final params, EMA and optimiser state equal an uninterrupted run's."""
    root = pathlib.Path(__file__).resolve().parents[1]

    def command(workdir):
        return [
            sys.executable,
            "-m",
            "restorect_jax.main",
            "--config=configs/smoke.py",
            f"--workdir={workdir}",
            f"--config.data.tfds_dir={tmp_path / 'tfds'}",
            "--config.train.num_steps=12",
            "--config.train.eval_every=0",
            "--config.train.log_every=1",
            "--config.train.checkpoint_every=2",
        ]

    subprocess.run(command(tmp_path / "straight"), cwd=root, check=True, capture_output=True)
    killed = tmp_path / "killed"
    for kill_at in sorted(np.random.default_rng(0).choice(np.arange(2, 12), 3, replace=False)):
        process = subprocess.Popen(command(killed), cwd=root, stderr=subprocess.DEVNULL)
        metrics = killed / "metrics.jsonl"
        while process.poll() is None:
            steps = (
                [row["step"] for row in writers.read_metrics(killed)] if metrics.exists() else []
            )
            if steps and max(steps) >= kill_at:
                process.send_signal(signal.SIGKILL)
                break
        process.wait()
    subprocess.run(command(killed), cwd=root, check=True, capture_output=True)
    _, resumed = checkpoint_lib.load_state(killed / "checkpoints")
    _, reference = checkpoint_lib.load_state(tmp_path / "straight" / "checkpoints")
    jax.tree.map(np.testing.assert_array_equal, resumed, reference)
