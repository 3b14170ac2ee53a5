"""Read and write PNG/JPEG images through Pillow, and map filter outputs to displayable uint8.

Pillow is imported only when a file is read or written.
"""

from __future__ import annotations

import os

import numpy

from convstack.atomic import atomic_write
from convstack.image.decode import MAX_PIXELS, decode, pillow  # noqa: F401 - MAX_PIXELS: this module's limit
from convstack.nn.functional._utils import invalid

SCALES = ("clip", "abs", "offset")


def read_image(path, background: int = 0) -> numpy.ndarray:
    """Decode ``path`` to uint8: (H, W) for a gray image, (H, W, 3) for anything else.

    Every mode Pillow reads is scaled to 8 bits (16-bit, 32-bit integer and float images
    included) and transparent pixels are composited over ``background``; see
    ``convstack.image.decode`` for the rules.

    Raises:
        FileNotFoundError: when ``path`` is not a file.
        ValueError: naming ``path`` when Pillow cannot decode it, it exceeds ``MAX_PIXELS``, or
            its mode or values have no faithful 8-bit conversion.
    """
    return decode(path, None, background)


def write_image(path, image) -> None:
    """Encode a uint8 (H, W), (H, W, 1) or (H, W, 3) array to ``path``; the extension picks the format.

    Raises:
        ValueError: for another dtype or shape, or an extension Pillow does not know.
        OSError: when the file cannot be written.
    """
    Image = pillow()
    array = numpy.asarray(image)
    if array.dtype != numpy.uint8:
        raise invalid("write_image", "image", "a uint8 array (see to_uint8)", f"dtype {array.dtype}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)) or min(array.shape) < 1:
        raise invalid("write_image", "image", "a non-empty (H, W) or (H, W, 3) array", f"shape {array.shape}")
    picture = Image.fromarray(numpy.ascontiguousarray(array))  # uint8 (H, W) -> L, (H, W, 3) -> RGB
    image_format = Image.registered_extensions().get(os.path.splitext(os.fspath(path))[1].lower())
    if image_format is None:
        raise ValueError(f"{path}: cannot write image (unknown file extension); use a .png or .jpg name")
    atomic_write(path, lambda stream: picture.save(stream, format=image_format))


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
