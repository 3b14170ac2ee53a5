"""Read and write PNG/JPEG images through Pillow, and map filter outputs to displayable uint8.

Pillow is an optional dependency (``pip install 'convstack[image]'``), imported only when
a file is read or written, with an ``ImportError`` that says how to install it.
"""

from __future__ import annotations

import errno
import os
import warnings

import numpy

from convstack.nn.functional._utils import invalid

MAX_PIXELS = 1 << 26  # 64 megapixels: larger files are refused before they are decoded
SCALES = ("clip", "abs", "offset")


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            "reading and writing image files needs Pillow, an optional dependency of convstack: "
            "pip install 'convstack[image]' (or pip install pillow)"
        ) from None
    return Image


def read_image(path) -> numpy.ndarray:
    """Decode ``path`` to uint8: (H, W) for a gray image, (H, W, 3) for anything else (alpha dropped).

    Raises:
        FileNotFoundError: when ``path`` is not a file.
        ValueError: naming ``path`` when Pillow cannot decode it or it exceeds ``MAX_PIXELS``.
    """
    Image = _pillow()
    if not os.path.isfile(path):
        raise FileNotFoundError(errno.ENOENT, "no such image file", os.fspath(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ValueError(f"{path}: image of {width}x{height} pixels exceeds the {MAX_PIXELS}-pixel limit")
                gray = image.mode in ("1", "L", "LA", "I", "I;16", "F")
                return numpy.asarray(image.convert("L" if gray else "RGB"))
    except (OSError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValueError(f"{path}: cannot decode image ({type(error).__name__}: {error})") from None


def write_image(path, image) -> None:
    """Encode a uint8 (H, W), (H, W, 1) or (H, W, 3) array to ``path``; the extension picks the format.

    Raises:
        ValueError: for another dtype or shape, or an extension Pillow does not know.
        OSError: when the file cannot be written.
    """
    Image = _pillow()
    array = numpy.asarray(image)
    if array.dtype != numpy.uint8:
        raise invalid("write_image", "image", "a uint8 array (see to_uint8)", f"dtype {array.dtype}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)) or min(array.shape) < 1:
        raise invalid("write_image", "image", "a non-empty (H, W) or (H, W, 3) array", f"shape {array.shape}")
    picture = Image.fromarray(numpy.ascontiguousarray(array))  # uint8 (H, W) -> L, (H, W, 3) -> RGB
    try:
        picture.save(path)
    except ValueError as error:  # Pillow: "unknown file extension"
        raise ValueError(f"{path}: cannot write image ({error}); use a .png or .jpg name") from None


def to_uint8(image, scale: str = "clip") -> numpy.ndarray:
    """Map a filter's float output (in 0..255 units) to uint8 for display.

    Args:
        scale: ``'clip'`` rounds and clips to 0..255 (blur, sharpen, shifts: outputs in
            the input's range, sharpen overshooting a little); ``'abs'`` takes the absolute
            value and scales the largest to 255 (signed edge responses: Sobel, Prewitt,
            Laplacian, Gabor; a flat image gives black); ``'offset'`` adds 128 then clips,
            so that zero is mid-grey (emboss).

    Examples:
        >>> to_uint8(numpy.array([-20.0, 0.0, 10.0]), "abs")
        array([255,   0, 128], dtype=uint8)
    """
    values = numpy.asarray(image, dtype=numpy.float64)
    if scale == "clip":
        pass
    elif scale == "abs":
        values = numpy.abs(values)
        peak = values.max(initial=0.0)
        values = values * (255.0 / peak) if peak > 0 else values
    elif scale == "offset":
        values = values + 128.0
    else:
        raise invalid("to_uint8", "scale", "'clip', 'abs' or 'offset'", scale)
    return numpy.rint(numpy.clip(values, 0.0, 255.0)).astype(numpy.uint8)
