"""The model zoo: Flax Linen modules and a by-name registry for configs.

model = get_model("rgformer", width=32, num_blocks=(2, 2, 2, 2))
params = model.init(rng, lq, z_img, z_rex)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import flax.linen as nn

from restorect_jax.models.convnets import ResUNet, UnshuffleCNN
from restorect_jax.models.priors import PriorEncoder, RetinexPriorEncoder
from restorect_jax.models.restorer import RestorerOutput, RGFormer
from restorect_jax.models.retinex import DecompositionNet
from restorect_jax.models.student import (
    FeatureProjections,
    RestoRectStudent,
    StudentConditions,
    VelocityPredictor,
)
from restorect_jax.models.teacher import RestoRectTeacher, TeacherOutput, TeacherPriors
from restorect_jax.models.time_unet import TimeUNet

ModuleT = TypeVar("ModuleT", bound=type[nn.Module])

_REGISTRY: dict[str, type[nn.Module]] = {}


def register_model(name: str) -> Callable[[ModuleT], ModuleT]:
    """Class decorator adding a module class to the registry under `name` (must be new)."""

    def register(cls: ModuleT) -> ModuleT:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered ({_REGISTRY[name].__name__})")
        _REGISTRY[name] = cls
        return cls

    return register


def get_model(name: str, **kwargs) -> nn.Module:
    """Builds the registered module `name` with the given fields."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**kwargs)


for _name, _cls in (
    ("rgformer", RGFormer),
    ("restorect_teacher", RestoRectTeacher),
    ("restorect_student", RestoRectStudent),
    ("decomposition", DecompositionNet),
    ("prior_encoder", PriorEncoder),
    ("retinex_prior_encoder", RetinexPriorEncoder),
    ("time_unet", TimeUNet),
    ("unshuffle_cnn", UnshuffleCNN),
    ("res_unet", ResUNet),
):
    register_model(_name)(_cls)

__all__ = [
    "DecompositionNet",
    "FeatureProjections",
    "PriorEncoder",
    "RGFormer",
    "RestoRectStudent",
    "RestoRectTeacher",
    "ResUNet",
    "RestorerOutput",
    "RetinexPriorEncoder",
    "StudentConditions",
    "TeacherOutput",
    "TeacherPriors",
    "TimeUNet",
    "UnshuffleCNN",
    "VelocityPredictor",
    "get_model",
    "register_model",
]
