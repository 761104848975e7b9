"""The backbone contract: what a method may rely on in a network it trains, without its name.

Each backbone of the registry (`models.register_model(name, spec)`) comes with a
`BackboneSpec`, which declares
  stride:       input height and width must be multiples of it (the network pads and crops
                otherwise, but training patches must tile it exactly);
  output:       the type `__call__` returns: `jax.Array` for an image-to-image network (the
                restored image, or a field such as TimeUNet's velocity), or a typed structure
                with a `restored` image and, when the spec has feature taps, a `features` dict
                (`RestorerOutput`, `TeacherOutput`);
  feature_taps: the maps of `output.features`, each with its stride relative to the input
                (a map at stride s covers `ceil(H/s) x ceil(W/s)` pixels); empty without taps;
  conditioning: the inputs the network reads after the image, in call order (`Conditioning`);
  check:        its own config checks, on the model's fields (the module's defaults under the
                config's `config.model`), raising ValueError `config.model.<key>=<value>: ...`.
Fields below are a module's dataclass fields by name; `model_fields` in the registry builds them
from a config, `module_fields` from a built module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax

from restorect_jax.config_keys import require
from restorect_jax.models.restorer import RestorerOutput
from restorect_jax.models.teacher import TeacherOutput

Fields = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Conditioning:
    """One input a network reads after the image.

    input: its name, as methods know it: "gt" (the clean image, B x H x W x 3), "noise" (a
      flow's start noise), "time" (flow time t, (B,)), "noise_level" (sigma / 255, (B,)),
      "z_img" / "z_rex" (RGFormer's priors, (B, prior_dim)).
    switch: a bool field that turns the input on (`noise_map`); None: read whatever the fields.
    optional: the network also runs without it (RGFormer's priors: unconditioned).
    """

    input: str
    switch: str | None = None
    optional: bool = False


def no_checks(fields: Fields) -> None:
    """The checks of a backbone whose every field value works."""
    del fields


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """What a registered backbone declares (see the module docstring)."""

    stride: int | Callable[[Fields], int]
    output: type = jax.Array
    feature_taps: tuple[tuple[str, int], ...] = ()
    conditioning: tuple[Conditioning, ...] = ()
    check: Callable[[Fields], None] = no_checks

    def stride_of(self, fields: Fields) -> int:
        """The stride of the network built with `fields`."""
        return self.stride(fields) if callable(self.stride) else self.stride

    @property
    def taps(self) -> dict[str, int]:
        """The feature taps as {name: stride}."""
        return dict(self.feature_taps)

    def inputs(self, fields: Fields) -> tuple[str, ...]:
        """The inputs after the image that the network built with `fields` must be given."""
        return tuple(
            c.input
            for c in self.conditioning
            if not c.optional and (c.switch is None or bool(fields[c.switch]))
        )

    def restored(self, output: Any) -> jax.Array:
        """The restored image (or the field) of one of the network's outputs."""
        return output if self.output is jax.Array else output.restored


# --- checks ----------------------------------------------------------------------------------


def _ints(fields: Fields, minimum: int, *keys: str) -> None:
    """Each `fields[key]` is an int >= minimum."""
    for key in keys:
        value = fields[key]
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        require(
            isinstance(value, int) and value >= minimum, f"model.{key}", value, f"must be {wanted}"
        )


def _levels(fields: Fields, key: str) -> None:
    """`fields[key]` is a non-empty tuple of ints >= 0 (one entry per level)."""
    value = fields[key]
    require(
        isinstance(value, tuple)
        and bool(value)
        and all(isinstance(v, int) and v >= 0 for v in value),
        f"model.{key}",
        value,
        "must be a non-empty tuple of integers >= 0 (one per level)",
    )


def _bools(fields: Fields, *keys: str) -> None:
    """Each `fields[key]` is a bool (a switch)."""
    for key in keys:
        require(isinstance(fields[key], bool), f"model.{key}", fields[key], "must be True or False")


def check_rgformer(fields: Fields) -> None:
    """RGFormer's fields (and those of the models that wrap one): four levels at C, 2C, 4C, 8C
    channels whose head counts divide them, and a prior split (the module checks it even when it
    runs without priors)."""
    _ints(fields, 1, "width", "prior_dim", "head_features")
    width = fields["width"]
    require(
        width % 4 == 0,
        "model.width",
        width,
        "must be a multiple of 4 (R-blocks split channels 3:1)",
    )
    for key in ("num_blocks", "num_heads"):
        value = fields[key]
        require(
            isinstance(value, tuple) and len(value) == 4,
            f"model.{key}",
            value,
            "needs 4 entries (levels 1-3, latent)",
        )
    _levels(fields, "num_blocks")
    heads = fields["num_heads"]
    for level, count in enumerate(heads):
        channels = width * 2**level
        require(
            isinstance(count, int) and count > 0 and channels % count == 0,
            "model.num_heads",
            heads,
            f"level {level + 1} has {channels} channels, not divisible by {count} heads",
        )
    _ints(fields, 0, "num_refinement_blocks")
    require(
        fields["ffn_expansion"] > 0, "model.ffn_expansion", fields["ffn_expansion"], "must be > 0"
    )
    prior_dim = fields["prior_dim"]
    require(
        isinstance(fields["retinex_split"], int) and 0 < fields["retinex_split"] < prior_dim,
        "model.retinex_split",
        fields["retinex_split"],
        f"must be in (0, model.prior_dim={prior_dim})",
    )


def _check_decomposition(fields: Fields) -> None:
    """The fields of the decomposition network a teacher or a student holds."""
    _ints(fields, 1, "decomp_features")
    activation = fields["decomp_output_activation"]
    require(
        activation in ("sigmoid", "relu"),
        "model.decomp_output_activation",
        activation,
        "must be 'sigmoid' or 'relu'",
    )


def check_teacher(fields: Fields) -> None:
    """The RestoRect teacher: its RGFormer, prior encoders and decomposition network."""
    check_rgformer(fields)
    _ints(fields, 1, "prior_features", "prior_res_blocks")
    _check_decomposition(fields)


def check_student(fields: Fields) -> None:
    """The RestoRect student: its RGFormer, condition encoders, decomposition and velocities."""
    check_rgformer(fields)
    _ints(
        fields,
        1,
        "condition_features",
        "condition_res_blocks",
        "condition_embed_dim",
        "condition_mlp_hidden",
        "velocity_hidden",
        "time_dim",
    )
    _check_decomposition(fields)
    require(
        fields["time_dim"] % 2 == 0,
        "model.time_dim",
        fields["time_dim"],
        "must be even (sin and cos pairs)",
    )


def check_time_unet(fields: Fields) -> None:
    """TimeUNet: one attention flag per level, heads that divide every attended level's width
    (C 2^l), an even width where Downsample halves it, and an even time embedding."""
    _ints(fields, 1, "width", "num_heads", "out_channels", "time_features")
    _levels(fields, "num_blocks")
    blocks, attention = fields["num_blocks"], fields["attention"]
    require(
        isinstance(attention, tuple) and len(attention) == len(blocks),
        "model.attention",
        attention,
        f"needs one entry per level of model.num_blocks={blocks}",
    )
    width, heads = fields["width"], fields["num_heads"]
    require(
        len(blocks) == 1 or width % 2 == 0,
        "model.width",
        width,
        "must be even (each Downsample halves the channels before pixel-unshuffle)",
    )
    for level, attended in enumerate(attention):
        require(
            not attended or (width * 2**level) % heads == 0,
            "model.num_heads",
            heads,
            f"level {level} attends over {width * 2**level} channels, not divisible by {heads} heads",
        )
    features = fields["time_features"]
    require(features % 2 == 0, "model.time_features", features, "must be even (sin and cos pairs)")


def check_unshuffle_cnn(fields: Fields) -> None:
    """UnshuffleCNN: a positive width, a count of residual blocks, a noise-map switch."""
    _ints(fields, 1, "width")
    _ints(fields, 0, "num_blocks")
    _bools(fields, "noise_map")


def check_res_unet(fields: Fields) -> None:
    """ResUNet: a positive width, residual blocks per level (one level at least), a switch."""
    _ints(fields, 1, "width")
    _levels(fields, "num_blocks")
    _bools(fields, "noise_map")


# --- the specs of the built-in backbones -----------------------------------------------------

RGFORMER_TAPS = (
    ("enc1", 1),
    ("enc2", 2),
    ("enc3", 4),
    ("latent", 8),
    ("dec3", 4),
    ("dec2", 2),
    ("dec1", 1),
    ("refine", 1),
)
NOISE_MAP = (Conditioning("noise_level", switch="noise_map"),)

RGFORMER = BackboneSpec(
    stride=8,
    output=RestorerOutput,
    feature_taps=RGFORMER_TAPS,
    conditioning=(Conditioning("z_img", optional=True), Conditioning("z_rex", optional=True)),
    check=check_rgformer,
)
# The teacher and the student wrap an RGFormer: its stride and taps, their own inputs and checks.
RESTORECT_TEACHER = dataclasses.replace(
    RGFORMER, output=TeacherOutput, conditioning=(Conditioning("gt"),), check=check_teacher
)
RESTORECT_STUDENT = dataclasses.replace(
    RGFORMER, conditioning=(Conditioning("noise"),), check=check_student
)
TIME_UNET = BackboneSpec(
    stride=lambda fields: 2 ** (len(fields["num_blocks"]) - 1),
    conditioning=(Conditioning("time"),),
    check=check_time_unet,
)
UNSHUFFLE_CNN = BackboneSpec(stride=2, conditioning=NOISE_MAP, check=check_unshuffle_cnn)
RES_UNET = BackboneSpec(
    stride=lambda fields: 2 ** len(fields["num_blocks"]),
    conditioning=NOISE_MAP,
    check=check_res_unet,
)
