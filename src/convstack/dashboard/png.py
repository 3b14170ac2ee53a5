"""A minimal PNG encoder (zlib from the standard library), so the live page needs no Pillow.

PNG (ISO/IEC 15948): an 8-byte signature, then chunks of (length, type, data, CRC-32);
IHDR gives the size and colour type, IDAT the zlib-compressed scanlines (each row
prefixed by its filter byte, 0 = none), IEND closes the file.
"""

from __future__ import annotations

import struct
import zlib

import numpy

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {1: 0, 3: 2}  # channels -> PNG colour type: 0 gray, 2 RGB


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image) -> bytes:
    """The PNG file of a uint8 image (H, W) gray or (H, W, 3) RGB.

    Examples:
        >>> encode_png(numpy.zeros((2, 3), numpy.uint8))[:8]
        b'\\x89PNG\\r\\n\\x1a\\n'
    """
    image = numpy.asarray(image)
    if image.dtype != numpy.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(
            f"encode_png: expected a uint8 image (H, W) or (H, W, 1|3), received dtype {image.dtype} "
            f"and shape {image.shape}"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"encode_png: expected an image of at least 1x1 pixels, received shape {image.shape}")
    channels = 1 if image.ndim == 2 else image.shape[2]
    height, width = image.shape[:2]
    rows = numpy.ascontiguousarray(image).reshape(height, width * channels)  # (H, W*C) scanlines
    raw = numpy.concatenate([numpy.zeros((height, 1), numpy.uint8), rows], axis=1)  # filter byte 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    return b"".join(
        (
            _SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)),
            _chunk(b"IEND", b""),
        )
    )
