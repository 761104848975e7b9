"""tools/plan_memory.py: the train step compiled ahead of time for abstract inputs."""

import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp

from configs import smoke
from restorect_jax import methods

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _plan_memory(*args: str) -> subprocess.CompletedProcess:
    """Runs the tool in a subprocess (it defines absl flags, as evaluate.py does)."""
    command = [sys.executable, "tools/plan_memory.py", "--config", "configs/smoke.py", *args]
    return subprocess.run(
        command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def _smoke_params() -> int:
    """Parameter count of the smoke teacher, from abstract shapes."""
    config = smoke.get_config()
    method = methods.get_method(config.method)(config)
    example = {key: jnp.zeros((1, 16, 16, 3)) for key in ("lq", "gt")}
    shapes = jax.eval_shape(method.init_params, jax.random.PRNGKey(0), example)
    return sum(leaf.size for leaf in jax.tree.leaves(shapes))


def test_plan_memory_writes_positive_bytes_and_flops(tmp_path):
    out = tmp_path / "plan.json"
    run = _plan_memory(
        "--mesh=2,2", "--batch=4", "--patch=16", "--config.mesh.shard_params=True", f"--json={out}"
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "GFLOP per step" in run.stdout
    plan = json.loads(out.read_text())
    assert plan["mesh"] == {"data": 2, "model": 2} and plan["shard_params"]
    assert plan["batch_size"] == 4 and plan["patch_size"] == 16
    assert plan["params"] == _smoke_params()
    # params, EMA and two Adam moments, less than fully replicated because they are split.
    assert 0 < plan["state_bytes_per_device"] < 4 * 4 * plan["params"]
    figures = plan["phases"]["train"]
    for key in ("argument_bytes", "output_bytes", "temp_bytes", "total_bytes", "flops_per_device"):
        assert figures[key] > 0, key
    assert figures["alias_bytes"] > 0  # the donated state


def test_bad_mesh_names_the_flag():
    run = _plan_memory("--mesh=0,2")
    assert run.returncode != 0 and "--mesh='0,2'" in run.stderr
