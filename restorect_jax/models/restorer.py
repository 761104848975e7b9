"""RGFormer: the prior-guided Restormer-style U-Net restorer shared by teacher and student."""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from restorect_jax.image_ops import pad_to_multiple
from restorect_jax.models.blocks import RBlock, TBlock
from restorect_jax.models.layers import Conv3x3, Downsample, Pointwise, Upsample

Array = jax.Array


@flax.struct.dataclass
class RestorerOutput:
    """What `RGFormer` returns; H, W are the input's size.

    restored: (B, H, W, 3), `LQ + residual`, not clipped to [0, 1].
    features: named feature taps, cropped to the part that covers the input
      (`ceil(H/s) x ceil(W/s)` at stride s): encoder "enc1" (stride 1, C), "enc2" (2, 2C),
      "enc3" (4, 4C), "latent" (8, 8C); decoder "dec3" (4, 4C), "dec2" (2, 2C), "dec1" (1, 2C),
      "refine" (1, 2C). FLEX compares the decoder ones.
    retinex_enc: (R (B, H, W, 3), L (B, H, W, 1)) of the Retinex head on the level-1 encoder
      (None without `retinex_heads`).
    retinex_dec: (R, L) of the Retinex head on the level-1 decoder (None without them).
    """

    restored: Array
    features: dict[str, Array]
    retinex_enc: tuple[Array, Array] | None
    retinex_dec: tuple[Array, Array] | None


class RetinexHead(nn.Module):
    """Auxiliary Retinex head, used only by losses.

    Three 3x3 convs (in -> F, F -> F, F -> F) each followed by leaky ReLU, then a 3x3 conv F -> 4
    with ReLU; returns (R = channels 0..2, L = channel 3).
    """

    features: int = 64
    negative_slope: float = 0.2

    @nn.compact
    def __call__(self, x: Array) -> tuple[Array, Array]:
        for i in range(3):
            x = nn.leaky_relu(Conv3x3(self.features, name=f"conv{i}")(x), self.negative_slope)
        out = nn.relu(Conv3x3(4, name="out")(x))
        return out[..., :3], out[..., 3:]


def _crop(x: Array, height: int, width: int, stride: int) -> Array:
    """Keeps the top-left `ceil(height/stride) x ceil(width/stride)` pixels of a stride-s map."""
    return x[:, : (height + stride - 1) // stride, : (width + stride - 1) // stride]


class RGFormer(nn.Module):
    """Four-level prior-guided transformer U-Net (METHODS 1.1), any input size.

    With C = width, levels 1, 2, 3 and the latent at C, 2C, 4C, 8C channels (stride 1, 2, 4, 8):
      encoder: patch_embed (3x3, 3 -> C), R-blocks, Downsample, R-blocks, ... down to the latent;
      decoder level l (3, 2, 1): Upsample, concat the level-l skip, 1x1 reduce to the level width
        (not at level 1, which stays at 2C), R-blocks (`num_blocks[l-1]`, `num_heads[l-1]`);
      refinement: `num_refinement_blocks` T-blocks at 2C with `num_heads[0]` heads;
      restored = LQ + conv3x3(2C -> 3) (without `global_residual`: the conv alone).
    R-blocks are modulated by the Retinex prior `z_rex` (B, prior_dim), T-blocks by the image
    prior `z_img` (B, prior_dim); called without priors, the network is unconditioned (no
    modulation layers: a plain Restormer-style restorer). The input is reflect-padded at the
    bottom and right to a multiple of `stride` (8) and every output cropped back (see
    `RestorerOutput`).
    """

    stride: ClassVar[int] = 8  # three 2x downsamplings

    width: int = 64  # C, channels of level 1
    num_blocks: tuple[int, int, int, int] = (3, 3, 3, 3)  # levels 1, 2, 3 and latent
    num_heads: tuple[int, int, int, int] = (1, 2, 4, 8)  # levels 1, 2, 3 and latent
    num_refinement_blocks: int = 3
    ffn_expansion: float = 2.66  # FFN hidden width = int(channels * ffn_expansion)
    prior_dim: int = 256  # size of z_img and z_rex
    retinex_split: int = 192  # z_rex[:, :split] is reflectance, the rest illumination
    head_features: int = 64  # width of the auxiliary Retinex heads
    use_bias: bool = False  # biases in the U-Net's convs (Restormer: none)
    remat: bool = False  # recompute block activations in the backward pass to save memory
    retinex_heads: bool = True  # the auxiliary Retinex heads (only RestoRect's losses read them)
    # restored = LQ + output conv; False: the output conv alone (an autoencoder must then
    # reconstruct the image through its features instead of passing it on the skip).
    global_residual: bool = True

    def __post_init__(self) -> None:
        if len(self.num_blocks) != 4 or len(self.num_heads) != 4:
            raise ValueError(
                f"RGFormer: num_blocks {self.num_blocks} and num_heads {self.num_heads} need 4 "
                "entries (levels 1, 2, 3, latent)"
            )
        if self.width % 4:
            raise ValueError(f"RGFormer: width {self.width} is not a multiple of 4")
        level_widths = (self.width, 2 * self.width, 4 * self.width, 8 * self.width)
        for level, (channels, heads) in enumerate(zip(level_widths, self.num_heads), start=1):
            if channels % heads:
                raise ValueError(
                    f"RGFormer: level {level} width {channels} not divisible by {heads} heads"
                )
        if not 0 < self.retinex_split < self.prior_dim:
            raise ValueError(
                f"RGFormer: retinex_split {self.retinex_split} not in (0, {self.prior_dim})"
            )
        super().__post_init__()

    @nn.compact
    def __call__(
        self, lq: Array, z_img: Array | None = None, z_rex: Array | None = None
    ) -> RestorerOutput:
        for name, prior in (("z_img", z_img), ("z_rex", z_rex)):
            if prior is not None and prior.shape != (lq.shape[0], self.prior_dim):
                raise ValueError(
                    f"RGFormer: {name} has shape {prior.shape}, expected "
                    f"{(lq.shape[0], self.prior_dim)}"
                )
        _, height, width, _ = lq.shape
        c = self.width
        n1, n2, n3, n_latent = self.num_blocks
        h1, h2, h3, h_latent = self.num_heads
        bias = self.use_bias

        x = pad_to_multiple(lq, self.stride)
        enc1 = self._r_stage(Conv3x3(c, bias, name="patch_embed")(x), z_rex, n1, h1, "enc1")
        enc2 = self._r_stage(Downsample(bias, name="down1_2")(enc1), z_rex, n2, h2, "enc2")
        enc3 = self._r_stage(Downsample(bias, name="down2_3")(enc2), z_rex, n3, h3, "enc3")
        latent = self._r_stage(
            Downsample(bias, name="down3_4")(enc3), z_rex, n_latent, h_latent, "latent"
        )

        dec3 = jnp.concatenate([Upsample(bias, name="up4_3")(latent), enc3], axis=-1)
        dec3 = Pointwise(4 * c, bias, name="reduce3")(dec3)
        dec3 = self._r_stage(dec3, z_rex, n3, h3, "dec3")
        dec2 = jnp.concatenate([Upsample(bias, name="up3_2")(dec3), enc2], axis=-1)
        dec2 = Pointwise(2 * c, bias, name="reduce2")(dec2)
        dec2 = self._r_stage(dec2, z_rex, n2, h2, "dec2")
        dec1 = jnp.concatenate([Upsample(bias, name="up2_1")(dec2), enc1], axis=-1)
        dec1 = self._r_stage(dec1, z_rex, n1, h1, "dec1")

        t_block = nn.remat(TBlock) if self.remat else TBlock
        refine = dec1
        for i in range(self.num_refinement_blocks):
            refine = t_block(h1, self.ffn_expansion, bias, name=f"refine_{i}")(refine, z_img)
        restored = Conv3x3(3, bias, name="output")(refine)
        if self.global_residual:
            restored = restored + x

        def crop(t: Array, stride: int = 1) -> Array:
            return _crop(t, height, width, stride)

        retinex_enc = retinex_dec = None
        if self.retinex_heads:
            r_enc, l_enc = RetinexHead(self.head_features, name="retinex_head_enc")(enc1)
            r_dec, l_dec = RetinexHead(self.head_features, name="retinex_head_dec")(dec1)
            retinex_enc, retinex_dec = (crop(r_enc), crop(l_enc)), (crop(r_dec), crop(l_dec))

        return RestorerOutput(
            restored=crop(restored),
            features={
                "enc1": crop(enc1),
                "enc2": crop(enc2, 2),
                "enc3": crop(enc3, 4),
                "latent": crop(latent, 8),
                "dec3": crop(dec3, 4),
                "dec2": crop(dec2, 2),
                "dec1": crop(dec1),
                "refine": crop(refine),
            },
            retinex_enc=retinex_enc,
            retinex_dec=retinex_dec,
        )

    def _r_stage(self, x: Array, z_rex: Array | None, depth: int, heads: int, name: str) -> Array:
        """Applies `depth` R-blocks named `{name}_0`, `{name}_1`, ..."""
        r_block = nn.remat(RBlock) if self.remat else RBlock
        for i in range(depth):
            x = r_block(
                heads, self.ffn_expansion, self.retinex_split, self.use_bias, name=f"{name}_{i}"
            )(x, z_rex)
        return x


RGFORMER_FIELDS = (
    "width",
    "num_blocks",
    "num_heads",
    "num_refinement_blocks",
    "ffn_expansion",
    "prior_dim",
    "retinex_split",
    "head_features",
    "use_bias",
    "remat",
)


def rgformer_of(module: Any) -> RGFormer:
    """The RGFormer built from the same-named fields of a model that wraps one (teacher, student)."""
    return RGFormer(**{field: getattr(module, field) for field in RGFORMER_FIELDS})
