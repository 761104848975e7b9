"""FLUX-IR (METHODS 4): phases, best-of-N selection, gradients only to the trained model, and a
smoke run through every phase that resumes bit-exactly and restores. (The SDE step's marginal
is tested in test_flow.py, the breakpoint cost in test_flow.py and test_irflow.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import train_twice_and_check_resume

from configs import fluxir_denoise, fluxir_smoke
from restorect_jax import flow, inference, methods, train


def _batch(size=16):
    rng = np.random.default_rng(0)
    gt = rng.uniform(size=(2, size, size, 3)).astype(np.float32)
    lq = np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1).astype(np.float32)
    return {"lq": jnp.asarray(lq), "gt": jnp.asarray(gt)}


def _method(variant="two_step"):
    config = fluxir_smoke.get_config(variant)
    methods.validate(config)
    return methods.get_method("fluxir")(config)


def test_phases_follow_the_step_split():
    method = _method()
    settings = method.settings
    boundaries = (settings.base_steps, settings.base_steps + settings.rl_steps)
    phases = [method.phase_at(step) for step in range(method.config.train.num_steps)]
    assert phases == ["base"] * boundaries[0] + ["rl"] * settings.rl_steps + ["distill"] * (
        method.config.train.num_steps - boundaries[1]
    )
    assert method.frozen_copies() == {"policy": settings.rl.refresh_every, "teacher": boundaries[1]}
    assert _method("base").frozen_copies() == {}


def _toy(method):
    """A network whose velocity is `scale * x + lq` (params {"scale": s})."""
    method.network = lambda params, lq: lambda x, t: params["scale"] * x + lq
    return method


def test_best_of_n_picks_the_highest_reward_and_blocks_its_gradient():
    method = _toy(_method())
    batch = _batch()
    noise = jax.random.normal(jax.random.PRNGKey(0), batch["gt"].shape)
    frozen = {"policy": {"scale": jnp.float32(-0.5)}}
    rng = jax.random.PRNGKey(1)
    best, rewards = method.best_trajectory(frozen, batch, noise, rng)
    # The same N trajectories by hand: the batch repeated N times, the same rng.
    n = method.settings.rl.num_samples
    repeated = {key: jnp.concatenate([value] * n) for key, value in batch.items()}
    grid = flow.parse_sampler(method.settings.sampler).time_grid(10)
    _, paths = flow.integrate(
        method.network(frozen["policy"], repeated["lq"]),
        jnp.concatenate([noise] * n),
        grid,
        "sde",
        rng=rng,
        alpha_max=method.settings.rl.alpha_max,
        return_trajectory=True,
    )
    paths = paths.reshape(paths.shape[0], n, *noise.shape)
    by_hand = -np.mean(
        np.abs(np.asarray(paths[-1]) - np.asarray(batch["gt"])[None]), axis=(2, 3, 4)
    )
    np.testing.assert_allclose(rewards, by_hand, rtol=1e-5)
    for image in range(2):
        winner = int(np.argmax(by_hand[:, image]))
        np.testing.assert_allclose(best[:, image], paths[:, winner, image], rtol=1e-6)
    grad = jax.grad(
        lambda s: jnp.sum(method.best_trajectory({"policy": {"scale": s}}, batch, noise, rng)[0])
    )(jnp.float32(-0.5))
    assert float(grad) == 0.0


@pytest.mark.parametrize("phase", ["rl", "distill"])
def test_gradients_reach_the_trained_model_and_not_the_frozen_copy(phase):
    method = _toy(_method())
    batch = _batch()
    params = {"scale": jnp.float32(-0.8)}
    frozen = {"policy": {"scale": jnp.float32(-0.5)}, "teacher": {"scale": jnp.float32(-0.6)}}
    loss = lambda p, f: method.loss(p, f, batch, jax.random.PRNGKey(2), phase)[0]
    grad_params, grad_frozen = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, frozen)
    assert float(grad_params["scale"]) != 0.0
    assert all(float(g) == 0.0 for g in jax.tree.leaves(grad_frozen))


@pytest.mark.parametrize("phase", ["base", "rl", "distill"])
@pytest.mark.parametrize("into_phase", [0, 5])
def test_each_phase_restarts_the_ema_and_validates_at_its_own_grid(phase, into_phase):
    """The EMA's warm-up decay (1 + s) / (10 + s) counts s from the phase's first step, so the
    old average's weight is 0.1 at that step; validation uses `fluxir.sampler` until distill."""
    method = _toy(_method())
    start = method.ema_warmup_start(phase)
    assert method.phase_at(start) == phase and (start == 0 or method.phase_at(start - 1) != phase)
    params = {"scale": jnp.float32(-0.8)}
    optimizer = optax.sgd(0.1)
    state = train.TrainState(
        step=jnp.int32(start + into_phase),
        params=params,
        ema_params={"scale": jnp.float32(0.0)},
        opt_state=optimizer.init(params),
    )
    frozen = {"policy": {"scale": jnp.float32(-0.5)}, "teacher": {"scale": jnp.float32(-0.6)}}
    new, _ = train.train_step(
        state,
        _batch(),
        frozen,
        phase,
        method=method,
        optimizer=optimizer,
        ema_decay=0.999,
        base_rng=jax.random.PRNGKey(0),
    )
    old_weight = (1 + into_phase) / (10 + into_phase)
    np.testing.assert_allclose(
        new.ema_params["scale"], (1 - old_weight) * new.params["scale"], rtol=1e-6
    )
    expected = None if phase == "distill" else flow.parse_sampler(method.settings.sampler)
    assert method.validation_sampler(phase) == expected


def test_distill_grids_put_the_breakpoint_on_the_teacher_grid():
    method = _method()
    method.settings.breakpoint, method.settings.teacher_steps = 0.35, 4
    teacher, student, index = method.distill_grids()
    np.testing.assert_allclose(teacher, [1.0, 0.75, 0.5, 0.35, 0.25, 0.0])
    np.testing.assert_allclose(student, [1.0, 0.35, 0.0])
    assert index == 3
    assert method.default_sampler().grid == (1.0, 0.35, 0.0)
    assert _method("one_step").default_sampler().describe() == "euler:1"
    assert _method("rl").default_sampler().describe() == "euler:3"


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("fluxir.student_steps", 3, "0 .no distill phase., 1 or 2"),
        ("fluxir.breakpoint", 1.0, r"in \(0, 1\)"),
        ("fluxir.rl.reward", "lpips", "one of"),
        ("fluxir.rl.num_samples", 1, ">= 2"),
        ("fluxir.rl_steps", 5000, "<= train.num_steps"),
        ("fluxir.rl.refresh_every", 7, "divide fluxir.base_steps"),
    ],
)
def test_config_errors_name_the_key(key, value, message):
    config = fluxir_denoise.get_config()
    node = config
    for part in key.split(".")[:-1]:
        node = node[part]
    node[key.split(".")[-1]] = value
    with pytest.raises(ValueError, match=rf"config\.{key}.*{message}"):
        methods.validate(config)


@pytest.mark.slow  # 75 s; the phases, copies and losses have fast tests above, resume in test_train
def test_smoke_run_goes_through_every_phase_resumes_and_restores(tmp_path):
    config = fluxir_smoke.get_config()
    config.fluxir.base_steps, config.fluxir.rl_steps = 1, 2  # steps 0 | 1, 2 | 3 of 4
    straight, _ = train_twice_and_check_resume(config, tmp_path)
    model = inference.load_run(straight)
    assert model.takes_sampler
    image = np.random.default_rng(0).uniform(size=(1, 16, 20, 3)).astype(np.float32)
    for sampler in (None, flow.parse_sampler("euler:3")):
        out = model.predict(image, None, sampler)
        assert out.shape == image.shape and np.all(np.isfinite(out))
