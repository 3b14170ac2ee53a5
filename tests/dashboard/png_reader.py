"""Reading back the PNGs that convstack.dashboard writes (8-bit, filter 0), without Pillow."""

import struct
import zlib

import numpy as np


def decode(content):
    """(width, height, colour type, pixels) of an 8-bit, unfiltered PNG, read chunk by chunk."""
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, []
    while position < len(content):
        (length,) = struct.unpack(">I", content[position : position + 4])
        kind, body = content[position + 4 : position + 8], content[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", content[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks.append((kind, body))
        position += 12 + length
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8
    channels = {0: 1, 2: 3}[colour]
    rows = np.frombuffer(zlib.decompress(chunks[1][1]), np.uint8).reshape(height, 1 + width * channels)
    assert (rows[:, 0] == 0).all()  # filter type 0 on every row
    return width, height, colour, rows[:, 1:].reshape(height, width, channels)


def pixels(path):
    """The pixels of a PNG file: (H, W) gray or (H, W, 3) RGB uint8."""
    _, _, colour, values = decode(path.read_bytes())
    return values[..., 0] if colour == 0 else values
