"""Reading and writing user photos without losing what the restoration does not touch.

`read_image` gives the colour channels as float32 in [0, 1] plus everything needed to write the
result back the same way: the bit depth (8 or 16), the alpha channel (kept as stored), the file
format, and the ICC profile and EXIF data. The EXIF orientation is applied on reading, so the
pixels are upright, and the written EXIF says "upright" (orientation 1).

Pillow decodes 8-bit images of every supported format and 16-bit grey. It silently reduces
16-bit colour PNG and TIFF to 8 bits, so those go through pypng and tifffile instead.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import png
import tifffile
from PIL import Image

from restorect_jax import safe_files

SUFFIXES = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".webp": "WEBP",
}
_ORIENTATION_TAG = 0x0112
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageReadError(ValueError):
    """A file that is not a readable image (corrupt, truncated, empty or unsupported)."""


@dataclasses.dataclass
class LoadedImage:
    """An upright image split into what is restored and what is passed through.

    Attributes:
      pixels: float32 (H, W, C) in [0, 1], C = 1 (grey) or 3 (RGB).
      alpha: the alpha channel (H, W) as stored (uint8 or uint16), or None.
      bit_depth: 8 or 16.
      format: Pillow format name (PNG, JPEG, TIFF, BMP, WEBP).
      icc_profile: the embedded ICC profile, or None.
      exif: the EXIF block with the orientation reset to 1, or None.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    format: str
    icc_profile: bytes | None = None
    exif: bytes | None = None


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Applies EXIF orientation 1-8 to an (H, W, ...) array, as a viewer would show it."""
    transforms = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 1)[::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(transforms.get(orientation, transforms[1])(array))


def _split_channels(array: np.ndarray, has_alpha: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W[, C]) integer pixels as (colour (H, W, 1 or 3), alpha (H, W) or None)."""
    if array.ndim == 2:
        array = array[..., None]
    if has_alpha:
        return array[..., :-1], array[..., -1]
    return array, None


def _read_png16(path: pathlib.Path) -> tuple[np.ndarray, bool]:
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    planes = info["planes"]
    array = np.vstack([np.asarray(row, np.uint16) for row in rows])
    return array.reshape(height, width, planes), info["alpha"]


def _png_bit_depth(path: pathlib.Path) -> int | None:
    """The IHDR bit depth of a PNG file (byte 24), or None for other files."""
    with open(path, "rb") as file:
        header = file.read(26)
    if len(header) < 26 or not header.startswith(_PNG_SIGNATURE):
        return None
    return header[24]


def _read_tiff16(path: pathlib.Path) -> tuple[np.ndarray, bool] | None:
    """16-bit TIFF pixels (H, W[, C]) and whether the last channel is alpha; None for other
    depths. Planar-separate files (stored as C planes) come back channels-last too."""
    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages.first
        if page.bitspersample != 16:
            return None
        array = page.asarray()
        if array.ndim == 3 and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE:
            array = np.moveaxis(array, 0, -1)
        has_alpha = bool(page.extrasamples) or (array.ndim == 3 and array.shape[-1] in (2, 4))
    return array, has_alpha


def read_image(path: str | pathlib.Path) -> LoadedImage:
    """Reads an 8- or 16-bit grey/RGB image, with or without alpha, upright.

    Raises:
      ImageReadError: the file is empty, corrupt, truncated or of an unsupported kind; the
        message names the file.
    """
    path = pathlib.Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            file_format = image.format
            if getattr(image, "n_frames", 1) > 1:
                raise ImageReadError(
                    f"image {path}: has {image.n_frames} pages or frames; only single images "
                    "are restored (split it first)"
                )
            orientation = image.getexif().get(_ORIENTATION_TAG, 1)
            exif = image.getexif()
            if _ORIENTATION_TAG in exif:
                exif[_ORIENTATION_TAG] = 1
            exif_bytes = exif.tobytes() if len(exif) else None
            icc = image.info.get("icc_profile")
            pixels, alpha, depth = _decode(path, image, file_format)
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageReadError(f"cannot read image {path}: {err}") from err
    if file_format not in SUFFIXES.values():
        raise ImageReadError(f"cannot read image {path}: unsupported format {file_format}")
    pixels = orient(pixels, orientation)
    alpha = None if alpha is None else orient(alpha, orientation)
    scale = 255.0 if depth == 8 else 65535.0
    return LoadedImage(
        pixels=pixels.astype(np.float32) / np.float32(scale),
        alpha=alpha,
        bit_depth=depth,
        format=file_format,
        icc_profile=icc,
        exif=exif_bytes,
    )


def _decode(
    path: pathlib.Path, image: Image.Image, file_format: str
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Integer colour (H, W, C), alpha and bit depth of an opened (and loaded) image."""
    if file_format == "PNG" and _png_bit_depth(path) == 16:
        array, has_alpha = _read_png16(path)
        return (*_split_channels(array, has_alpha), 16)
    if file_format == "TIFF":
        tiff16 = _read_tiff16(path)
        if tiff16 is not None:
            return (*_split_channels(*tiff16), 16)
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image)
        if array.min() < 0 or array.max() > 65535:
            raise ImageReadError(f"image {path}: {mode} values outside 16 bits are not supported")
        return array.astype(np.uint16)[..., None], None, 16
    if mode == "F":
        raise ImageReadError(f"image {path}: floating-point images are not supported")
    keyed = "transparency" in image.info  # a tRNS colour key (or a palette's alpha)
    if mode in ("LA", "PA") or (mode in ("P", "RGB", "L") and keyed):
        # A colour key becomes an alpha channel, so the transparency is kept on writing.
        converted = image.convert("LA" if mode in ("LA", "L") else "RGBA")
    elif mode in ("RGBA", "RGBa"):
        converted = image.convert("RGBA")
    elif mode in ("L", "1"):
        converted = image.convert("L")
    else:
        converted = image.convert("RGB")
    array = np.asarray(converted)
    return (*_split_channels(array, converted.mode in ("LA", "RGBA")), 8)


def write_image(
    path: str | pathlib.Path,
    pixels: np.ndarray,
    like: LoadedImage,
    *,
    overwrite: bool = False,
    on_taken: safe_files.OnTaken = "number",
) -> pathlib.Path:
    """Writes float (H, W, C) pixels in [0, 1] as `like` was stored: depth, alpha, format, ICC.

    Values are clipped to [0, 1] and rounded to the bit depth. The file follows
    `safe_files.write_new`: written under a temporary name, never replacing an existing file
    unless `overwrite` (a taken name moves on to `<stem>_2<suffix>`, ... by default). Returns the
    path written.
    """
    scale, dtype = (255.0, np.uint8) if like.bit_depth == 8 else (65535.0, np.uint16)
    colour = np.round(np.clip(pixels, 0.0, 1.0) * scale).astype(dtype)
    array = colour if like.alpha is None else np.concatenate([colour, like.alpha[..., None]], -1)
    write = _write16 if like.bit_depth == 16 else _write8
    return safe_files.write_new(
        path,
        lambda temporary: write(temporary, array, like),
        overwrite=overwrite,
        on_taken=on_taken,
    )


def _write8(path: pathlib.Path, array: np.ndarray, like: LoadedImage) -> None:
    squeezed = array[..., 0] if array.shape[-1] == 1 else array
    options = {"icc_profile": like.icc_profile, "exif": like.exif}
    if like.format == "JPEG":
        options["quality"] = 95  # JPEG has no lossless mode.
    if like.format == "WEBP":
        # Lossless, and "exact": colours under transparent pixels are kept too.
        options.update(lossless=True, exact=True)
    options = {key: value for key, value in options.items() if value is not None}
    Image.fromarray(squeezed).save(path, format=like.format, **options)


def _write16(path: pathlib.Path, array: np.ndarray, like: LoadedImage) -> None:
    if like.format == "TIFF":
        photometric = "minisblack" if array.shape[-1] in (1, 2) else "rgb"
        extrasamples = ("unassalpha",) if like.alpha is not None else None
        tifffile.imwrite(path, array, photometric=photometric, extrasamples=extrasamples)
        return
    height, width, planes = array.shape
    greyscale, alpha = planes in (1, 2), like.alpha is not None
    writer = png.Writer(width, height, greyscale=greyscale, alpha=alpha, bitdepth=16)
    with open(path, "wb") as file:
        writer.write(file, array.reshape(height, width * planes))


# --- where outputs go ------------------------------------------------------------------------


@dataclasses.dataclass
class Job:
    """One input and where its restoration goes."""

    source: pathlib.Path
    target: pathlib.Path


def _free_name(wanted: pathlib.Path, taken: set[pathlib.Path], keep_existing: bool) -> pathlib.Path:
    """`wanted`, or `<stem>_2<suffix>`, `_3`, ...: the first name not in `taken` (nor on disk,
    with `keep_existing`)."""
    index = 1
    while True:
        candidate = safe_files.numbered(wanted, index)
        if candidate.resolve() not in taken and not (keep_existing and candidate.exists()):
            return candidate
        index += 1


def plan_outputs(files: list[pathlib.Path], output_dir: pathlib.Path, overwrite: bool) -> list[Job]:
    """Each input's output path under `output_dir`, unique, and never another input's file.

    An output keeps its input's name; a name already used by an earlier output, held by any
    input or (without `overwrite`) by a file in `output_dir` gets a `_2`, `_3`, ... suffix. With
    `overwrite` an output may replace its own input and other files. A name taken between
    planning and writing moves on at write time (`write_image`).
    """
    inputs = {source.resolve() for source in files}
    taken: set[pathlib.Path] = set()
    jobs = []
    for source in files:
        others = inputs - {source.resolve()} if overwrite else inputs
        target = _free_name(output_dir / source.name, taken | others, keep_existing=not overwrite)
        taken.add(target.resolve())
        jobs.append(Job(source, target))
    return jobs
