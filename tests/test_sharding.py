"""Sharded parameters (FSDP over the mesh's model axis): the placement rule, equality with the
replicated step, per-device memory, and checkpoints moved between meshes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from configs import denoiser_smoke, smoke, teacher_denoise
from restorect_jax import checkpoint as checkpoint_lib
from restorect_jax import methods, train
from restorect_jax import sharding as sharding_lib


@pytest.mark.parametrize(
    "shape, axis_size, min_size, expected",
    [
        ((3, 3, 192, 384), 8, 4096, P(None, None, None, "model")),  # largest divisible axis
        ((192, 1020), 4, 4096, P(None, "model")),
        ((192, 1020), 8, 4096, P("model")),  # 1020 is not a multiple of 8: the next axis
        ((256, 256), 8, 4096, P(None, "model")),  # a tie goes to the last axis
        ((3, 3, 1, 1021), 8, 0, P()),  # no divisible axis
        ((64,), 8, 4096, P()),  # small leaf
        ((8192,), 8, 4096, P("model")),
        ((), 8, 0, P()),  # scalar
        ((256, 256), 1, 0, P()),  # a model axis of one device
    ],
)
def test_fsdp_spec(shape, axis_size, min_size, expected):
    assert sharding_lib.fsdp_spec(shape, axis_size, min_size) == expected


def test_fsdp_splits_the_batch_over_both_axes():
    config = smoke.get_config()
    config.mesh.data, config.mesh.model = 2, 4
    mesh = sharding_lib.create_mesh(config.mesh)
    assert sharding_lib.batch_split(mesh) == 2
    assert sharding_lib.batch_split(mesh, shard_params=True) == 8
    assert sharding_lib.batch_sharding(mesh, shard_params=True).spec == P(("data", "model"))


def _batches(count: int, size: int = 16) -> list[dict[str, jax.Array]]:
    """`count` batches of 8 noisy/clean pairs: one pair per device under FSDP on 8 devices."""
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(count):
        gt = rng.uniform(size=(8, size, size, 3)).astype(np.float32)
        lq = np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1).astype(np.float32)
        batches.append({"gt": jnp.asarray(gt), "lq": jnp.asarray(lq)})
    return batches


def _step_functions(mesh_shape: tuple[int, int], shard_params: bool, example):
    """The smallest CNN restorer's step functions (configs/denoiser_smoke.py: FSDP is the
    same rule for any network, at a fraction of the teacher's compile time) on a (data, model)
    mesh over the first devices, its convolution kernels split along the model axis."""
    config = denoiser_smoke.get_config()
    config.train.learning_rate = 1e-4
    config.mesh.data, config.mesh.model = mesh_shape
    config.mesh.shard_params = shard_params
    config.mesh.shard_min_size = 64  # the tiny network's kernels, 576 to 1152 elements
    mesh = sharding_lib.create_mesh(config.mesh, jax.devices()[: mesh_shape[0] * mesh_shape[1]])
    return train.build_step_functions(config, mesh, example)


def _train(steps, state, batches) -> tuple[train.TrainState, list[float]]:
    losses = []
    for batch in batches:
        batch = jax.device_put(batch, steps.batch_sharding)
        state, metrics = steps.train_step(state, batch, {})
        losses.append(float(metrics["loss"]))
    return state, losses


@pytest.fixture(scope="module")
def fsdp_and_replicated():
    """Three steps of the tiny restorer from the same init: FSDP on a (data=2, model=4) mesh of
    the 8 devices, and replicated on one device. Returns ((state, losses, steps), ...) of each."""
    batches = _batches(3)
    one_device = _step_functions((1, 1), False, batches[0])
    fsdp = _step_functions((2, 4), True, batches[0])
    state = one_device.init(jax.random.PRNGKey(0), batches[0])
    # One init compile, not two; through the host, so that no buffer is shared with `state`.
    fsdp_state = jax.device_put(jax.device_get(state), fsdp.state_sharding)
    return (
        (*_train(fsdp, fsdp_state, batches), fsdp),
        (*_train(one_device, state, batches), one_device),
    )


def test_fsdp_step_matches_replicated(fsdp_and_replicated):
    (sharded, sharded_losses, steps), (replicated, replicated_losses, _) = fsdp_and_replicated
    np.testing.assert_allclose(sharded_losses, replicated_losses, atol=1e-5)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5),
        jax.device_get(sharded),
        jax.device_get(replicated),
    )
    assert steps.batch_sharding.shard_shape((8, 16, 16, 3)) == (1, 16, 16, 3)  # a pair each
    # The state stays where the rule puts it; the large leaves, most of the bytes, are split.
    for leaf, expected in zip(jax.tree.leaves(sharded), jax.tree.leaves(steps.state_sharding)):
        assert leaf.sharding.is_equivalent_to(expected, leaf.ndim)
    full = sum(leaf.nbytes for leaf in jax.tree.leaves(sharded.params))
    on_device_0 = sum(
        shard.data.nbytes
        for leaf in jax.tree.leaves(sharded.params)
        for shard in leaf.addressable_shards
        if shard.device == jax.devices()[0]
    )
    assert on_device_0 < 0.5 * full, (on_device_0, full)


def _bytes_per_device(abstract_tree, shardings) -> int:
    """Bytes one device holds of `abstract_tree` placed by `shardings`."""
    return sum(
        int(np.prod(sharding.shard_shape(leaf.shape))) * leaf.dtype.itemsize
        for leaf, sharding in zip(jax.tree.leaves(abstract_tree), jax.tree.leaves(shardings))
    )


def test_fsdp_cuts_teacher_params_per_device_to_a_quarter():
    config = teacher_denoise.get_config()
    config.mesh.data, config.mesh.model = 1, 8
    mesh = sharding_lib.create_mesh(config.mesh)
    example = {key: jnp.zeros((1, 16, 16, 3), jnp.float32) for key in ("lq", "gt")}
    replicated = train.build_step_functions(config, mesh, example)
    config.mesh.shard_params = True
    sharded = train.build_step_functions(config, mesh, example)
    state = sharded.abstract_state

    full = _bytes_per_device(state.params, replicated.state_sharding.params)
    assert full == sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(state.params))
    per_device = _bytes_per_device(state.params, sharded.state_sharding.params)
    assert per_device <= full / 4, (per_device, full)
    # EMA and optimiser moments follow the params.
    assert (
        _bytes_per_device(state, sharded.state_sharding)
        <= _bytes_per_device(state, replicated.state_sharding) / 4
    )


def test_fsdp_checkpoint_restores_replicated(fsdp_and_replicated, tmp_path):
    (sharded, _, steps), _ = fsdp_and_replicated
    expected = jax.device_get(sharded)
    checkpointer = checkpoint_lib.Checkpointer(tmp_path / "checkpoints", keep=1, async_save=False)
    checkpointer.save(3, sharded, {"batches": 3})
    checkpointer.close()

    config = smoke.get_config()
    config.mesh.data, config.mesh.model = 8, 1
    mesh = sharding_lib.create_mesh(config.mesh)
    target = sharding_lib.state_shardings(mesh, steps.abstract_state)
    abstract = checkpoint_lib.abstract_with_shardings(steps.abstract_state, target)
    restorer = checkpoint_lib.Checkpointer(tmp_path / "checkpoints", keep=1, async_save=False)
    restored, data_state = restorer.restore(3, abstract)
    restorer.close()

    assert data_state == {"batches": 3}
    assert all(leaf.sharding.is_fully_replicated for leaf in jax.tree.leaves(restored))
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(restored), expected)


@pytest.mark.parametrize(
    "field, value", [("shard_params", None), ("shard_min_size", -1), ("shard_min_size", None)]
)
def test_mesh_validation_names_the_key(field, value):
    config = smoke.get_config()
    config.mesh[field] = value
    with pytest.raises(ValueError, match=rf"config\.mesh\.{field}="):
        methods.validate(config)
