"""Test-session settings: 8 fake CPU devices, fast PRNG compiles, a persistent compile cache.

These must be set before JAX is imported anywhere, which is why they live here.
"""

import os

# Fast XLA compiles: the test programs are tiny, so backend optimisation costs more than it saves
# (it halves the compile time of the smoke train step on 2 cores).
os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0 "
    "--xla_llvm_disable_expensive_passes=true",
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_THREEFRY_PARTITIONABLE", "0")
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    os.path.join(os.path.expanduser("~"), ".cache", "restorect_jax", "jax_test_cache"),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import pathlib

import pytest


def save_run(workdir: pathlib.Path, config, params) -> None:
    """A workdir as training leaves it: config.json and one checkpoint (step 3) of `params`."""
    from restorect_jax import checkpoint as checkpoint_lib

    workdir.mkdir(parents=True)
    (workdir / "config.json").write_text(config.to_json_best_effort())
    checkpoint_lib.save_params(workdir / "checkpoints", 3, params, {"batches": 3})


def init_params(config) -> dict:
    """Freshly initialised prediction params of `config`'s method."""
    import jax
    import jax.numpy as jnp

    from restorect_jax import methods

    method = methods.get_method(config.method)(config, inference=True)
    batch = {key: jnp.zeros((1, 16, 16, 3)) for key in ("lq", "gt")}
    return jax.jit(method.init_params)(jax.random.PRNGKey(0), batch)


@pytest.fixture(scope="session")
def student_run(tmp_path_factory) -> pathlib.Path:
    """A run of the tiny flow student (configs/restorect_smoke.py) with initial params."""
    from configs import restorect_smoke

    config = restorect_smoke.get_config()
    workdir = tmp_path_factory.mktemp("runs") / "student"
    save_run(workdir, config, init_params(config))
    return workdir


def train_twice_and_check_resume(config, tmp_path: pathlib.Path) -> tuple[pathlib.Path, dict]:
    """Trains `config` for 4 steps straight and again stopped at step 2 and resumed; asserts
    the two end states are bit-identical. Returns the straight run's folder and end state."""
    import jax
    import numpy as np

    from restorect_jax import checkpoint as checkpoint_lib
    from restorect_jax import train

    config.data.tfds_dir = str(tmp_path / "tfds")
    config.train.num_steps, config.train.eval_every = 4, 4
    config.train.log_every, config.train.checkpoint_every = 1, 2
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train.train_and_evaluate(config, straight)
    train.train_and_evaluate(config, resumed, stop_at=2)
    train.train_and_evaluate(config, resumed)
    _, state = checkpoint_lib.load_state(straight / "checkpoints")
    _, resumed_state = checkpoint_lib.load_state(resumed / "checkpoints")
    jax.tree.map(np.testing.assert_array_equal, state, resumed_state)
    return straight, state


def run_module(module: str, args: list[str], cwd=None, env=None):
    """Runs `python -m module args...` (from the repository root with it on PYTHONPATH, unless
    `cwd` / `env` say otherwise); returns the completed process."""
    import subprocess
    import sys

    repo = pathlib.Path(__file__).resolve().parents[1]
    if env is None:
        env = {"PYTHONPATH": str(repo), "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd or repo,
        env=env,
    )
