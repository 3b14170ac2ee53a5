"""The PNG encoder: files that decode (by hand and with Pillow) to the pixels written."""

import numpy as np
import pytest
from tests.dashboard.png_reader import decode

from convstack.dashboard import encode_png


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (5, 7, 3), (4, 6, 1)])
def test_pixels_round_trip(shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    width, height, colour, pixels = decode(encode_png(image))
    assert (width, height) == (shape[1], shape[0])
    assert colour == (2 if len(shape) == 3 and shape[2] == 3 else 0)
    assert np.array_equal(pixels.reshape(image.shape), image)


def test_pillow_reads_it(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    image = np.random.default_rng(1).integers(0, 256, (9, 4, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    path.write_bytes(encode_png(image))
    with pil.open(path) as decoded:
        assert decoded.mode == "RGB" and np.array_equal(np.asarray(decoded), image)


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((4, 4), np.float32), "dtype float32 and shape (4, 4)"),
        (np.zeros((4, 4, 2), np.uint8), "dtype uint8 and shape (4, 4, 2)"),
        (np.zeros((4,), np.uint8), "shape (4,)"),
        (np.zeros((0, 4), np.uint8), "at least 1x1 pixels, received shape (0, 4)"),
    ],
)
def test_bad_images_are_refused_by_name(image, message):
    with pytest.raises(ValueError, match=r"encode_png: expected") as error:
        encode_png(image)
    assert message in str(error.value)
