"""Methods: the S1 teacher and the plain restorer (loss, gradients, prediction), frozen models."""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import save_run

from configs import restorer_smoke, smoke
from restorect_jax import flow, methods


def _batch():
    rng = np.random.default_rng(0)
    gt = rng.uniform(size=(2, 24, 24, 3)).astype(np.float32)
    lq = np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1).astype(np.float32)
    return {"lq": jnp.asarray(lq), "gt": jnp.asarray(gt)}


@pytest.mark.parametrize("learn_scalars", [False, True])
def test_teacher_loss_gradients(learn_scalars):
    config = smoke.get_config()
    config.restorect_teacher.loss.learn_hvi_k = learn_scalars
    config.restorect_teacher.loss.learn_diffusion_scale = learn_scalars
    method = methods.get_method("restorect_teacher")(config)
    batch = _batch()
    params = jax.jit(method.init_params)(jax.random.PRNGKey(0), batch)
    grad_fn = jax.jit(jax.grad(lambda p: method.loss(p, {}, batch, None)[0]))
    grads = grad_fn(params)["params"]

    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    for name in ("decomposition", "image_prior", "retinex_prior", "restorer"):
        assert any(np.any(g != 0) for g in jax.tree.leaves(grads[name])), name
    scalar_grads = [float(grads["hvi_k"]), float(grads["diffusion_scale"])]
    if learn_scalars:
        assert all(g != 0 for g in scalar_grads)
    else:
        assert scalar_grads == [0.0, 0.0]


def test_teacher_loss_terms_and_prediction():
    config = smoke.get_config()
    method = methods.get_method("restorect_teacher")(config)
    batch = _batch()
    params = jax.jit(method.init_params)(jax.random.PRNGKey(0), batch)
    total, terms = jax.jit(lambda p: method.loss(p, {}, batch, None))(params)
    weighted = sum(
        config.restorect_teacher.loss[name] * terms[name]
        for name in ("l1", "retinex_head", "hvi", "decomposition", "diffusion")
    )
    np.testing.assert_allclose(total, weighted, rtol=1e-6)
    restored = method.predict(params, {}, batch)
    assert restored.shape == batch["lq"].shape
    np.testing.assert_allclose(terms["l1"], jnp.mean(jnp.abs(restored - batch["gt"])), rtol=1e-5)


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="config.method='flux'"):
        methods.get_method("flux")


# --- the plain restorer ----------------------------------------------------------------------


def test_restorer_loss_gradients_and_prediction_ignore_the_sampler():
    config = restorer_smoke.get_config()
    methods.validate(config)
    method = methods.get_method("restorer")(config)
    assert not method.needs_ground_truth and not method.takes_sampler
    assert method.stride == 8
    batch = _batch()
    params = jax.jit(method.init_params)(jax.random.PRNGKey(0), batch)
    # An unconditioned RGFormer: no prior modulation and no Retinex heads.
    names = {jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_leaves_with_path(params)}
    assert not any("mod" in name or "retinex_head" in name for name in names)
    total, terms = jax.jit(lambda p: method.loss(p, {}, batch, None))(params)
    assert set(terms) == {"l1", "psnr", "hvi"}
    weighted = sum(config.restorer.loss[name] * terms[name] for name in terms)
    np.testing.assert_allclose(total, weighted, rtol=1e-6)
    restored = method.predict(params, {}, {"lq": batch["lq"]})
    mse = np.mean((np.asarray(restored) - np.asarray(batch["gt"])) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(terms["psnr"], np.mean(10 * np.log10(mse + 1e-8)), rtol=1e-5)
    with_sampler = method.predict(params, {}, {"lq": batch["lq"]}, flow.SamplerSpec("heun", 7))
    np.testing.assert_array_equal(with_sampler, restored)
    grads = jax.jit(jax.grad(lambda p: method.loss(p, {}, batch, None)[0]))(params)
    assert all(np.any(g != 0) for g in jax.tree.leaves(grads["params"]["patch_embed"]))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("restorer.loss.l1", -1.0, "config.restorer.loss.l1=-1.0"),
        ("model.num_heads", (1, 1, 3, 2), "config.model.num_heads"),
        ("model.width", 6, "config.model.width=6"),
    ],
)
def test_restorer_config_errors_name_the_key(key, value, message):
    config = restorer_smoke.get_config()
    *sections, field = key.split(".")
    node = config
    for section in sections:
        node = node[section]
    node[field] = value
    with pytest.raises(ValueError, match=re.escape(message)):
        methods.validate(config)


def test_old_teacher_runs_load_under_the_new_name():
    assert methods.get_method("teacher") is methods.get_method("restorect_teacher")


def test_frozen_model_loader_reads_any_run_and_names_the_key(tmp_path):
    config = restorer_smoke.get_config()
    method = methods.get_method("restorer")(config)
    params = jax.jit(method.init_params)(jax.random.PRNGKey(0), _batch())
    save_run(tmp_path / "run", config, params)
    frozen = methods.load_frozen("teacher_a", tmp_path / "run")
    assert isinstance(frozen.method, methods.RestorerMethod)
    jax.tree.map(np.testing.assert_array_equal, frozen.params, params)
    with pytest.raises(FileNotFoundError, match=re.escape("config.frozen.teacher_a=")):
        methods.load_frozen("teacher_a", tmp_path / "nowhere")


_NAME_BRANCHES = re.compile(r'uses_flow|privileged|== "(restorect|teacher|irflow)"|config\.irflow')


def test_nothing_outside_methods_branches_on_a_method():
    """Callers go through the Method interface; only methods/ may name a method's traits."""
    root = pathlib.Path(__file__).resolve().parents[1]
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("restorect_jax", "tools")
        for path in sorted((root / folder).rglob("*.py"))
        if "methods" not in path.relative_to(root).parts
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if _NAME_BRANCHES.search(line)
    ]
    assert not offenders, offenders
