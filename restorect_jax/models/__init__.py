"""The model zoo: Flax Linen modules and a by-name registry for configs.

model = get_model("rgformer", width=32, num_blocks=(2, 2, 2, 2))
params = model.init(rng, lq, z_img, z_rex)

Each backbone is registered with its contract (`backbones.BackboneSpec`: stride, output type,
feature taps, conditioning inputs, config checks), which the methods ask instead of a name.
"""

from __future__ import annotations

from restorect_jax.models import backbones
from restorect_jax.models.backbones import BackboneSpec, Conditioning
from restorect_jax.models.convnets import ResUNet, UnshuffleCNN
from restorect_jax.models.priors import PriorEncoder, RetinexPriorEncoder
from restorect_jax.models.registry import (
    backbone_names,
    backbone_of,
    backbone_spec,
    check_model_config,
    get_model,
    model_fields,
    model_from_config,
    module_fields,
    register_model,
)
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

for _name, _cls, _spec in (
    ("rgformer", RGFormer, backbones.RGFORMER),
    ("restorect_teacher", RestoRectTeacher, backbones.RESTORECT_TEACHER),
    ("restorect_student", RestoRectStudent, backbones.RESTORECT_STUDENT),
    ("decomposition", DecompositionNet, None),
    ("prior_encoder", PriorEncoder, None),
    ("retinex_prior_encoder", RetinexPriorEncoder, None),
    ("time_unet", TimeUNet, backbones.TIME_UNET),
    ("unshuffle_cnn", UnshuffleCNN, backbones.UNSHUFFLE_CNN),
    ("res_unet", ResUNet, backbones.RES_UNET),
):
    register_model(_name, _spec)(_cls)

__all__ = [
    "BackboneSpec",
    "Conditioning",
    "DecompositionNet",
    "FeatureProjections",
    "PriorEncoder",
    "RGFormer",
    "ResUNet",
    "RestoRectStudent",
    "RestoRectTeacher",
    "RestorerOutput",
    "RetinexPriorEncoder",
    "StudentConditions",
    "TeacherOutput",
    "TeacherPriors",
    "TimeUNet",
    "UnshuffleCNN",
    "VelocityPredictor",
    "backbone_names",
    "backbone_of",
    "backbone_spec",
    "check_model_config",
    "get_model",
    "model_fields",
    "model_from_config",
    "module_fields",
    "register_model",
]
