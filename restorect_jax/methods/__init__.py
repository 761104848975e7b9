"""Training methods, by config name (`config.method`)."""

import ml_collections

from restorect_jax import config_lib
from restorect_jax.methods.base import Method
from restorect_jax.methods.fluxir import FluxIRMethod
from restorect_jax.methods.frozen import FrozenModel, load_frozen
from restorect_jax.methods.irflow import IRFlowMethod
from restorect_jax.methods.restorect import RestoRectMethod
from restorect_jax.methods.restorect_teacher import RestoRectTeacherMethod
from restorect_jax.methods.restorer import RestorerMethod
from restorect_jax.methods.slkd import SLKDMethod

_METHODS: dict[str, type[Method]] = {
    "restorect_teacher": RestoRectTeacherMethod,
    "restorect": RestoRectMethod,
    "restorer": RestorerMethod,
    "irflow": IRFlowMethod,
    "slkd": SLKDMethod,
    "fluxir": FluxIRMethod,
}


def get_method(name: str) -> type[Method]:
    """The Method class registered as `name` (the value of `config.method`)."""
    name = config_lib.RENAMED_METHODS.get(name, name)
    if name not in _METHODS:
        raise ValueError(f"config.method={name!r} is unknown; known methods: {sorted(_METHODS)}")
    return _METHODS[name]


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the first config key whose value cannot work: the keys every
    run shares (`config_lib.validate_shared`), then the backbone's contract (its own checks of
    `config.model`, its inputs, its stride against the training patches), then the method's."""
    config_lib.validate_shared(config)
    method = get_method(config.method)
    method.validate_backbone(config)
    method.validate_config(config)


__all__ = [
    "FluxIRMethod",
    "FrozenModel",
    "IRFlowMethod",
    "Method",
    "RestoRectMethod",
    "RestoRectTeacherMethod",
    "RestorerMethod",
    "SLKDMethod",
    "get_method",
    "load_frozen",
    "validate",
]
