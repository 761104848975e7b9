"""The shipped denoiser's pieces: CPU-designed networks, the noise-level map and its estimator,
`restore --noise_level`, and packing a long run into one file that resumes bit-exactly."""

import importlib.resources
import io
import json
import pathlib
import subprocess
import sys
import tarfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import init_params, run_module, save_run
from PIL import Image

from configs import denoise_sweep, denoiser_smoke
from restorect_jax import checkpoint as checkpoint_lib
from restorect_jax import data, inference, methods, noise_level, packing, train
from restorect_jax.models.convnets import ResUNet, UnshuffleCNN

REPO = pathlib.Path(__file__).resolve().parents[1]


def _photo(size: int = 96) -> np.ndarray:
    """A crop of scikit-image's astronaut photo (RGB float32 in [0, 1])."""
    image = Image.open(importlib.resources.files("skimage.data") / "astronaut.png")
    return np.asarray(image, np.float32)[100 : 100 + size, 150 : 150 + size] / 255.0


# --- networks and the noise-level map -----------------------------------------------------------


@pytest.mark.parametrize(
    "model", [UnshuffleCNN(width=8, num_blocks=1), ResUNet(width=8, num_blocks=(1, 1, 1))]
)
def test_cpu_networks_start_as_the_identity_on_any_size(model):
    lq = jnp.asarray(np.random.default_rng(0).random((2, 21, 30, 3)), jnp.float32)
    params = model.init(jax.random.PRNGKey(0), lq)
    np.testing.assert_array_equal(model.apply(params, lq), lq)  # zero-initialised output conv


def test_noise_map_network_reads_the_level_and_refuses_a_missing_one():
    model = UnshuffleCNN(width=8, num_blocks=1, noise_map=True)
    lq = jnp.asarray(_photo(32)[None])
    params = model.init(jax.random.PRNGKey(0), lq, jnp.zeros((1,)))
    params = jax.tree.map(lambda leaf: leaf + 0.05, params)  # move the output off zero
    low = model.apply(params, lq, jnp.asarray([5 / 255]))
    high = model.apply(params, lq, jnp.asarray([50 / 255]))
    assert float(jnp.abs(high - low).mean()) > 1e-4
    with pytest.raises(ValueError, match="noise level is missing"):
        model.apply(params, lq)
    with pytest.raises(ValueError, match="noise level is given"):
        UnshuffleCNN(width=8, num_blocks=1).apply(params, lq, jnp.zeros((1,)))


def test_training_batches_carry_each_crops_sigma(tmp_path):
    config = denoiser_smoke.get_config()
    config.data.tfds_dir = str(tmp_path / "tfds")
    config.data.quantize = False
    config.data.clip = False  # unclipped noise: its spread is exactly the drawn sigma
    batch = next(data.make_train_iterator(config.data, batch_size=8, seed=0))
    levels = batch["noise_level"]
    assert levels.shape == (8,) and levels.dtype == np.float32
    assert np.all((levels >= 0) & (levels <= 75 / 255))
    spread = (batch["lq"] - batch["gt"]).reshape(8, -1).std(axis=1)
    np.testing.assert_allclose(spread, levels, rtol=0.1, atol=2e-3)


def test_quantised_degradation_is_8_bit_and_the_level_needs_awgn(tmp_path):
    spec = data.DegradationSpec("awgn", noise_sigma=25.0, quantize=True)
    noisy, level = data.degrade_with_level(_photo(16), spec, np.random.default_rng(0))
    np.testing.assert_array_equal(noisy * 255, np.round(noisy * 255))
    assert level == pytest.approx(25 / 255)
    config = denoiser_smoke.get_config()
    config.data.degradation = "rain"
    with pytest.raises(
        ValueError, match=r"data.noise_level needs data.degradation in \('awgn', 'camera'\)"
    ):
        data.reads_noise_level(config.data)


def test_noise_map_config_needs_levels_in_its_batches():
    config = denoiser_smoke.get_config()
    config.data.noise_level = False
    with pytest.raises(ValueError, match="data.noise_level"):
        methods.validate(config)


# --- the estimator ------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [5, 15, 25, 50])
def test_estimator_finds_the_sigma_of_white_noise_on_a_photo(sigma):
    clean = _photo(192)
    rng = np.random.default_rng(sigma)
    noisy = clean + rng.standard_normal(clean.shape).astype(np.float32) * sigma / 255
    estimate = float(noise_level.estimate_sigma(jnp.asarray(noisy[None]))[0]) * 255
    assert abs(estimate - sigma) < 0.15 * sigma + 1.5, estimate


def test_estimator_is_per_image_and_handles_tiny_images():
    clean = _photo(64)
    rng = np.random.default_rng(0)
    batch = np.stack([clean + rng.standard_normal(clean.shape) * s / 255 for s in (10, 40)])
    low, high = np.asarray(noise_level.estimate_sigma(jnp.asarray(batch, jnp.float32))) * 255
    assert low < 20 < 30 < high
    assert np.isfinite(noise_level.estimate_sigma(jnp.zeros((1, 4, 4, 3)))).all()


# --- restore --noise_level ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def noise_map_run(tmp_path_factory) -> pathlib.Path:
    config = denoiser_smoke.get_config()
    workdir = tmp_path_factory.mktemp("runs") / "denoiser"
    params = init_params(config)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    # Move the zero-initialised output off zero, so the output depends on the level.
    leaves = [leaf + 0.05 * jax.random.normal(key, leaf.shape) for leaf, key in zip(leaves, keys)]
    save_run(workdir, config, jax.tree.unflatten(tree, leaves))
    return workdir


def _restore(args: list[str]):
    return run_module("restorect_jax.restore", args)


@pytest.mark.parametrize(
    "value, message",
    [("-5", "--noise_level -5: must be in [0, 255]"), ("300", "--noise_level 300: must be in")],
)
def test_bad_noise_level_is_one_line_before_any_image(noise_map_run, tmp_path, value, message):
    photo = tmp_path / "photo.png"
    Image.fromarray((_photo(32) * 255).astype(np.uint8)).save(photo)
    result = _restore(
        [
            f"--workdir={noise_map_run}",
            f"--noise_level={value}",
            str(photo),
            f"--output={tmp_path}/o",
        ]
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr[-800:]
    assert "Traceback" not in result.stderr and not (tmp_path / "o").exists()


def test_noise_level_on_a_model_without_a_map_is_refused(student_run, tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray((_photo(32) * 255).astype(np.uint8)).save(photo)
    result = _restore(
        [f"--workdir={student_run}", "--noise_level=10", str(photo), f"--output={tmp_path}/o"]
    )
    assert result.returncode == 2 and "--noise_level: " in result.stderr
    assert "reads no noise level" in result.stderr


def test_noise_level_sets_the_strength_and_blind_uses_the_estimate(noise_map_run, tmp_path):
    photo = tmp_path / "photo.png"
    clean = _photo(48)
    noisy = np.clip(clean + np.random.default_rng(0).standard_normal(clean.shape) * 30 / 255, 0, 1)
    Image.fromarray(np.round(noisy * 255).astype(np.uint8)).save(photo)
    outputs = {}
    for name, flags in (("blind", []), ("n5", ["--noise_level=5"]), ("n60", ["--noise_level=60"])):
        result = _restore(
            [f"--workdir={noise_map_run}", *flags, str(photo), f"--output={tmp_path / name}"]
        )
        assert result.returncode == 0, result.stderr[-800:]
        outputs[name] = np.asarray(Image.open(tmp_path / name / "photo.png"), np.float32)
    model = inference.load_model(workdir=str(noise_map_run))
    lq = (np.round(noisy * 255) / 255)[None].astype(np.float32)
    estimate = float(noise_level.estimate_sigma(jnp.asarray(lq))[0])
    expected = {
        name: model.predict(lq, noise_level=level)[0]
        for name, level in (("blind", estimate), ("n5", 5 / 255), ("n60", 60 / 255))
    }
    assert np.abs(expected["n5"] - expected["n60"]).mean() > 1e-3
    for name, image in expected.items():
        np.testing.assert_allclose(outputs[name], np.round(np.clip(image, 0, 1) * 255), atol=1)


def test_exported_noise_map_model_takes_the_level(noise_map_run, tmp_path):
    from restorect_jax import exported

    output = tmp_path / "model.stablehlo"
    result = run_module(
        "restorect_jax.export", [f"--workdir={noise_map_run}", f"--output={output}"]
    )
    assert result.returncode == 0, result.stderr[-800:]
    run = exported.load_exported(output)
    model = inference.load_model(workdir=str(noise_map_run))
    images = _photo(40)[None]
    np.testing.assert_allclose(
        run(images, noise_level=20 / 255), model.predict(images, noise_level=20 / 255), atol=1e-5
    )
    with pytest.raises(ValueError, match="needs a noise_level"):
        run(images)


# --- packs --------------------------------------------------------------------------------------


def _pack_config(tmp_path: pathlib.Path):
    config = denoiser_smoke.get_config()
    config.data.tfds_dir = str(tmp_path / "tfds")
    config.train.num_steps, config.train.eval_every = 4, 4
    config.train.log_every, config.train.checkpoint_every = 1, 2
    return config


def test_pack_unpack_resumes_bit_exactly(tmp_path):
    config = _pack_config(tmp_path)
    straight, packed_run, resumed = tmp_path / "straight", tmp_path / "packed", tmp_path / "resumed"
    train.train_and_evaluate(config, straight)
    train.train_and_evaluate(config, packed_run, stop_at=2)
    pack = tmp_path / "run.pack"
    assert packing.pack(packed_run, pack) == 2
    assert packing.unpack(pack, resumed) == 2
    assert (resumed / "metrics.jsonl").read_text() == (packed_run / "metrics.jsonl").read_text()
    train.train_and_evaluate(config, resumed)
    _, state = checkpoint_lib.load_state(straight / "checkpoints")
    _, resumed_state = checkpoint_lib.load_state(resumed / "checkpoints")
    jax.tree.map(np.testing.assert_array_equal, state, resumed_state)
    rows = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    clock = [row["time/cpu_seconds"] for row in rows if "time/cpu_seconds" in row]
    assert clock == sorted(clock) and len(clock) >= 4  # the clock carries on across the pack


def test_pack_errors_name_the_flag_and_file(tmp_path):
    config = _pack_config(tmp_path)
    run = tmp_path / "run"
    train.train_and_evaluate(config, run, stop_at=2)
    pack = tmp_path / "run.pack"
    packing.pack(run, pack)
    with pytest.raises(packing.PackError, match="--out .*exists"):
        packing.pack(run, pack)
    with pytest.raises(packing.PackError, match="--workdir .*not empty"):
        packing.unpack(pack, run)
    with tarfile.open(pack) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    damaged = tmp_path / "damaged.pack"
    with tarfile.open(damaged, "w") as tar:
        for name, payload in members.items():
            if name == "state.msgpack":
                payload = payload[:-1] + bytes([payload[-1] ^ 1])
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(packing.PackError, match="checksum"):
        packing.unpack(damaged, tmp_path / "new")
    result = subprocess.run(
        [sys.executable, "tools/pack_run.py", f"--unpack={damaged}", f"--workdir={tmp_path / 'x'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "--pack" in result.stderr and "Traceback" not in result.stderr


def test_sweep_candidates_build_and_validate():
    for candidate in denoise_sweep.CANDIDATES:
        methods.validate(denoise_sweep.get_config(candidate))
