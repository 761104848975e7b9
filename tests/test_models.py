"""Tests of restorect_jax.models: layers against nn.Conv and numpy references, model shapes at odd
sizes, gradient flow, and the registry. Tiny widths keep the whole file fast on CPU."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from restorect_jax.models import (
    DecompositionNet,
    PriorEncoder,
    RestoRectTeacher,
    RetinexPriorEncoder,
    RGFormer,
    get_model,
    layers,
    register_model,
)
from restorect_jax.models.blocks import RBlock
from restorect_jax.models.layers import (
    SCLN,
    Conv3x3,
    DepthwiseConv3x3,
    GatedDepthwiseFFN,
    LayerNorm,
    Pointwise,
    PriorModulation,
    TransposedAttention,
    l2_normalize,
    pixel_shuffle,
    pixel_unshuffle,
)

TINY_RESTORER = dict(
    width=8,
    num_blocks=(1, 1, 1, 1),
    num_heads=(1, 1, 2, 2),
    num_refinement_blocks=1,
    head_features=8,
)
TINY_TEACHER = dict(TINY_RESTORER, prior_features=8, prior_res_blocks=1, decomp_features=8)


def _normal(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> jax.Array:
    return scale * jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def _uniform(seed: int, shape: tuple[int, ...]) -> jax.Array:
    return jax.random.uniform(jax.random.key(seed), shape, jnp.float32)


def _randomize(params, seed: int, scale: float = 0.5):
    """Adds noise to every leaf, so that ones/zeros inits (gains, biases) are tested as well."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda leaf: jnp.asarray(leaf + scale * rng.standard_normal(leaf.shape), leaf.dtype), params
    )


# ----------------------------------------------------------------------------- numpy references


def np_pointwise(x: np.ndarray, p: dict) -> np.ndarray:
    return x @ np.asarray(p["kernel"], np.float64) + np.asarray(p.get("bias", 0.0), np.float64)


def np_depthwise(x: np.ndarray, p: dict) -> np.ndarray:
    """Per-pixel loop over the 3x3 window with zero padding (cross-correlation, like lax.conv)."""
    kernel = np.asarray(p["kernel"], np.float64)[:, :, 0, :]
    _, h, w, _ = x.shape
    out = np.zeros_like(x)
    for y in range(h):
        for xx in range(w):
            for i in range(3):
                for j in range(3):
                    yy, xj = y + i - 1, xx + j - 1
                    if 0 <= yy < h and 0 <= xj < w:
                        out[:, y, xx, :] += x[:, yy, xj, :] * kernel[i, j]
    return out + np.asarray(p.get("bias", 0.0), np.float64)


def np_attention(
    x_q: np.ndarray, x_kv: np.ndarray, p: dict, num_heads: int, eps: float = 1e-5
) -> np.ndarray:
    """Transposed attention written from METHODS 1.1, on (B, heads, d, HW) matrices."""
    q = np_depthwise(np_pointwise(x_q, p["q_proj"]), p["q_dwconv"])
    kv = np_depthwise(np_pointwise(x_kv, p["kv_proj"]), p["kv_dwconv"])
    features = q.shape[-1]
    k, v = kv[..., :features], kv[..., features:]
    b, h, w, _ = q.shape
    d = features // num_heads

    def heads(t):  # (B, H, W, F) -> (B, n, d, HW); channel c -> head c // d, row c % d
        return t.reshape(b, h * w, num_heads, d).transpose(0, 2, 3, 1)

    def layer_norm(t, norm):  # over the d axis, per pixel
        mean = t.mean(axis=2, keepdims=True)
        var = ((t - mean) ** 2).mean(axis=2, keepdims=True)
        scale = np.asarray(norm["scale"], np.float64)[:, None]
        bias = np.asarray(norm["bias"], np.float64)[:, None]
        return (t - mean) / np.sqrt(var + eps) * scale + bias

    q, k, v = layer_norm(heads(q), p["q_norm"]), layer_norm(heads(k), p["k_norm"]), heads(v)
    q = q / np.linalg.norm(q, axis=3, keepdims=True)
    k = k / np.linalg.norm(k, axis=3, keepdims=True)
    logits = q @ k.transpose(0, 1, 3, 2) * np.asarray(p["temperature"], np.float64)[:, None, None]
    attn = np.exp(logits - logits.max(axis=-1, keepdims=True))
    attn /= attn.sum(axis=-1, keepdims=True)
    out = (attn @ v).transpose(0, 3, 1, 2).reshape(b, h, w, features)
    return np_pointwise(out, p["out_proj"])


def _f64(x: jax.Array) -> np.ndarray:
    return np.asarray(x, np.float64)


# ----------------------------------------------------------------------------- layers


@pytest.mark.parametrize("use_bias", [True, False])
def test_depthwise_conv_matches_grouped_conv(use_bias):
    x = _normal(0, (2, 7, 9, 5))
    layer = DepthwiseConv3x3(5, use_bias=use_bias)
    params = _randomize(jax.jit(layer.init)(jax.random.key(1), x), seed=2)
    assert params["params"]["kernel"].shape == (3, 3, 1, 5)
    reference = nn.Conv(5, (3, 3), padding="SAME", feature_group_count=5, use_bias=use_bias)
    np.testing.assert_allclose(
        jax.jit(layer.apply)(params, x), reference.apply(params, x), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("custom_backward", [True, False])
@pytest.mark.parametrize(
    "shape", [(2, 7, 9, 5), (1, 1, 3, 2), (3, 5, 4, 1), (2, 8, 5, 3), (1, 6, 7, 2)]
)
def test_depthwise_conv_values_and_gradients_match_grouped_conv(custom_backward, shape):
    """Both backward forms against `nn.Conv`'s grouped convolution: values and the gradients
    of x, kernel and bias, on odd shapes (a 1-pixel-high image, one channel) and on heights the
    kernel gradient's loop takes in blocks of 4 and 2 rows."""
    x = _normal(10, shape)
    layer = DepthwiseConv3x3(shape[-1], custom_backward=custom_backward)
    params = _randomize(jax.jit(layer.init)(jax.random.key(11), x), seed=12)
    reference = nn.Conv(shape[-1], (3, 3), padding="SAME", feature_group_count=shape[-1])
    cotangent = _normal(13, shape)

    def value_and_grads(module):
        loss = lambda p, x: jnp.sum(module.apply(p, x) * cotangent)
        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, x)

    ours, theirs = value_and_grads(layer), value_and_grads(reference)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), ours, theirs)


@pytest.mark.parametrize(("shape", "axis"), [((2, 3, 7, 5), 2), ((1, 1, 9, 4), 2), ((3, 5, 4), 0)])
def test_l2_normalize_values_and_gradients_match_the_plain_formula(shape, axis):
    """The contraction form with its written-out gradient against `x rsqrt(max(sum x^2, eps^2))`
    as XLA differentiates it, with one all-zero vector along `axis` (the eps branch)."""
    x = jnp.moveaxis(_normal(20, shape), axis, -1).at[(0,) * (len(shape) - 1)].set(0.0)
    x = jnp.moveaxis(x, -1, axis)
    cotangent = _normal(21, shape)

    def plain(x):
        return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=axis, keepdims=True), 1e-24))

    def value_and_grad(fn):
        return jax.jit(jax.value_and_grad(lambda x: jnp.sum(fn(x) * cotangent)))(x)

    ours = value_and_grad(lambda x: l2_normalize(x, axis))
    theirs = value_and_grad(plain)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("form", [layers._kernel_gradient_full, layers._kernel_gradient_row_blocks])
@pytest.mark.parametrize("shape", [(2, 7, 9, 5), (1, 1, 3, 2), (2, 8, 5, 3), (1, 6, 7, 2)])
def test_depthwise_kernel_gradient_forms_match_xla(form, shape):
    """Each platform's kernel-gradient form (the CPU's row blocks at 1, 2 and 4 rows a step, and
    the full-size sums used elsewhere) against XLA's gradient of the shift-and-add forward."""
    x, dy = _normal(42, shape), _normal(43, shape)
    kernel = _normal(44, (3, 3, shape[-1]))
    _, pullback = jax.vjp(lambda k: layers._shift_add3x3(x, k), kernel)
    np.testing.assert_allclose(jax.jit(form)(x, dy), pullback(dy)[0], rtol=1e-5, atol=1e-5)


def _values_and_grads(module: nn.Module, params, x: jax.Array, cotangent: jax.Array):
    """`sum(module(x) * cotangent)` and its gradients w.r.t. the params and x, jitted."""
    loss = lambda p, x: jnp.sum(module.apply(p, x) * cotangent)
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, x)


def _assert_trees_close(ours, theirs, tolerance: float = 1e-5) -> None:
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance), ours, theirs
    )


@pytest.mark.parametrize("shape", [(2, 7, 5, 13), (3, 1, 4, 1), (1, 3, 2, 6)])
def test_layer_norm_values_and_gradients_match_flax(shape):
    """`LayerNorm` (parameter gradients as plain sums) against `nn.LayerNorm` with the same
    parameters: values and the gradients of x, scale and bias, on odd shapes and one channel."""
    x = _normal(30, shape, scale=3.0) + 1.0
    ours, theirs = LayerNorm(1e-5), nn.LayerNorm(epsilon=1e-5)
    params = _randomize(jax.jit(theirs.init)(jax.random.key(31), x), seed=32)
    assert jax.tree.map(jnp.shape, jax.jit(ours.init)(jax.random.key(31), x)) == jax.tree.map(
        jnp.shape, params
    )
    cotangent = _normal(33, shape)
    _assert_trees_close(
        _values_and_grads(ours, params, x, cotangent),
        _values_and_grads(theirs, params, x, cotangent),
    )


def test_scln_gradients_match_the_plain_formula():
    """SCLN's gain gradient (a plain sum) and input gradient against the formula as XLA
    differentiates it, with one value past the clamp."""
    x = _normal(34, (2, 5, 3, 7)).at[0, 0, 0, 0].set(100.0)
    layer = SCLN()
    params = _randomize(jax.jit(layer.init)(jax.random.key(35), x), seed=36)
    cotangent = _normal(37, x.shape)

    class PlainSCLN(nn.Module):
        @nn.compact
        def __call__(self, x):
            mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
            var = jnp.mean(jnp.square(x - mean), axis=(1, 2, 3), keepdims=True)
            y = jnp.clip((x - mean) * jax.lax.rsqrt(var + 1e-5), -10.0, 10.0)
            return y * self.param("scale", nn.initializers.ones_init(), (x.shape[-1],))

    _assert_trees_close(
        _values_and_grads(layer, params, x, cotangent),
        _values_and_grads(PlainSCLN(), params, x, cotangent),
    )


@pytest.mark.parametrize("shape", [(2, 5, 3, 7), (1, 1, 9, 1), (3, 4, 4, 2)])
def test_pointwise_values_and_gradients_match_dense(shape):
    """`Pointwise` (its kernel gradient as one contraction over the pixels) against `nn.Dense`
    with the same parameters: values and the gradients of x, kernel and bias."""
    x = _normal(38, shape)
    ours, theirs = Pointwise(5), nn.Dense(5)
    params = _randomize(jax.jit(ours.init)(jax.random.key(39), x), seed=40)
    cotangent = _normal(41, (*shape[:-1], 5))
    _assert_trees_close(
        _values_and_grads(ours, params, x, cotangent),
        _values_and_grads(theirs, params, x, cotangent),
    )


def test_depthwise_conv_matches_numpy_loop():
    x = _normal(3, (1, 4, 5, 3))
    layer = DepthwiseConv3x3(3)
    params = _randomize(jax.jit(layer.init)(jax.random.key(4), x), seed=5)
    np.testing.assert_allclose(
        jax.jit(layer.apply)(params, x), np_depthwise(_f64(x), params["params"]), atol=1e-5
    )


def test_pointwise_matches_conv1x1():
    x = _normal(6, (2, 5, 6, 7))
    layer = Pointwise(4)
    params = _randomize(jax.jit(layer.init)(jax.random.key(7), x), seed=8)
    conv_params = {
        "params": {
            "kernel": params["params"]["kernel"][None, None],
            "bias": params["params"]["bias"],
        }
    }
    np.testing.assert_allclose(
        jax.jit(layer.apply)(params, x),
        nn.Conv(4, (1, 1)).apply(conv_params, x),
        atol=1e-5,
        rtol=1e-5,
    )


def test_conv3x3_matches_nn_conv():
    x = _normal(9, (2, 6, 5, 3))
    layer = Conv3x3(4)
    params = _randomize(jax.jit(layer.init)(jax.random.key(10), x), seed=11)
    np.testing.assert_allclose(
        jax.jit(layer.apply)(params, x),
        nn.Conv(4, (3, 3), padding="SAME").apply(params, x),
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.parametrize("factor", [2, 4])
def test_pixel_unshuffle_layout_and_inverse(factor):
    x = _normal(12, (2, 4 * factor, 3 * factor, 3))
    y = pixel_unshuffle(x, factor)
    assert y.shape == (2, 4, 3, 3 * factor * factor)
    # Channel c r^2 + i r + j at (Y, X) is input pixel (r Y + i, r X + j) of channel c.
    c, i, j, row, col = 2, factor - 1, 1, 3, 2
    assert (
        y[1, row, col, c * factor * factor + i * factor + j]
        == x[1, factor * row + i, factor * col + j, c]
    )
    np.testing.assert_array_equal(pixel_shuffle(y, factor), x)
    np.testing.assert_array_equal(pixel_unshuffle(pixel_shuffle(y, factor), factor), y)


def test_pixel_unshuffle_rejects_indivisible_size():
    with pytest.raises(ValueError, match="multiple"):
        pixel_unshuffle(jnp.zeros((1, 5, 4, 1)), 2)


def test_scln_matches_numpy_and_clamps():
    x = np.array(_normal(13, (2, 8, 8, 4)))
    x[0, 0, 0, 0] = 1000.0  # about 16 standard deviations in sample 0: must be clamped to 10
    layer = SCLN()
    params = _randomize(jax.jit(layer.init)(jax.random.key(14), x), seed=15)
    scale = _f64(params["params"]["scale"])
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(1, 2, 3), keepdims=True)
    var = x64.var(axis=(1, 2, 3), keepdims=True)
    normalized = (x64 - mean) / np.sqrt(var + 1e-5)
    assert normalized[0, 0, 0, 0] > 10.0
    expected = np.clip(normalized, -10.0, 10.0) * scale
    np.testing.assert_allclose(jax.jit(layer.apply)(params, x), expected, atol=1e-4, rtol=1e-4)
    assert params["params"].keys() == {"scale"}  # no bias


def test_prior_modulation_matches_formula():
    x, prior = _normal(16, (2, 3, 4, 5)), _normal(17, (2, 6))
    layer = PriorModulation()
    params = jax.jit(layer.init)(jax.random.key(18), x, prior)
    weight = _f64(params["params"]["proj"]["kernel"])
    assert params["params"]["proj"].keys() == {"kernel"}  # bias-free
    scale = (_f64(prior) @ weight)[:, None, None, :]
    np.testing.assert_allclose(
        jax.jit(layer.apply)(params, x, prior), _f64(x) * scale + _f64(x), atol=1e-5, rtol=1e-5
    )


def test_transposed_self_attention_matches_numpy():
    x = _normal(19, (2, 5, 6, 8))
    layer = TransposedAttention(num_heads=2, use_bias=True)
    params = _randomize(jax.jit(layer.init)(jax.random.key(20), x), seed=21)
    expected = np_attention(_f64(x), _f64(x), params["params"], num_heads=2)
    np.testing.assert_allclose(jax.jit(layer.apply)(params, x), expected, atol=1e-4, rtol=1e-4)


def test_transposed_cross_attention_matches_numpy():
    x_q, x_kv = _normal(22, (2, 4, 5, 6)), _normal(23, (2, 4, 5, 2))
    layer = TransposedAttention(num_heads=2, features=8)
    params = _randomize(jax.jit(layer.init)(jax.random.key(24), x_q, x_kv), seed=25)
    assert params["params"]["q_proj"]["kernel"].shape == (6, 8)
    assert params["params"]["kv_proj"]["kernel"].shape == (2, 16)
    out = jax.jit(layer.apply)(params, x_q, x_kv)
    assert out.shape == (2, 4, 5, 8)
    expected = np_attention(_f64(x_q), _f64(x_kv), params["params"], num_heads=2)
    np.testing.assert_allclose(out, expected, atol=1e-4, rtol=1e-4)


def test_gated_ffn_matches_numpy():
    x = _normal(26, (1, 4, 4, 6))
    layer = GatedDepthwiseFFN(expansion=2.66)
    params = jax.jit(layer.init)(jax.random.key(27), x)
    p = params["params"]
    hidden = int(6 * 2.66)
    assert p["in_proj"]["kernel"].shape == (6, 2 * hidden)
    y = np_depthwise(np_pointwise(_f64(x), p["in_proj"]), p["dwconv"])
    x1, x2 = y[..., :hidden], y[..., hidden:]
    gelu = _f64(jax.nn.gelu(jnp.asarray(x1, jnp.float32), approximate=False))
    np.testing.assert_allclose(
        jax.jit(layer.apply)(params, x),
        np_pointwise(gelu * x2, p["out_proj"]),
        atol=1e-4,
        rtol=1e-4,
    )


def test_rblock_splits_channels_and_prior():
    x, z_rex = _normal(28, (1, 4, 4, 8)), _normal(29, (1, 256))
    block = RBlock(num_heads=2)
    params = jax.eval_shape(block.init, jax.random.key(30), x, z_rex)["params"]
    assert params["q_mod"]["proj"]["kernel"].shape == (192, 6)
    assert params["kv_mod"]["proj"]["kernel"].shape == (64, 2)
    assert params["ffn_mod"]["proj"]["kernel"].shape == (256, 8)
    assert params["attn"]["q_proj"]["kernel"].shape == (6, 8)
    assert params["attn"]["kv_proj"]["kernel"].shape == (2, 16)
    with pytest.raises(ValueError, match="multiple of 4"):
        jax.eval_shape(block.init, jax.random.key(30), _normal(31, (1, 4, 4, 6)), z_rex)


# ----------------------------------------------------------------------------- models


def test_rgformer_param_count_at_paper_scale():
    model = RGFormer()  # width 64, blocks (3, 3, 3, 3), heads (1, 2, 4, 8), 3 refinement blocks
    lq = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
    z = jax.ShapeDtypeStruct((1, 256), jnp.float32)
    shapes = jax.eval_shape(model.init, jax.random.key(0), lq, z, z)
    count = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes))
    assert 23.0e6 < count < 24.0e6  # METHODS 1.1: about 23.5M


def test_rgformer_remat_keeps_the_parameter_tree():
    lq, z = jnp.zeros((1, 8, 8, 3)), jnp.zeros((1, 256))
    shapes = jax.eval_shape(RGFormer(**TINY_RESTORER).init, jax.random.key(0), lq, z, z)
    remat_shapes = jax.eval_shape(
        RGFormer(**TINY_RESTORER, remat=True).init, jax.random.key(0), lq, z, z
    )
    assert jax.tree.map(jnp.shape, remat_shapes) == jax.tree.map(jnp.shape, shapes)


def test_rgformer_rejects_bad_configs():
    with pytest.raises(ValueError, match="multiple of 4"):
        RGFormer(width=6)
    with pytest.raises(ValueError, match="not divisible"):
        RGFormer(width=8, num_heads=(3, 1, 1, 1))
    with pytest.raises(ValueError, match="4 entries"):
        RGFormer(num_blocks=(1, 1, 1))
    model = RGFormer(**TINY_RESTORER)
    with pytest.raises(ValueError, match="z_rex"):
        jax.eval_shape(
            model.init,
            jax.random.key(0),
            jnp.zeros((1, 8, 8, 3)),
            jnp.zeros((1, 256)),
            jnp.zeros((1, 128)),
        )


def test_decomposition_ranges():
    image = _uniform(36, (2, 11, 7, 3))
    for activation in ("sigmoid", "relu"):
        net = DecompositionNet(features=8, output_activation=activation)
        r, l = jax.jit(lambda x: net.apply(net.init(jax.random.key(37), x), x))(image)
        assert r.shape == (2, 11, 7, 3) and l.shape == (2, 11, 7, 1)
        assert float(jnp.min(r)) >= 0.0 and float(jnp.min(l)) >= 0.0
        if activation == "sigmoid":
            assert float(jnp.min(l)) > 0.0 and float(jnp.max(r)) < 1.0
    with pytest.raises(ValueError, match="output_activation"):
        DecompositionNet(output_activation="tanh")


def test_prior_encoders_shapes_and_normalisation():
    image = _uniform(38, (3, 10, 7, 6))
    encoder = PriorEncoder(out_dim=16, features=8, num_res_blocks=1, normalize_output=True)
    z = jax.jit(lambda x: encoder.apply(encoder.init(jax.random.key(39), x), x))(image)
    assert z.shape == (3, 16)
    np.testing.assert_allclose(jnp.mean(z, axis=-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.std(z, axis=-1), 1.0, atol=1e-3)
    rex = RetinexPriorEncoder(reflectance_dim=12, illumination_dim=4, features=8, num_res_blocks=1)
    refl, illum = image, image[..., :2]
    shapes = jax.eval_shape(rex.init, jax.random.key(40), refl, illum)["params"]
    assert shapes["reflectance"]["embed"]["kernel"].shape == (3, 3, 6 * 16, 8)
    assert shapes["illumination"]["embed"]["kernel"].shape == (3, 3, 2 * 16, 8)
    assert jax.eval_shape(rex.apply, {"params": shapes}, refl, illum).shape == (3, 16)


def _check_restorer_output(out, batch: int, height: int, width: int, channels: int) -> None:
    """Shapes of a tiny RGFormer's outputs at an H x W input (C = channels), and finiteness."""

    def up(n: int, stride: int) -> int:
        return -(-n // stride)

    assert out.restored.shape == (batch, height, width, 3)
    assert set(out.features) == {"enc1", "enc2", "enc3", "latent", "dec3", "dec2", "dec1", "refine"}
    assert out.features["enc1"].shape == (batch, height, width, channels)
    assert out.features["enc3"].shape == (batch, up(height, 4), up(width, 4), 4 * channels)
    assert out.features["latent"].shape == (batch, up(height, 8), up(width, 8), 8 * channels)
    assert out.features["dec3"].shape == (batch, up(height, 4), up(width, 4), 4 * channels)
    assert out.features["dec2"].shape == (batch, up(height, 2), up(width, 2), 2 * channels)
    assert out.features["dec1"].shape == (batch, height, width, 2 * channels)
    assert out.features["refine"].shape == (batch, height, width, 2 * channels)
    for r, l in (out.retinex_enc, out.retinex_dec):
        assert r.shape == (batch, height, width, 3) and l.shape == (batch, height, width, 1)
        assert np.min(r) >= 0.0 and np.min(l) >= 0.0  # ReLU outputs
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(jax.device_get(out)))


def _teacher_loss(model: RestoRectTeacher, params, lq: jax.Array, gt: jax.Array):
    """A scalar touching every teacher output; returns (loss, outputs)."""
    out = model.apply(params, lq, gt)
    terms = [jnp.mean(jnp.abs(out.restored - gt)), out.hvi_k, out.diffusion_scale]
    terms += [
        jnp.mean(t)
        for t in jax.tree.leaves(
            (out.features, out.retinex_enc, out.retinex_dec, out.decomp_lq, out.decomp_gt)
        )
    ]
    return sum(terms), out


@pytest.fixture(scope="module")
def teacher_setup():
    """A tiny teacher initialised at 17x9 and one jitted (gradients, outputs) function of its
    params. Compiling the tiny models dominates this file's time, so the tests share these."""
    model = RestoRectTeacher(**TINY_TEACHER)
    lq, gt = _uniform(41, (2, 17, 9, 3)), _uniform(42, (2, 17, 9, 3))
    params = jax.jit(model.init)(jax.random.key(43), lq, gt)
    grad_fn = jax.jit(jax.grad(lambda p: _teacher_loss(model, p, lq, gt), has_aux=True))
    return model, params, lq, gt, grad_fn


def test_rgformer_standalone_on_teacher_params_at_odd_size(teacher_setup):
    """The RGFormer is independent of the teacher: a standalone module with the same fields has
    the teacher's `restorer` param tree and runs on those params (how a student is seeded)."""
    _, teacher_params, _, _, _ = teacher_setup
    model = RGFormer(**TINY_RESTORER)
    lq = _uniform(32, (2, 13, 21, 3))
    z_img, z_rex = _normal(33, (2, 256)), _normal(34, (2, 256))
    params = {"params": teacher_params["params"]["restorer"]}
    own_shapes = jax.eval_shape(model.init, jax.random.key(0), lq, z_img, z_rex)
    assert jax.tree.map(jnp.shape, own_shapes) == jax.tree.map(jnp.shape, params)
    out = jax.jit(model.apply)(params, lq, z_img, z_rex)
    _check_restorer_output(out, 2, 13, 21, TINY_RESTORER["width"])


def test_teacher_outputs_at_odd_size(teacher_setup):
    model, params, lq, gt, grad_fn = teacher_setup
    _, out = grad_fn(params)
    _check_restorer_output(out, 2, 17, 9, TINY_TEACHER["width"])
    for r, l in (out.decomp_lq, out.decomp_gt):
        assert r.shape == (2, 17, 9, 3) and l.shape == (2, 17, 9, 1)
    assert out.z_img.shape == (2, 256) and out.z_rex.shape == (2, 256)
    assert float(out.hvi_k) == pytest.approx(1.0)
    assert float(out.diffusion_scale) == pytest.approx(0.1)
    # The priors are privileged: with LQ fixed they change with GT.
    priors = jax.jit(lambda p, x, y: model.apply(p, x, y, method=RestoRectTeacher.priors))
    same, other = priors(params, lq, gt), priors(params, lq, gt[::-1])
    np.testing.assert_allclose(same.z_img, out.z_img, atol=1e-5, rtol=1e-4)
    assert not np.allclose(other.z_img, out.z_img) and not np.allclose(other.z_rex, out.z_rex)


def test_teacher_clamps_loss_scalars(teacher_setup):
    _, params, _, _, grad_fn = teacher_setup
    raw = dict(params["params"], hvi_k=jnp.float32(5.0), diffusion_scale=jnp.float32(-1.0))
    grads, out = grad_fn({"params": raw})
    assert float(out.hvi_k) == pytest.approx(2.0)
    assert float(out.diffusion_scale) == pytest.approx(0.01)
    assert float(grads["params"]["hvi_k"]) == 0.0  # clamped: no gradient past the range


def test_teacher_gradients_finite_and_reach_every_param(teacher_setup):
    _, params, _, _, grad_fn = teacher_setup
    grads, _ = grad_fn(params)
    flat = jax.tree_util.tree_leaves_with_path(jax.device_get(grads))
    for path, g in flat:
        assert np.all(np.isfinite(g)), jax.tree_util.keystr(path)
    dead = [jax.tree_util.keystr(path) for path, g in flat if not np.any(g != 0)]
    assert not dead, f"params with zero gradient: {dead}"


# ----------------------------------------------------------------------------- registry


def test_registry():
    model = get_model("rgformer", width=16)
    assert isinstance(model, RGFormer) and model.width == 16
    assert isinstance(get_model("restorect_teacher"), RestoRectTeacher)
    assert isinstance(get_model("decomposition"), DecompositionNet)
    assert isinstance(get_model("prior_encoder", out_dim=8), PriorEncoder)
    with pytest.raises(ValueError, match="rgformer") as error:
        get_model("no_such_model")
    assert "restorect_teacher" in str(error.value) and "decomposition" in str(error.value)
    with pytest.raises(ValueError, match="already registered"):
        register_model("rgformer")(RGFormer)


def test_conv3x3_promotes_mixed_dtypes_as_jnp_does():
    """Mixed precision feeds bf16 params with some float32 activations (sampled priors)."""
    conv = Conv3x3(4)
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 6, 6, 3))
    params = conv.init(jax.random.PRNGKey(1), x)
    bf16 = jax.tree.map(lambda leaf: leaf.astype(jnp.bfloat16), params)
    assert conv.apply(bf16, x.astype(jnp.bfloat16)).dtype == jnp.bfloat16
    mixed = conv.apply(bf16, x)
    assert mixed.dtype == jnp.float32
    rounded = jax.tree.map(lambda leaf: leaf.astype(jnp.float32), bf16)
    np.testing.assert_allclose(mixed, conv.apply(rounded, x), rtol=1e-6, atol=1e-6)


def test_rgformer_without_priors_has_no_modulation_and_runs_at_odd_sizes():
    model = RGFormer(width=4, num_blocks=(1, 1, 1, 1), num_heads=(1, 1, 1, 2), retinex_heads=False)
    lq = jax.random.uniform(jax.random.key(7), (2, 13, 21, 3))
    params = jax.jit(model.init)(jax.random.key(8), lq)
    names = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)]
    assert not any("_mod" in name or "retinex_head" in name for name in names)
    out = jax.jit(model.apply)(params, lq)
    assert out.restored.shape == lq.shape and out.retinex_enc is None
    assert out.features["latent"].shape == (2, 2, 3, 32)
    assert np.all(np.isfinite(out.restored))
    assert RGFormer.stride == 8
