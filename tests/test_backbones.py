"""The backbone contract (models/backbones.py): every registered backbone declares its stride,
feature taps, output, conditioning and config checks, and the methods rely on nothing else."""

import functools
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import irflow_smoke, restorer_smoke
from restorect_jax import methods, models
from restorect_jax.config_keys import require
from restorect_jax.models import registry

HELPERS = {"decomposition", "prior_encoder", "retinex_prior_encoder"}  # building blocks
RGFORMER_SMALL = {"width": 4, "num_blocks": (1, 1, 1, 1), "num_heads": (1, 1, 1, 2)}
PRIORS_SMALL = {**RGFORMER_SMALL, "prior_dim": 8, "retinex_split": 6, "head_features": 4}
SMALL = {
    "rgformer": {**RGFORMER_SMALL, "retinex_heads": False},
    "restorect_teacher": {
        **PRIORS_SMALL,
        "prior_features": 4,
        "prior_res_blocks": 1,
        "decomp_features": 4,
    },
    "restorect_student": {
        **PRIORS_SMALL,
        "condition_features": 4,
        "condition_embed_dim": 8,
        "condition_mlp_hidden": 8,
        "decomp_features": 4,
        "velocity_hidden": 8,
        "time_dim": 8,
    },
    "time_unet": {"width": 4, "num_blocks": (1, 1, 1), "attention": (False, False, True)},
    "unshuffle_cnn": {"width": 4, "num_blocks": 1, "noise_map": True},
    "res_unet": {"width": 4, "num_blocks": (1, 1), "noise_map": False},
}


def _model_config(name: str, **fields) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({"name": name, **SMALL.get(name, {}), **fields})


def test_every_registered_model_is_a_backbone_with_a_spec_or_a_helper():
    assert set(registry._REGISTRY) - HELPERS == set(models.backbone_names()) == set(SMALL)
    for name in models.backbone_names():
        assert isinstance(models.backbone_spec(name), models.BackboneSpec)
    with pytest.raises(ValueError, match=re.escape("config.model.name='decomposition'")):
        models.backbone_spec("decomposition")


def _example_inputs(fields: dict, image: jax.ShapeDtypeStruct) -> dict:
    """One example of each conditioning input, for a batch of `image`."""
    batch = image.shape[0]
    return {
        "gt": image,
        "noise": jax.ShapeDtypeStruct((batch, 2 * fields.get("prior_dim", 1)), jnp.float32),
        "time": jax.ShapeDtypeStruct((batch,), jnp.float32),
        "noise_level": jax.ShapeDtypeStruct((batch,), jnp.float32),
    }


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_spec_matches_what_the_module_outputs(name):
    """Stride, output type, feature taps (names and shapes) and inputs, from abstract init."""
    spec, fields = models.check_model_config(_model_config(name))
    model = models.model_from_config(_model_config(name))
    stride = spec.stride_of(fields)
    assert stride == model.stride == spec.stride_of(models.module_fields(model))
    image = jax.ShapeDtypeStruct((2, 2 * stride, 3 * stride, 3), jnp.float32)
    examples = _example_inputs(fields, image)
    args = [image, *(examples[key] for key in spec.inputs(fields))]
    init = functools.partial(model.init_with_output, jax.random.key(0))
    output, _ = jax.eval_shape(init, *args)
    if spec.output is jax.Array:
        assert isinstance(output, jax.ShapeDtypeStruct) and output.shape == image.shape
        assert not spec.feature_taps
        return
    assert isinstance(output, spec.output)
    assert spec.restored(output).shape == image.shape
    assert set(output.features) == set(spec.taps)  # (eval_shape's dicts come back sorted)
    for tap, tap_stride in spec.feature_taps:
        assert output.features[tap].shape[:3] == (
            2,
            2 * stride // tap_stride,
            3 * stride // tap_stride,
        ), tap


@pytest.mark.parametrize(
    "name, key, value, message",
    [
        ("rgformer", "num_heads", (1, 1, 3, 2), "config.model.num_heads=(1, 1, 3, 2): level 3"),
        ("restorect_teacher", "retinex_split", 8, "config.model.retinex_split=8: must be in (0"),
        ("restorect_student", "time_dim", 7, "config.model.time_dim=7: must be even"),
        ("time_unet", "attention", (False, True), "config.model.attention=(False, True): needs"),
        ("time_unet", "num_heads", 3, "config.model.num_heads=3: level 2 attends"),
        ("unshuffle_cnn", "num_blocks", -1, "config.model.num_blocks=-1: must be an integer"),
        ("res_unet", "num_blocks", (), "config.model.num_blocks=(): must be a non-empty tuple"),
        ("res_unet", "depth", 3, "config.model.depth=3: is no field of ResUNet"),
    ],
)
def test_each_backbones_checks_name_the_key(name, key, value, message):
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        models.check_model_config(_model_config(name, **{key: value}))
    assert "\n" not in str(error.value)


def test_saved_lists_are_tuples_to_the_checks():
    spec, fields = models.check_model_config(
        {"name": "res_unet", "num_blocks": [1, 2, 2], "width": 8}
    )
    assert fields["num_blocks"] == (1, 2, 2) and spec.stride_of(fields) == 8


def test_a_patch_size_off_the_stride_names_data_patch_size():
    config = restorer_smoke.get_config()
    config.data.patch_size = 20
    with pytest.raises(
        ValueError, match=re.escape("config.data.patch_size=20: must be a multiple of 8")
    ):
        methods.validate(config)
    config.model = _model_config("unshuffle_cnn", noise_map=False)  # stride 2
    methods.validate(config)
    config.train.progressive = ((1, 21, 2),)
    with pytest.raises(ValueError, match=re.escape("config.train.progressive=((1, 21, 2),)")):
        methods.validate(config)


@pytest.mark.parametrize(
    "model_config, message",
    [
        (_model_config("unshuffle_cnn", width=0), "config.model.width=0"),
        (_model_config("time_unet", attention=(True,)), "config.model.attention=(True,)"),
        (_model_config("time_unet"), "config.model.name='time_unet': the restorer method gives"),
        (_model_config("unshuffle_cnn"), "config.data.noise_level=False: must be True"),
    ],
)
def test_restorer_validation_checks_any_backbone(model_config, message):
    config = restorer_smoke.get_config()
    config.model = model_config
    with pytest.raises(ValueError, match=re.escape(message)):
        methods.validate(config)


def test_a_flow_method_needs_a_backbone_that_reads_time():
    config = irflow_smoke.get_config()
    methods.validate(config)
    config.model = _model_config("res_unet")
    with pytest.raises(ValueError, match=re.escape("config.model.name='res_unet': the irflow")):
        methods.validate(config)


# --- adding a backbone -----------------------------------------------------------------------


class ToyBackbone(nn.Module):
    """LQ + a per-4x4-block correction from a two-layer MLP of the block's mean colour."""

    features: int = 4

    @nn.compact
    def __call__(self, lq: jax.Array) -> jax.Array:
        h = nn.avg_pool(lq, (4, 4), (4, 4))
        h = nn.Dense(3, name="out")(nn.relu(nn.Dense(self.features, name="hidden")(h)))
        return lq + jnp.repeat(jnp.repeat(h, 4, axis=1), 4, axis=2)


def _check_toy(fields) -> None:
    value = fields["features"]
    require(isinstance(value, int) and value > 0, "model.features", value, "must be positive")


@pytest.fixture
def toy_registered(monkeypatch):
    """The toy backbone registered as "toy" for one test (the registry restored after)."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_BACKBONES", dict(registry._BACKBONES))
    models.register_model("toy", models.BackboneSpec(stride=4, check=_check_toy))(ToyBackbone)


@pytest.mark.usefixtures("toy_registered")
def test_a_new_backbone_trains_through_the_restorer_without_editing_methods():
    config = restorer_smoke.get_config()
    config.model = ml_collections.ConfigDict({"name": "toy", "features": 4})
    config.data.patch_size = 16
    methods.validate(config)
    method = methods.get_method("restorer")(config)
    assert method.stride == 4 and not method.takes_noise_level
    rng = np.random.default_rng(0)
    gt = jnp.asarray(rng.uniform(size=(1, 16, 16, 3)), jnp.float32)
    batch = {"lq": jnp.clip(gt + 0.1, 0, 1), "gt": gt}
    params = method.init_params(jax.random.key(0), batch)
    loss_and_grad = jax.jit(jax.value_and_grad(lambda p: method.loss(p, {}, batch, None)[0]))
    loss, grads = loss_and_grad(params)
    assert np.isfinite(loss)
    assert all(np.any(g != 0) for g in jax.tree.leaves(grads))
    restored = jax.jit(lambda p: method.predict(p, {}, {"lq": batch["lq"]}))(params)
    assert restored.shape == gt.shape
    config.model.features = 0
    with pytest.raises(ValueError, match=re.escape("config.model.features=0: must be positive")):
        methods.validate(config)
    config.model.features, config.data.patch_size = 4, 18
    with pytest.raises(ValueError, match=re.escape("(the stride of the toy backbone)")):
        methods.validate(config)
