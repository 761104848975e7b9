"""IR-Flow (METHODS 2): sampler exactness, the multi-step consistency term, the TimeUNet, and a
smoke run that trains, resumes bit-exactly and restores."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_module, train_twice_and_check_resume

from configs import irflow_denoise, irflow_smoke
from restorect_jax import flow, inference, methods
from restorect_jax.methods.irflow import PUBLIC_GRIDS
from restorect_jax.models import TimeUNet


def _batch(size=(2, 16, 16, 3), seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(size=size).astype(np.float32)
    lq = np.clip(gt + rng.normal(0, 0.1, size), 0, 1).astype(np.float32)
    return {"lq": jnp.asarray(lq), "gt": jnp.asarray(gt)}


def _method(variant="cumulative", **irflow):
    config = irflow_smoke.get_config(variant)
    config.irflow.update(irflow)
    methods.validate(config)
    method = methods.get_method("irflow")(config)
    params = jax.jit(method.init_params)(jax.random.PRNGKey(0), _batch())
    return method, _perturbed(params)


def _perturbed(params, scale=0.1):
    """Every parameter moved off its initial value: at init the TimeUNet outputs exactly 0."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
    return jax.tree.unflatten(
        tree, [p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)]
    )


SAMPLERS = [
    *(flow.SamplerSpec(solver, k) for solver in ("euler", "heun", "rk4") for k in (1, 2, 4, 10)),
    *(
        flow.SamplerSpec(solver, grid=g)
        for solver in ("euler", "heun")
        for g in PUBLIC_GRIDS.values()
    ),
]


@pytest.mark.parametrize("grid_kind", ["uniform", "public"])
def test_exact_cumulative_velocity_lands_on_the_clean_image_for_every_sampler(grid_kind):
    """With G(x_t, t) = x_t - x (x known), `predict` returns x for every solver and grid."""
    method, _ = _method(grid=grid_kind)
    batch = _batch()
    method.network = lambda params: lambda x_t, t: x_t - batch["gt"]
    for sampler in SAMPLERS:
        restored = method.predict(None, {}, batch, sampler)
        np.testing.assert_allclose(restored, batch["gt"], atol=2e-6, err_msg=sampler.describe())


def test_public_grids_replace_uniform_steps_only_when_asked():
    uniform, _ = _method(grid="uniform")
    public, _ = _method(grid="public")
    for steps, grid in PUBLIC_GRIDS.items():
        spec = flow.SamplerSpec("euler", steps)
        np.testing.assert_allclose(public.time_grid(spec), grid)
        np.testing.assert_allclose(uniform.time_grid(spec), flow.time_grid(steps))
    # 10 steps has no public grid; an explicit grid is always kept.
    np.testing.assert_allclose(public.time_grid(flow.SamplerSpec("euler", 10)), flow.time_grid(10))
    explicit = flow.parse_sampler("euler:1,0.7,0")
    np.testing.assert_allclose(public.time_grid(explicit), [1.0, 0.7, 0.0])
    np.testing.assert_allclose(public.time_grid(public.default_sampler()), PUBLIC_GRIDS[4])


@pytest.mark.parametrize("unroll", [False, True])
def test_masked_rollout_equals_the_unrolled_k_step_loop(unroll):
    method, params = _method(msc={"unroll": unroll})
    lq = _batch()["lq"]
    network = method.network(params)
    rollout = jax.jit(method.msc_rollout)
    for k in (2, 3, 4):
        x = lq
        for i in range(k, 0, -1):  # x <- x - (1 / i) G(x, i / K)
            x = x - network(x, jnp.full((2,), i / k)) / i
        np.testing.assert_allclose(rollout(params, lq, k), x, atol=1e-4)


def _msc_term(method, params, batch, k=3):
    return jnp.mean((method.msc_rollout(params, batch["lq"], k) - batch["gt"]) ** 2)


def test_msc_gradient_is_nonzero_and_matches_a_finite_difference():
    method, params = _method()
    batch = _batch()
    grads = jax.grad(_msc_term, argnums=1)(method, params, batch)
    norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
    assert norm > 0
    # Directional derivative along the normalised gradient: f(p + e d) - f(p - e d) / 2e = |g|.
    direction = jax.tree.map(lambda g: g / norm, grads)
    eps = 1e-2
    f = jax.jit(lambda p: _msc_term(method, p, batch))
    shifted = [
        f(jax.tree.map(lambda p, d, s=s: p + s * eps * d, params, direction)) for s in (1, -1)
    ]
    np.testing.assert_allclose((shifted[0] - shifted[1]) / (2 * eps), norm, rtol=2e-2)


@pytest.mark.parametrize("variant", ["cumulative", "nograd"])
def test_msc_term_trains_only_with_gradients_through_the_rollout(variant):
    """The public code's stop_gradient rollout adds a loss value but no gradient."""
    method, params = _method(variant)
    batch = _batch()
    rng = jax.random.PRNGKey(5)
    with_msc = jax.grad(lambda p: method.loss(p, {}, batch, rng)[0])(params)
    method.settings.msc.weight = 0.0
    without = jax.grad(lambda p: method.loss(p, {}, batch, rng)[0])(params)
    differences = [
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(jax.tree.leaves(with_msc), jax.tree.leaves(without))
    ]
    assert (max(differences) > 0) == (variant == "cumulative")


@pytest.mark.parametrize("variant", ["cumulative", "velocity"])
def test_no_nan_at_t_zero(variant):
    """Training times on the grid {0, 1} and every solver's last step ending at t = 0."""
    method, params = _method(variant, time_points=2)
    batch = _batch()
    loss, grads = jax.value_and_grad(lambda p: method.loss(p, {}, batch, jax.random.PRNGKey(1))[0])(
        params
    )
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    for solver in ("euler", "heun", "rk4"):
        restored = method.predict(params, {}, batch, flow.SamplerSpec(solver, 3))
        assert np.all(np.isfinite(restored)), solver


def test_loss_traces_once_for_every_drawn_step_count():
    method, params = _method()
    batch = _batch()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def loss(params, rng):
        return method.loss(params, {}, batch, rng)

    drawn = set()
    for seed in range(6):
        _, terms = loss(params, jax.random.PRNGKey(seed))
        drawn.add(round(float(terms["msc"]), 6))
    assert len(drawn) > 1  # different K (and t) per step, one compiled program


def test_targets_of_each_variant():
    """At t = 1 every target is y - x; `one_step` trains only there and predicts y - G(y, 1)."""
    batch = _batch()
    for variant in ("cumulative", "velocity", "one_step"):
        method, params = _method(variant)
        perfect = lambda params: lambda x_t, t: batch["lq"] - batch["gt"]
        method.network = perfect
        method.settings.time_points = 2 if variant != "one_step" else 0
        if variant != "one_step":
            method.settings.msc.weight = 0.0
        t = method.training_time(jax.random.PRNGKey(0), 64)
        assert set(np.unique(t)) <= ({1.0} if variant == "one_step" else {0.0, 1.0})
    method, params = _method("one_step")
    assert not method.takes_sampler
    network = method.network(params)
    expected = batch["lq"] - network(batch["lq"], jnp.ones(2))
    np.testing.assert_allclose(method.predict(params, {}, batch), expected, rtol=1e-6)
    loss, terms = method.loss(params, {}, batch, jax.random.PRNGKey(0))
    np.testing.assert_allclose(loss, jnp.mean((expected - batch["gt"]) ** 2), rtol=1e-5)
    assert set(terms) == {"flow"}


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("irflow.target", "noise", "one of"),
        ("irflow.grid", "log", "one of"),
        ("irflow.sampler", "sde:4", "not noise"),
        ("irflow.sampler", "euler:0", r"integer in \[1, 1000\]"),
        ("irflow.msc.min_steps", 1, r"\[2,"),
        ("irflow.msc.weight", -0.1, ">= 0"),
        ("irflow.time_points", -1, "grid"),
    ],
)
def test_config_errors_name_the_key(key, value, message):
    config = irflow_denoise.get_config()
    section, *rest = key.split(".")[1:]
    node = config.irflow
    for part in ([section] + rest)[:-1]:
        node = node[part]
    node[([section] + rest)[-1]] = value
    with pytest.raises(ValueError, match=rf"config\.{key}.*{message}"):
        methods.validate(config)
    one_step = irflow_denoise.get_config("one_step")
    one_step.irflow.msc.weight = 0.3
    with pytest.raises(ValueError, match="config.irflow.msc.weight.*one_step"):
        methods.validate(one_step)


def test_stochastic_sampler_is_refused_at_prediction():
    method, params = _method()
    with pytest.raises(ValueError, match="not noise"):
        method.predict(params, {}, _batch(), flow.parse_sampler("sde:4"))


def test_time_unet_pads_odd_sizes_and_depends_on_time():
    model = TimeUNet(width=4, num_blocks=(1, 1, 1), attention=(False, True, True))
    assert model.stride == 4
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 13, 10, 3))
    params = model.init(jax.random.PRNGKey(1), x, jnp.ones(2))
    # It starts as the zero field (zero-initialised output and second ResBlock convs) ...
    np.testing.assert_array_equal(model.apply(params, x, jnp.ones(2)), 0.0)
    params = _perturbed(params)  # ... so move every parameter for the checks below
    out = model.apply(params, x, jnp.array([0.2, 0.9]))
    assert out.shape == x.shape
    # Reflection-padding the input by hand gives the same field, cropped.
    padded = jnp.pad(x, ((0, 0), (0, 3), (0, 2), (0, 0)), mode="reflect")
    np.testing.assert_allclose(
        model.apply(params, padded, jnp.array([0.2, 0.9]))[:, :13, :10], out, atol=1e-5
    )
    other_time = model.apply(params, x, jnp.array([0.9, 0.2]))
    assert float(jnp.max(jnp.abs(other_time - out))) > 1e-4
    with pytest.raises(ValueError, match="one entry per level"):
        TimeUNet(width=4, num_blocks=(1, 1), attention=(True,)).init(
            jax.random.PRNGKey(0), x, jnp.ones(2)
        )


@pytest.mark.slow  # 40 s; the sampler and losses have fast tests above, resume in test_train
def test_smoke_run_trains_resumes_bit_exactly_bundles_and_restores(tmp_path):
    config = irflow_smoke.get_config()
    straight, _ = train_twice_and_check_resume(config, tmp_path)

    model = inference.load_run(straight)
    assert model.takes_sampler
    image = np.random.default_rng(0).uniform(size=(1, 24, 20, 3)).astype(np.float32)
    out = model.predict(image, None, flow.parse_sampler("heun:2"))
    assert out.shape == image.shape and np.all(np.isfinite(out))
    # A weight bundle of it predicts the same.
    inference.save_bundle(model, tmp_path / "bundle")
    bundle = inference.load_model(bundle=str(tmp_path / "bundle"))
    np.testing.assert_array_equal(bundle.predict(image, None, flow.parse_sampler("heun:2")), out)

    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray((image[0] * 255).astype(np.uint8)).save(photo)
    result = run_module(
        "restorect_jax.restore",
        [
            "--workdir",
            str(straight),
            "--sampler",
            "euler:1,0.2,0",
            str(photo),
            "--output",
            str(tmp_path / "out"),
        ],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "photo.png").is_file()


def test_flow_problem_integrates_to_the_prediction_and_an_exact_flow_costs_nothing():
    method, params = _method()
    batch = _batch()
    problem = method.flow_problem(params, {}, batch)
    grid = flow.time_grid(4)
    np.testing.assert_allclose(
        flow.integrate(problem.network_fn, problem.start, grid, parametrization="cumulative"),
        method.predict(params, {}, batch, flow.SamplerSpec("euler", 4)),
        atol=1e-6,
    )
    # With the exact G the trajectory is the straight line: every breakpoint is free.
    exact = flow.FlowProblem(lambda x_t, t: x_t - batch["gt"], batch["lq"], "cumulative")
    fine = flow.time_grid(10)
    _, path = flow.integrate(
        exact.network_fn, exact.start, fine, parametrization="cumulative", return_trajectory=True
    )
    np.testing.assert_allclose(flow.two_step_costs(exact, path, fine), 0.0, atol=1e-4)
    one_step, one_step_params = _method("one_step")
    with pytest.raises(ValueError, match="integrates no flow"):
        one_step.flow_problem(one_step_params, {}, batch)
