"""Property test of the restore command's reader and writer (hypothesis).

For any size, mode, bit depth, alpha and EXIF orientation a user's file can have, reading it
and writing the pixels back gives a file of the input's upright size, mode and bit depth, with
the alpha channel bit-exact and the colour within one step of the input's.
"""

import pathlib
import tempfile

import numpy as np
import png
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from restorect_jax import image_io

# (suffix, bit depth, PIL modes); 16-bit files go through pypng and tifffile.
_KINDS = [
    (".png", 8, ("L", "LA", "RGB", "RGBA")),
    (".png", 16, ("L", "LA", "RGB", "RGBA")),
    (".tif", 8, ("L", "RGB", "RGBA")),
    (".tif", 16, ("L", "RGB", "RGBA")),
    (".bmp", 8, ("L", "RGB")),
    (".webp", 8, ("RGB", "RGBA")),
]
_CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


@st.composite
def _images(draw):
    suffix, depth, modes = draw(st.sampled_from(_KINDS))
    mode = draw(st.sampled_from(modes))
    height, width = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    dtype = np.uint8 if depth == 8 else np.uint16
    seed = draw(st.integers(0, 2**32 - 1))
    pixels = np.random.default_rng(seed).integers(
        0, np.iinfo(dtype).max, (height, width, _CHANNELS[mode]), dtype=dtype, endpoint=True
    )
    orientation = draw(st.integers(1, 8)) if (suffix, depth) in ((".png", 8), (".webp", 8)) else 1
    return suffix, depth, mode, pixels, orientation


def _write_input(path: pathlib.Path, depth: int, mode: str, pixels: np.ndarray, orientation: int):
    channels = pixels.shape[-1]
    if depth == 16 and path.suffix == ".png":
        writer = png.Writer(
            pixels.shape[1],
            pixels.shape[0],
            greyscale=channels in (1, 2),
            alpha=channels in (2, 4),
            bitdepth=16,
        )
        with open(path, "wb") as file:
            writer.write(file, pixels.reshape(pixels.shape[0], -1))
    elif path.suffix == ".tif":
        photometric = "minisblack" if channels == 1 else "rgb"
        extrasamples = ("unassalpha",) if channels == 4 else None
        tifffile.imwrite(
            path,
            pixels.squeeze(-1) if channels == 1 else pixels,
            photometric=photometric,
            extrasamples=extrasamples,
        )
    else:
        image = Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)
        exif = Image.Exif()
        exif[0x0112] = orientation
        options = {"lossless": True, "exact": True} if path.suffix == ".webp" else {}
        image.save(path, exif=exif.tobytes(), **options)


def _upright(array: np.ndarray, orientation: int) -> np.ndarray:
    return image_io.orient(array, orientation)


@settings(max_examples=200, deadline=None)
@given(_images())
def test_written_image_keeps_size_mode_depth_and_alpha(case):
    suffix, depth, mode, pixels, orientation = case
    with tempfile.TemporaryDirectory() as folder:
        source = pathlib.Path(folder) / f"in{suffix}"
        _write_input(source, depth, mode, pixels, orientation)
        image = image_io.read_image(source)
        upright = _upright(pixels, orientation)
        has_alpha = mode in ("LA", "RGBA")
        assert image.bit_depth == depth
        assert image.pixels.shape == (*upright.shape[:2], 1 if mode in ("L", "LA") else 3)
        assert (image.alpha is not None) == has_alpha
        target = pathlib.Path(folder) / f"out{suffix}"
        image_io.write_image(target, image.pixels, image)
        again = image_io.read_image(target)
        assert again.bit_depth == depth and again.format == image.format
        assert again.pixels.shape == image.pixels.shape
        if has_alpha:
            np.testing.assert_array_equal(again.alpha, upright[..., -1])
        colour = upright[..., :-1] if has_alpha else upright
        scale = 255.0 if depth == 8 else 65535.0
        np.testing.assert_allclose(again.pixels * scale, colour, atol=0.5)
