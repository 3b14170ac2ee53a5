"""Decode an image file to 8-bit pixels, whatever mode Pillow reads it in, with the right scaling.

Pillow's own ``convert("L")`` clips instead of scaling: a 16-bit PNG (mode ``I;16``) or a
32-bit integer TIFF comes out black and white, a float image in [0, 1] comes out black.
Here every mode is converted by a rule registered for it:

========================  ==================================================================
mode                      conversion
========================  ==================================================================
1, L, RGB, RGBX           as they are (1: 0 or 255)
P (palette)               through its palette; with transparency, as RGBA below
LA, La, PA, RGBA, RGBa    composited over ``background`` (default black, the value an
                          image padded with zeros shows): ``value * alpha + background *
                          (1 - alpha)``; premultiplied modes un-premultiplied first
CMYK, YCbCr, HSV          converted to RGB by Pillow
I;16, I;16L, I;16B,       16-bit unsigned: ``round(value * 255 / 65535)``
I;16N
I (32-bit integer)        full scale of the file's own bit depth to 255: 16 bits for PNG
                          and Netpbm (their only use of I), a TIFF's BitsPerSample (its
                          positive range for signed samples); negative values, or a
                          depth the file does not state, are refused
F (32-bit float)          values in [0, 1] (the convention for float images) times 255;
                          NaN, infinities or values outside [0, 1] are refused, saying
                          the range found
LAB and anything else     refused, naming the mode
========================  ==================================================================

A JPEG's EXIF orientation is applied (a phone's portrait photo stays upright). Sizes are
checked before decoding (``MAX_PIXELS``, and Pillow's decompression-bomb check as an error).
Pillow is imported only when a file is read.
"""

from __future__ import annotations

import errno
import os
import warnings

import numpy

from convstack.data.errors import DataFormatError

MAX_PIXELS = 1 << 26  # 64 megapixels: larger files are refused before they are decoded
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
_DIRECT_GRAY = ("1", "L")
_DIRECT_COLOUR = ("RGB", "RGBX", "CMYK", "YCbCr", "HSV")
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


class ImageDecodeError(DataFormatError):
    """An image file that cannot be decoded or converted; the message starts with the file (``path``, ``reason``)."""


def pillow():
    """The ``PIL.Image`` module (a core dependency of convstack)."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            "reading and writing image files needs Pillow, a dependency of convstack that is missing here: "
            "pip install pillow"
        ) from None
    return Image


def decode(path, mode: str | None = None, background: int = 0) -> numpy.ndarray:
    """Decode ``path`` to uint8 pixels.

    Args:
        path: the image file.
        mode: ``'L'`` for (H, W) gray, ``'RGB'`` for (H, W, 3), or None to keep gray images
            gray and make anything else RGB.
        background: the gray level (0-255) that transparent pixels are composited over.

    Returns:
        uint8 (H, W) or (H, W, 3).

    Raises:
        FileNotFoundError: when ``path`` is not a file.
        ImageDecodeError: naming ``path``: not an image Pillow reads, too large, or a mode
            or value range that has no faithful 8-bit conversion.
    """
    if mode not in (None, "L", "RGB"):
        raise ValueError(f"read_image: invalid value for argument `mode`: expected 'L', 'RGB' or None, "
                         f"received {mode!r}")
    if isinstance(background, bool) or not isinstance(background, (int, numpy.integer)) or not 0 <= background <= 255:
        raise ValueError(f"read_image: invalid value for argument `background`: expected an integer in 0..255, "
                         f"received {background!r}")
    Image = pillow()
    if not os.path.isfile(path):
        raise FileNotFoundError(errno.ENOENT, "no such image file", os.fspath(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data": decoded or refused below
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ImageDecodeError(path, f"image of {width}x{height} pixels exceeds the "
                                           f"{MAX_PIXELS}-pixel limit")
                gray, colour = _convert(_upright(image), image, path, background)
    except ImageDecodeError:
        raise
    except Exception as error:  # noqa: BLE001 - Pillow's decoders raise OSError, SyntaxError, struct.error,
        # IndexError, ZeroDivisionError ... on malformed files: all mean this file cannot be decoded
        raise ImageDecodeError(path, f"cannot decode image ({type(error).__name__}: {error})") from None
    if mode == "RGB" or (mode is None and gray is None):
        if colour is None:
            colour = numpy.repeat(gray[..., None], 3, axis=-1)
        return numpy.ascontiguousarray(colour)
    if gray is None:
        gray = _luma(colour)
    return numpy.ascontiguousarray(gray)


def _upright(image):
    """Apply a JPEG/TIFF EXIF orientation tag (Pillow leaves it to the caller)."""
    from PIL import ImageOps

    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a malformed EXIF block: the pixels themselves are still good
        return image
    return ImageOps.exif_transpose(image) if orientation not in (None, 1) else image


def _luma(rgb: numpy.ndarray) -> numpy.ndarray:
    """ITU-R 601-2 luma, as Pillow's ``convert("L")``: L = R * 299/1000 + G * 587/1000 + B * 114/1000."""
    weights = numpy.array([299, 587, 114], dtype=numpy.uint32)
    return ((rgb.astype(numpy.uint32) @ weights + 500) // 1000).astype(numpy.uint8)


def _convert(image, opened, path, background: int):
    """(gray, colour) of ``image`` (``opened`` upright): one a uint8 array, the other None.

    ``opened`` is the image as the file was opened: its format, TIFF tags and palette
    transparency, which a transposed copy does not carry.
    """
    converter = CONVERTERS.get(image.mode)
    if converter is None:
        raise ImageDecodeError(path, f"images of mode {image.mode} are not supported (convert it to RGB or "
                               "gray first)")
    return converter(image, opened, path, background)


def _gray(image, opened, path, background):
    return numpy.asarray(image.convert("L")), None


def _colour(image, opened, path, background):
    return None, numpy.asarray(image.convert("RGB"))


def _palette(image, opened, path, background):
    if "transparency" in image.info:  # a transposed copy keeps the info
        return _alpha(image.convert("RGBA"), opened, path, background)
    return None, numpy.asarray(image.convert("RGB"))


def _alpha(image, opened, path, background):
    gray = image.mode in ("LA", "La")
    rgba = numpy.asarray(image.convert("LA" if gray else "RGBA"), dtype=numpy.uint32)  # un-premultiplies La, RGBa
    values, alpha = rgba[..., :-1], rgba[..., -1:]
    composite = ((values * alpha + background * (255 - alpha) + 127) // 255).astype(numpy.uint8)
    return (composite[..., 0], None) if gray else (None, composite)


def _sixteen_bit(image, opened, path, background):
    return _scale_integers(numpy.asarray(image), 16, False, path), None


def _thirty_two_bit(image, opened, path, background):
    values = numpy.asarray(image)
    depth = _integer_depth(opened)
    if depth is None:
        raise ImageDecodeError(path, f"a 32-bit integer image ({opened.format}) that does not state its bit "
                               "depth; save it as an 8- or 16-bit image")
    return _scale_integers(values, *depth, path), None


def _integer_depth(image):
    """(bits, signed) of an ``I`` image's samples, from the file; None where it does not say."""
    if image.format in ("PNG", "PPM"):  # Pillow uses I for their 16-bit images (Netpbm scaled to 16 bits)
        return 16, False
    tags = getattr(image, "tag_v2", None)
    if tags is None or 258 not in tags:  # TIFF BitsPerSample
        return None
    bits, sample_format = tags[258], tags.get(339, 1)  # SampleFormat: 1 unsigned, 2 signed
    bits = int(bits[0] if isinstance(bits, tuple) else bits)
    sample_format = sample_format[0] if isinstance(sample_format, tuple) else sample_format
    return (bits, sample_format == 2) if bits in (8, 16, 32) else None


def _scale_integers(values: numpy.ndarray, bits: int, signed: bool, path) -> numpy.ndarray:
    """Full scale (2**bits - 1, or 2**(bits - 1) - 1 for signed samples) to 255, rounded."""
    low, high = int(values.min(initial=0)), int(values.max(initial=0))
    if low < 0:
        raise ImageDecodeError(path, f"a signed integer image with negative values ({low}..{high}); "
                               "convstack reads images whose black is 0")
    top = (1 << (bits - 1 if signed else bits)) - 1
    if high > top:
        raise ImageDecodeError(path, f"values up to {high} in a {bits}-bit image")
    scaled = (values.astype(numpy.uint64) * 255 + top // 2) // top  # round(value * 255 / top), exactly
    return scaled.astype(numpy.uint8)


def _float(image, opened, path, background):
    values = numpy.asarray(image, dtype=numpy.float64)
    if not numpy.isfinite(values).all():
        raise ImageDecodeError(path, "a floating-point image with NaN or infinite values")
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if low < 0.0 or high > 1.0:
        raise ImageDecodeError(path, f"a floating-point image with values in [{low:g}, {high:g}]; convstack "
                               "reads float images in [0, 1] (rescale it, or save it as an 8- or 16-bit image)")
    return numpy.rint(values * 255.0).astype(numpy.uint8), None


# Pillow mode -> conversion to (gray, colour). A mode not listed is refused, naming it.
CONVERTERS = {
    **{mode: _gray for mode in _DIRECT_GRAY},
    **{mode: _colour for mode in _DIRECT_COLOUR},
    **{mode: _alpha for mode in _ALPHA_MODES},
    **{mode: _sixteen_bit for mode in _SIXTEEN_BIT},
    "P": _palette,
    "I": _thirty_two_bit,
    "F": _float,
}
