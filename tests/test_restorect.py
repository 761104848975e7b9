"""RestoRect distillation (stage S2): student, phases, gradients through the sampler, baselines."""

import functools
import importlib
import json
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import restorect_smoke, smoke
from restorect_jax import checkpoint as checkpoint_lib
from restorect_jax import flow, methods, train
from restorect_jax import sharding as sharding_lib
from restorect_jax.models import student as student_lib


def _batch(batch_size=2, size=24, seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(size=(batch_size, size, size, 3)).astype(np.float32)
    lq = np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1).astype(np.float32)
    return {"lq": jnp.asarray(lq), "gt": jnp.asarray(gt)}


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A smoke-teacher run folder: config.json and one checkpoint of random params.

    Drawn for the shapes `init` would give, without compiling anything: kernels N(0, 1/fan_in),
    biases N(0, 0.1^2), gains and scalars 1 + N(0, 0.1^2).
    """
    workdir = tmp_path_factory.mktemp("teacher")
    config = smoke.get_config()
    teacher = methods.get_method("restorect_teacher")(config)
    shapes = jax.eval_shape(teacher.init_params, jax.random.PRNGKey(7), _batch(1, 16))
    leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)

    rng = np.random.default_rng(8)  # numpy: a JAX draw per leaf shape would compile each

    def draw(path, leaf):
        noise = rng.normal(size=leaf.shape).astype(np.float32)
        if len(leaf.shape) >= 2:
            return noise / np.sqrt(np.prod(leaf.shape[:-1]))
        return 0.1 * noise + (0.0 if path[-1].key == "bias" else 1.0)

    params = treedef.unflatten([draw(path, leaf) for path, leaf in leaves])
    (workdir / "config.json").write_text(config.to_json_best_effort())
    checkpointer = checkpoint_lib.Checkpointer(workdir / "checkpoints", keep=1, async_save=False)
    state = {"step": jnp.zeros((), jnp.int32), "params": params, "ema_params": params}
    checkpointer.save(5, state, {})
    checkpointer.close()
    return workdir


def _config(teacher_dir, distill="restorect", tmp_path=None):
    config = restorect_smoke.get_config()
    config.frozen.teacher = str(teacher_dir)
    config.restorect.distill = distill
    if tmp_path is not None:
        config.data.tfds_dir = str(tmp_path / "tfds")
    return config


def test_time_embedding_and_velocity_predictor_shapes():
    t = jnp.array([0.0, 0.5, 1.0])
    emb = student_lib.time_embedding(t, 8)
    assert emb.shape == (3, 8)
    np.testing.assert_allclose(emb[0], [0, 0, 0, 0, 1, 1, 1, 1], atol=1e-7)  # sin 0, cos 0
    predictor = student_lib.VelocityPredictor(out_dim=6, hidden=16, time_dim=8)
    x, c = jnp.ones((3, 6)), jnp.ones((3, 5))
    params = predictor.init(jax.random.PRNGKey(0), x, t, c)
    assert predictor.apply(params, x, t, c).shape == (3, 6)
    # A scalar time is broadcast over the batch.
    np.testing.assert_allclose(
        predictor.apply(params, x, jnp.asarray(0.5), c)[1], predictor.apply(params, x, t, c)[1]
    )


@pytest.mark.parametrize("gain", [True, False])
def test_velocity_predictor_learns_a_conditional_flow_only_with_its_state_gain(gain):
    """A narrow predictor (hidden 16 < dim 64) fits v = e - z(c); 4 Euler steps from fresh noise
    must land near z(c). Without the gain term g(t) x_t it cannot follow the state (control)."""
    dim, batch, hidden = 64, 16, 16
    predictor = student_lib.VelocityPredictor(out_dim=dim, hidden=hidden, time_dim=16)
    conditions = jax.random.normal(jax.random.PRNGKey(0), (32, dim))
    mixing = 0.05 * jax.random.normal(jax.random.PRNGKey(1), (dim, dim))

    def target(c):
        return 0.2 + c @ mixing

    def velocity(params, x, t, c):
        if not gain:
            zeroed = jax.tree.map(jnp.zeros_like, params["params"]["gain"])
            params = {"params": {**params["params"], "gain": zeroed}}
        return predictor.apply(params, x, t, c)

    params = predictor.init(jax.random.PRNGKey(2), jnp.zeros((batch, dim)), 0.5, conditions[:batch])
    optimizer = optax.adam(3e-3)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, key):
        pick, noise, times = jax.random.split(key, 3)
        c = conditions[jax.random.randint(pick, (batch,), 0, 32)]
        z = target(c)

        def loss_fn(p):
            return flow.rectified_flow_loss(
                lambda x, t: velocity(p, x, t, c),
                z,
                jax.random.normal(noise, z.shape),
                jax.random.uniform(times, (batch,)),
            )

        grads = jax.grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state

    for i in range(1500):
        params, opt_state = step(params, opt_state, jax.random.PRNGKey(100 + i))
    c = conditions[:batch]
    start = jax.random.normal(jax.random.PRNGKey(7), (batch, dim))
    sampled = flow.integrate(lambda x, t: velocity(params, x, t, c), start, flow.time_grid(4))
    error = float(jnp.mean(jnp.abs(sampled - target(c))))
    noise_error = float(jnp.mean(jnp.abs(start - target(c))))
    if gain:
        assert error < 0.25 * noise_error, (error, noise_error)  # measured: 0.16
    else:
        assert error > 0.6 * noise_error, (error, noise_error)  # measured: 0.82


def test_one_euler_step_equals_the_modules_one_step_forward(teacher_dir):
    method = methods.get_method("restorect")(_config(teacher_dir))
    batch = _batch()
    params = jax.jit(method.init_params)(jax.random.PRNGKey(0), batch)
    predict = jax.jit(method.predict, static_argnums=3)
    euler = functools.partial(flow.SamplerSpec, "euler")
    dim = 2 * method.config.model.prior_dim
    noise = method.fixed_noise(dim)
    one_step_forward = jax.jit(method.student.apply)(
        params["student"], batch["lq"], jnp.broadcast_to(noise, (2, dim))
    ).restored
    np.testing.assert_allclose(
        predict(params, {}, batch, euler(1)), one_step_forward, rtol=1e-5, atol=1e-5
    )
    # Restoring an image alone or in a batch gives the same result (shared start noise).
    alone = predict(params, {}, {"lq": batch["lq"][1:]}, euler(2))
    together = predict(params, {}, batch, euler(2))
    np.testing.assert_allclose(alone[0], together[1], rtol=1e-4, atol=1e-4)  # float32 order
    assert not np.allclose(together, one_step_forward, atol=1e-6)  # the step count matters


def test_phase2_gradients_reach_conditions_and_velocities_through_the_sampler(teacher_dir):
    config = _config(teacher_dir)
    # Only the restoration terms: any gradient on the velocity predictors must come through
    # the sampled priors (noise -> N Euler steps -> z -> restorer -> L1).
    for key in ("velocity", "prior_l1", "flex", "decomposition", "diffusion", "retinex_head"):
        config.restorect.loss[key] = 0.0
    method = methods.get_method("restorect")(config)
    batch = _batch()
    params = jax.jit(method.init_params)(jax.random.PRNGKey(0), batch)
    frozen = method.frozen_params()
    grads = jax.jit(
        jax.grad(lambda p: method.loss(p, frozen, batch, jax.random.PRNGKey(1), "student")[0])
    )(params)
    student_grads = grads["student"]["params"]
    for name in ("image_velocity", "retinex_velocity", "image_condition", "retinex_condition"):
        norm = float(jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(student_grads[name]))))
        assert norm > 1e-8, name
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


def test_loss_terms_per_phase_and_baseline(teacher_dir):
    batch = _batch()
    rng = jax.random.PRNGKey(3)
    restoration = {"decomposition", "diffusion", "l1", "retinex_head", "hvi"}
    flow_terms = {"velocity", "flex_prior", "prior_l1"}
    expected = {
        ("restorect", "flow"): {"decomposition", "diffusion"} | flow_terms,
        ("restorect", "student"): restoration | flow_terms | {"flex"},
        ("feature_mse", "student"): restoration | {"feature_mse"},
        ("none", "student"): restoration,
    }
    for (distill, phase), names in expected.items():
        config = _config(teacher_dir, distill)
        if distill == "none":
            config.frozen.teacher = ""  # needs no teacher at all
        method = methods.get_method("restorect")(config)
        assert method.phase_at(0) == ("flow" if distill == "restorect" else "student")
        assert method.phase_at(config.restorect.phase1_steps) == "student"
        params = jax.jit(method.init_params)(jax.random.PRNGKey(0), batch)
        assert ("projections" in params) == (distill != "none")
        has_flow = "image_velocity" in params["student"]["params"]
        assert has_flow == (distill == "restorect")
        total, terms = jax.jit(
            lambda p, method=method, phase=phase: method.loss(
                p, method.frozen_params(), batch, rng, phase
            )
        )(params)
        assert set(terms) == names, (distill, phase)
        weights = config.restorect.loss
        weighted = sum(
            (weights.velocity_phase1 if phase == "flow" else weights.velocity) * value
            if name == "velocity"
            else weights[name if not name.startswith("flex") else "flex"] * value
            for name, value in terms.items()
        )
        np.testing.assert_allclose(total, weighted, rtol=1e-5)


def test_flow_phase_trains_only_the_flow_and_the_teacher_stays_bit_identical(teacher_dir):
    config = _config(teacher_dir)
    # The shapes and mesh of the smoke run below, so the two share compiled programs.
    mesh = sharding_lib.create_mesh(config.mesh)
    example = {key: jnp.zeros((1, 16, 16, 3), jnp.float32) for key in ("lq", "gt")}
    steps = train.build_step_functions(config, mesh, example)
    method = steps.method
    frozen = jax.device_put(method.frozen_params(), sharding_lib.replicated(mesh))
    teacher_before = jax.tree.map(np.array, jax.device_get(frozen))
    state = steps.init(jax.random.PRNGKey(config.seed), example)
    before = jax.device_get(state.params)
    batch = jax.device_put(
        _batch(config.train.batch_size, config.data.patch_size), sharding_lib.batch_sharding(mesh)
    )

    for _ in range(2):  # the warm-up gives step 0 a zero learning rate
        state, metrics = steps.train_step(state, batch, frozen, "flow")
    after_flow = jax.device_get(state.params)
    assert bool(metrics["finite"])
    student_before, student_flow = before["student"]["params"], after_flow["student"]["params"]

    def changed(a, b):
        return any(np.any(x != y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))

    for name in ("image_velocity", "retinex_velocity", "image_condition", "decomposition"):
        assert changed(student_before[name], student_flow[name]), name
    # Frozen in the flow phase: no gradient step and no weight decay.
    assert not changed(student_before["restorer"], student_flow["restorer"])
    assert not changed(before["projections"], after_flow["projections"])

    state, _ = steps.train_step(state, batch, frozen, "student")
    after_student = jax.device_get(state.params)
    assert changed(student_flow["restorer"], after_student["student"]["params"]["restorer"])
    assert changed(after_flow["projections"], after_student["projections"])
    # The teacher is an input of the step, never updated, and not part of the state.
    jax.tree.map(np.testing.assert_array_equal, teacher_before, jax.device_get(frozen))
    assert set(after_student) == {"student", "projections"}


def test_restorect_smoke_runs_both_phases_and_its_checkpoint_restores(teacher_dir, tmp_path):
    config = _config(teacher_dir, tmp_path=tmp_path)
    result = train.train_and_evaluate(config, tmp_path / "run")
    assert result["step"] == config.train.num_steps
    assert np.isfinite(result["psnr"])

    records = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    logged = [record for record in records if "train/loss" in record]
    # Steps 1-3 are the flow phase (no restorer terms), 4-6 the student phase.
    assert "train/loss/flex" not in logged[0] and "train/loss/velocity" in logged[0]
    assert "train/loss/flex" in logged[-1] and "train/loss/l1" in logged[-1]

    step, state = checkpoint_lib.load_state(tmp_path / "run" / "checkpoints")
    assert step == config.train.num_steps
    assert set(state["params"]) == {"student", "projections"}  # no teacher params inside
    method = methods.get_method("restorect")(config)
    batch = _batch()
    restored = jax.jit(method.predict)(state["ema_params"], {}, batch)
    assert restored.shape == batch["lq"].shape and np.all(np.isfinite(restored))


def test_missing_or_mismatched_teacher_names_the_config_key(teacher_dir, tmp_path):
    config = _config(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="config.frozen.teacher"):
        methods.get_method("restorect")(config)
    config = _config(teacher_dir)
    config.model.prior_dim = 64
    with pytest.raises(ValueError, match="config.model.prior_dim=64"):
        methods.get_method("restorect")(config)


_CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs"
_SHIPPED_CONFIGS = sorted(
    path.stem
    for path in _CONFIG_DIR.glob("*.py")
    # base.py and tasks.py are building blocks without a method, as the *_common helpers are.
    if path.stem not in ("__init__", "base", "tasks") and not path.stem.endswith("_common")
)


@pytest.mark.parametrize("name", _SHIPPED_CONFIGS)
def test_every_shipped_config_validates(name):
    config = importlib.import_module(f"configs.{name}").get_config()
    if name == "restorect_smoke":
        assert config.frozen.teacher == ""  # the tests give it a teacher they make
        config.frozen.teacher = "teacher"
    if name == "slkd_smoke":
        assert config.frozen.teacher_a == config.frozen.teacher_b == ""  # likewise
        config.frozen.teacher_a, config.frozen.teacher_b = "teacher_a", "teacher_b"
    methods.validate(config)
    if name.startswith("restorer_") and name != "restorer_smoke":
        methods.validate(importlib.import_module(f"configs.{name}").get_config("student"))
    if name.startswith("restorect_"):
        assert config.method == "restorect" and config.restorect.distill == "restorect"


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("restorect.distill", "kd", "config.restorect.distill='kd'"),
        ("restorect.phase1_steps", 6, "config.restorect.phase1_steps=6"),
        ("restorect.flow.solver", "dopri5", "config.restorect.flow.solver='dopri5'"),
        ("frozen.teacher", "", "config.frozen.teacher=''"),
        (
            "restorect.loss.flex_feature_weights",
            (1.0, 1.0),
            "config.restorect.loss.flex_feature_weights",
        ),
    ],
)
def test_distillation_config_errors_name_the_key(key, value, message):
    config = restorect_smoke.get_config()
    config.frozen.teacher = "runs/some_teacher"
    *sections, field = key.split(".")
    node = config
    for section in sections:
        node = node[section]
    node[field] = value
    with pytest.raises(ValueError, match=re.escape(message)):
        methods.validate(config)
