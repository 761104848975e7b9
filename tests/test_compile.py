"""Start-up cost: init on the host CPU for accelerator meshes, and programs compiled ahead."""

import functools
import os
import pathlib
import re
import subprocess
import sys

import jax
import numpy as np

from configs import smoke
from restorect_jax import sharding as sharding_lib
from restorect_jax import train

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_host_init_equals_the_mesh_init_with_sharded_params():
    config = smoke.get_config()
    config.mesh.model = 4
    config.mesh.shard_params = True
    mesh = sharding_lib.create_mesh(config.mesh)
    steps = train.build_step_functions(config, mesh, train.example_batch())
    init_fn = functools.partial(
        train.create_train_state,
        method=steps.method,
        optimizer=train.make_optimizer(config.train),
    )
    rng = jax.random.PRNGKey(config.seed)
    on_mesh = steps.init(rng, train.example_batch())
    on_host = train.host_init(init_fn, steps.state_sharding)(rng, train.example_batch())
    sharded = 0
    for got, want in zip(jax.tree.leaves(on_host), jax.tree.leaves(on_mesh), strict=True):
        assert got.sharding == want.sharding
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        sharded += not got.sharding.is_fully_replicated
    assert sharded > 0  # the FSDP placement was exercised, not only replicated leaves


def _main(args: list[str], cache: pathlib.Path) -> subprocess.CompletedProcess:
    env = {
        "PYTHONPATH": str(REPO),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
    }
    return subprocess.run(
        [sys.executable, "-m", "restorect_jax.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def _cache_summary(stderr: str) -> tuple[int, int]:
    match = re.search(r"(\d+) compiles asked the persistent cache, (\d+) loaded from it", stderr)
    assert match, stderr[-2000:]
    return int(match.group(1)), int(match.group(2))


def test_compile_only_prepares_the_programs_the_run_loads(tmp_path):
    common = [
        "--config=configs/smoke.py",
        f"--workdir={tmp_path / 'run'}",
        "--config.train.num_steps=3",
        "--config.train.eval_every=0",
        f"--config.data.tfds_dir={tmp_path / 'tfds'}",
    ]
    ahead = _main([*common, "--compile_only"], tmp_path / "cache")
    assert ahead.returncode == 0, ahead.stderr[-2000:]
    assert _cache_summary(ahead.stderr)[1] == 0  # an empty cache answers nothing
    assert not (tmp_path / "run" / "checkpoints").exists()  # compiling trains nothing

    run = _main(common, tmp_path / "cache")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Run ended at step 3" in run.stderr
    assert _cache_summary(run.stderr)[1] >= 2  # init and the train step came from the cache
    # eval_every=0: no validation program, no scores
    assert "| validation (EMA params" not in run.stderr
    assert not (tmp_path / "run" / "final_metrics.json").exists()
