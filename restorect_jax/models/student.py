"""The stage-S2 RestoRect student: LQ-only condition encoders, prior velocity predictors, RGFormer.

The student never sees GT. Its priors come either from the latent rectified flow (METHODS 1.3):
noise at t = 1 integrated to the teacher's prior at t = 0 by velocity predictors conditioned on
`c_img = C_img(LQ)` and `c_rex = C_rex(R_lq, L_lq)`; or, for the no-flow baselines, from the
condition vectors themselves. Multi-step sampling runs outside the module
(`restorect_jax.methods.restorect.sample_priors`), because a `lax.scan` body cannot call bound
Linen submodules; the module exposes `conditions`, `velocity` and `restore` for it.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from restorect_jax.models.layers import Pointwise
from restorect_jax.models.priors import PriorEncoder, RetinexPriorEncoder
from restorect_jax.models.restorer import RestorerOutput, RGFormer, rgformer_of
from restorect_jax.models.retinex import DecompositionNet

Array = jax.Array


def time_embedding(t: Array, dim: int, max_period: float = 10_000.0) -> Array:
    """Sinusoidal embedding of times t (B,) in [0, 1] -> (B, dim).

    `[sin(1000 t w_k), cos(1000 t w_k)]` for k < dim / 2, `w_k = max_period^(-k / (dim / 2))`:
    the factor 1000 spreads [0, 1] over the periods the frequencies resolve.
    """
    if dim % 2:
        raise ValueError(f"time_embedding: dim {dim} must be even")
    half = dim // 2
    frequencies = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    angles = 1000.0 * t[:, None] * frequencies[None, :]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class VelocityPredictor(nn.Module):
    """`v(x_t, t, c) = Dense_out(leaky_relu(Dense_hidden([c, emb(t), x_t]), 0.1)) + g(t) * x_t`.

    Output (B, out_dim); t is a scalar or per sample (B,); the MLP's output layer is linear
    (METHODS 1.3). The gain `g(t) = Dense_gain(emb(t))` (per dimension) carries the part of the
    velocity that is proportional to the state: on a straight path to a target z the ideal field
    is `(x_t - z) / t`. Through a hidden layer narrower than out_dim the MLP alone can follow the
    state in at most `hidden` directions: with hidden 64 < 256 the sampled priors stayed about
    as far from the teacher's as the start noise (measured, tools/bench_distill.py run of
    2026-11-23; see docs/RESULTS.md).
    """

    out_dim: int
    hidden: int = 256
    time_dim: int = 64
    negative_slope: float = 0.1

    @nn.compact
    def __call__(self, x_t: Array, t: Array, condition: Array) -> Array:
        t = jnp.broadcast_to(jnp.asarray(t, x_t.dtype), x_t.shape[:1])
        embedding = time_embedding(t, self.time_dim)
        h = jnp.concatenate([condition, embedding, x_t], axis=-1)
        h = nn.leaky_relu(nn.Dense(self.hidden, name="hidden")(h), self.negative_slope)
        gain = nn.Dense(self.out_dim, name="gain")(embedding)
        return nn.Dense(self.out_dim, name="out")(h) + gain * x_t


@flax.struct.dataclass
class StudentConditions:
    """What the student reads from LQ before restoring it.

    c_img: (B, prior_dim) layer-normalised image condition.
    c_rex: (B, prior_dim) Retinex condition [reflectance | illumination], each part normalised.
    decomp_lq: (R (B, H, W, 3), L (B, H, W, 1)), the student's decomposition of LQ.
    """

    c_img: Array
    c_rex: Array
    decomp_lq: tuple[Array, Array]


class RestoRectStudent(nn.Module):
    """The student (METHODS 1.2, 1.3, 1.6): everything it needs at test time sees LQ only.

    Submodules: `decomposition`, `image_condition`, `retinex_condition`, `image_velocity` and
    `retinex_velocity` (only with `use_flow`), `restorer`. The flow state is the concatenation
    `[z_img | z_rex]` (B, 2 prior_dim): two independent flows integrated side by side.
    """

    stride: ClassVar[int] = RGFormer.stride
    # RGFormer (see its fields); prior_dim and retinex_split must equal the teacher's.
    width: int = 16
    num_blocks: tuple[int, int, int, int] = (1, 1, 1, 1)
    num_heads: tuple[int, int, int, int] = (1, 1, 2, 4)
    num_refinement_blocks: int = 1
    ffn_expansion: float = 2.66
    prior_dim: int = 256
    retinex_split: int = 192
    head_features: int = 16
    use_bias: bool = False
    remat: bool = False
    # Condition encoders (PriorEncoder fields).
    condition_features: int = 8
    condition_res_blocks: int = 1
    condition_embed_dim: int = 64
    condition_mlp_hidden: int = 64
    # Decomposition network.
    decomp_features: int = 8
    decomp_output_activation: Literal["sigmoid", "relu"] = "sigmoid"
    # Velocity predictors; without the flow the conditions are the priors.
    use_flow: bool = True
    velocity_hidden: int = 128
    time_dim: int = 64

    def setup(self) -> None:
        self.decomposition = DecompositionNet(
            self.decomp_features, output_activation=self.decomp_output_activation
        )
        self.image_condition = PriorEncoder(
            out_dim=self.prior_dim,
            features=self.condition_features,
            num_res_blocks=self.condition_res_blocks,
            embed_dim=self.condition_embed_dim,
            mlp_hidden=self.condition_mlp_hidden,
            normalize_output=True,
        )
        self.retinex_condition = RetinexPriorEncoder(
            reflectance_dim=self.retinex_split,
            illumination_dim=self.prior_dim - self.retinex_split,
            features=self.condition_features,
            num_res_blocks=self.condition_res_blocks,
            embed_dim=self.condition_embed_dim,
            mlp_hidden=self.condition_mlp_hidden,
            normalize_output=True,
        )
        if self.use_flow:
            self.image_velocity = VelocityPredictor(
                self.prior_dim, self.velocity_hidden, self.time_dim
            )
            self.retinex_velocity = VelocityPredictor(
                self.prior_dim, self.velocity_hidden, self.time_dim
            )
        self.restorer = rgformer_of(self)

    def decompose(self, image: Array) -> tuple[Array, Array]:
        """The student's Retinex decomposition (R, L) of any image (GT too, for loss targets)."""
        return self.decomposition(image)

    def conditions(self, lq: Array) -> StudentConditions:
        """`c_img = C_img(LQ)`, `c_rex = C_rex(R_lq, L_lq)` with `(R_lq, L_lq) = D(LQ)`."""
        r_lq, l_lq = self.decomposition(lq)
        return StudentConditions(
            c_img=self.image_condition(lq),
            c_rex=self.retinex_condition(r_lq, l_lq),
            decomp_lq=(r_lq, l_lq),
        )

    def velocity(self, x: Array, t: Array, c_img: Array, c_rex: Array) -> Array:
        """Velocities `[v_img(x_img, t, c_img) | v_rex(x_rex, t, c_rex)]` of the flow state x."""
        x_img, x_rex = jnp.split(x, 2, axis=-1)
        return jnp.concatenate(
            [self.image_velocity(x_img, t, c_img), self.retinex_velocity(x_rex, t, c_rex)],
            axis=-1,
        )

    def restore(self, lq: Array, z_img: Array, z_rex: Array) -> RestorerOutput:
        """The student's RGFormer on LQ with given priors."""
        return self.restorer(lq, z_img, z_rex)

    def __call__(self, lq: Array, noise: Array) -> RestorerOutput:
        """A one-step forward through every submodule (it is what `init` traces).

        With the flow, the priors are one Euler step from `noise` (B, 2 prior_dim) at t = 1:
        `z = noise - v(noise, 1, c)`; without, `z = [c_img | c_rex]` and noise is unused.
        """
        cond = self.conditions(lq)
        if self.use_flow:
            z = noise - self.velocity(noise, jnp.ones(()), cond.c_img, cond.c_rex)
            z_img, z_rex = jnp.split(z, 2, axis=-1)
        else:
            z_img, z_rex = cond.c_img, cond.c_rex
        return self.restore(lq, z_img, z_rex)


class FeatureProjections(nn.Module):
    """Learned 1x1 convs from student feature widths to the teacher's (METHODS 1.4), by name.

    `widths` pairs each feature name with the teacher's channel count; used only by losses.
    """

    widths: tuple[tuple[str, int], ...]

    @nn.compact
    def __call__(self, features: dict[str, Array]) -> dict[str, Array]:
        return {
            name: Pointwise(width, use_bias=True, name=name)(features[name])
            for name, width in self.widths
        }
