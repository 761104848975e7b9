"""Prior-modulated transformer blocks of the RGFormer: the Retinex R-block and the refinement
T-block.

Both are pre-norm residual blocks with SCLN as the norm N and a prior-modulated input to each
sub-layer (`PriorModulation`: `x <- x * (W k) + x`):
  x += Attn(mod(N(x), prior)),  x += FFN(mod(N(x), prior)).
With `prior=None` the modulations are skipped (`mod(y, None) = y`, no parameters): the blocks of
an unconditioned restorer.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from restorect_jax.models.layers import (
    SCLN,
    GatedDepthwiseFFN,
    PriorModulation,
    TransposedAttention,
)

Array = jax.Array


def _modulate(name: str, x: Array, prior: Array | None) -> Array:
    """`PriorModulation` named `name` of x by `prior`, or x itself when there is no prior."""
    return x if prior is None else PriorModulation(name=name)(x, prior)


class RBlock(nn.Module):
    """Retinex cross-attention block (encoder, latent and decoder levels).

    With C channels and a Retinex prior `z_rex = [z_refl (retinex_split) | z_illum (rest)]`:
      y = SCLN(x)
      q source  = mod(y[..., :3C/4], z_refl)       (reflectance-like channels)
      kv source = mod(y[..., 3C/4:], z_illum)      (illumination-like channels)
      x += TransposedAttention(q source -> C queries, kv source -> C keys and C values)
      x += FFN(mod(SCLN(x), z_rex))
    C must be a multiple of 4.
    """

    num_heads: int
    ffn_expansion: float = 2.66
    retinex_split: int = 192
    use_bias: bool = False

    @nn.compact
    def __call__(self, x: Array, z_rex: Array | None) -> Array:
        channels = x.shape[-1]
        if channels % 4:
            raise ValueError(f"RBlock: channel count {channels} is not a multiple of 4")
        split = 3 * channels // 4
        y = SCLN(name="attn_norm")(x)
        z_refl, z_illum = (
            (None, None)
            if z_rex is None
            else (
                z_rex[:, : self.retinex_split],
                z_rex[:, self.retinex_split :],
            )
        )
        queries = _modulate("q_mod", y[..., :split], z_refl)
        keys_values = _modulate("kv_mod", y[..., split:], z_illum)
        x = x + TransposedAttention(self.num_heads, channels, self.use_bias, name="attn")(
            queries, keys_values
        )
        y = _modulate("ffn_mod", SCLN(name="ffn_norm")(x), z_rex)
        return x + GatedDepthwiseFFN(self.ffn_expansion, self.use_bias, name="ffn")(y)


class TBlock(nn.Module):
    """Refinement block: transposed self-attention and FFN, both modulated by the image prior z_img.

    x += TransposedAttention(mod(SCLN(x), z_img)),  x += FFN(mod(SCLN(x), z_img))
    """

    num_heads: int
    ffn_expansion: float = 2.66
    use_bias: bool = False

    @nn.compact
    def __call__(self, x: Array, z_img: Array | None) -> Array:
        y = _modulate("attn_mod", SCLN(name="attn_norm")(x), z_img)
        x = x + TransposedAttention(self.num_heads, use_bias=self.use_bias, name="attn")(y)
        y = _modulate("ffn_mod", SCLN(name="ffn_norm")(x), z_img)
        return x + GatedDepthwiseFFN(self.ffn_expansion, self.use_bias, name="ffn")(y)
