"""The S1 teacher method: its loss, gradients and prediction."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import smoke
from restorect_jax import methods


def _batch():
    rng = np.random.default_rng(0)
    gt = rng.uniform(size=(2, 24, 24, 3)).astype(np.float32)
    lq = np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1).astype(np.float32)
    return {"lq": jnp.asarray(lq), "gt": jnp.asarray(gt)}


@pytest.mark.parametrize("learn_scalars", [False, True])
def test_teacher_loss_gradients(learn_scalars):
    config = smoke.get_config()
    config.loss.learn_hvi_k = learn_scalars
    config.loss.learn_diffusion_scale = learn_scalars
    method = methods.get_method("teacher")(config)
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
    method = methods.get_method("teacher")(config)
    batch = _batch()
    params = jax.jit(method.init_params)(jax.random.PRNGKey(0), batch)
    total, terms = jax.jit(lambda p: method.loss(p, {}, batch, None))(params)
    weighted = sum(
        config.loss[name] * terms[name]
        for name in ("l1", "retinex_head", "hvi", "decomposition", "diffusion")
    )
    np.testing.assert_allclose(total, weighted, rtol=1e-6)
    restored = method.predict(params, {}, batch)
    assert restored.shape == batch["lq"].shape
    np.testing.assert_allclose(terms["l1"], jnp.mean(jnp.abs(restored - batch["gt"])), rtol=1e-5)


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="config.method='flux'"):
        methods.get_method("flux")
