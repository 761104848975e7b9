"""Adding a method touches only its own places: a Method subclass (methods/), one registry
entry, and a config built on a task with `base.for_method`. The toy below is all a new method
needs; the loop, checkpoints, validation, evaluation's scoring and `restore` take it unchanged.

A toy "identity-plus-gain" method: the restorer's CNN backbone, trained with an L2 loss whose
weight lives in the method's own section (`config.toy.l2`).
"""

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import base, irflow_common, tasks
from restorect_jax import inference, methods, models, train
from restorect_jax.config_keys import lookup, require


class ToyMethod(methods.Method):
    """`restored = backbone(lq)`, trained with `toy.l2 * |restored - gt|^2`."""

    optional_backbone_inputs = ("noise_level",)

    def __init__(self, config: ml_collections.ConfigDict, *, inference: bool = False):
        super().__init__(config, inference=inference)
        self.model = models.model_from_config(config.model)

    @classmethod
    def validate_config(cls, config: ml_collections.ConfigDict) -> None:
        weight = lookup(config, "toy.l2")
        require(weight > 0, "toy.l2", weight, "must be > 0")

    def init_params(self, rng, batch):
        return self.model.init(rng, batch["lq"])

    def loss(self, params, frozen, batch, rng, phase="train"):
        restored = self.model.apply(params, batch["lq"])
        l2 = jnp.mean((restored - batch["gt"]) ** 2)
        return self.config.toy.l2 * l2, {"l2": l2}

    def predict(self, params, frozen, batch, sampler=None):
        return self.model.apply(params, batch["lq"])


def toy_config(tmp_path) -> ml_collections.ConfigDict:
    """The toy's config file would read like this: a task, the backbone, the method's section."""
    model = ml_collections.ConfigDict({"name": "unshuffle_cnn", "width": 8, "num_blocks": 1})
    config, section = base.for_method(tasks.smoke(), "toy", model)
    section.l2 = 1.0
    config.data.tfds_dir = str(tmp_path / "tfds")
    config.train.eval_every = 0
    return config


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(methods._METHODS, "toy", ToyMethod)  # the one registry line


def test_a_toy_method_validates_trains_resumes_and_restores(registered, tmp_path):
    config = toy_config(tmp_path)
    methods.validate(config)
    result = train.train_and_evaluate(config, tmp_path / "run")
    assert result["step"] == config.train.num_steps
    model = inference.load_run(tmp_path / "run")
    lq = np.random.default_rng(0).random((1, 16, 16, 3), np.float32)
    restored = model.predict(lq)
    assert restored.shape == lq.shape and np.all(np.isfinite(restored))


def test_the_toy_methods_own_key_is_checked_by_name(registered, tmp_path):
    config = toy_config(tmp_path)
    config.toy.l2 = 0.0
    with pytest.raises(ValueError, match=r"config\.toy\.l2=0\.0: must be > 0"):
        methods.validate(config)
    config.toy.l2 = 1.0
    config.model = irflow_common.time_unet_model()  # reads a flow time the toy never gives
    with pytest.raises(ValueError, match="config.model.name"):
        methods.validate(config)
