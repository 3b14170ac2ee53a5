"""read_image / write_image through Pillow, and to_uint8's display mappings."""

import doctest

import numpy as np
import pytest

from convstack.image import io

Image = pytest.importorskip("PIL.Image")


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3)])
def test_png_round_trip(tmp_path, rng, shape):
    image = rng.integers(0, 256, shape).astype(np.uint8)
    path = tmp_path / "picture.png"
    io.write_image(path, image)
    np.testing.assert_array_equal(io.read_image(path), image)


def test_read_converts_palette_and_alpha(tmp_path):
    """Transparent pixels are composited over black: value * alpha / 255 (more modes: test_image_modes.py)."""
    Image.new("RGBA", (4, 3), (10, 20, 30, 40)).save(tmp_path / "alpha.png")
    Image.new("LA", (4, 3), (50, 60)).save(tmp_path / "gray_alpha.png")
    assert io.read_image(tmp_path / "alpha.png").shape == (3, 4, 3)
    np.testing.assert_array_equal(io.read_image(tmp_path / "gray_alpha.png"), np.full((3, 4), 12))  # 50 * 60 / 255


def test_jpeg_and_single_channel(tmp_path, rng):
    image = np.full((8, 8, 1), 100, dtype=np.uint8)
    io.write_image(tmp_path / "gray.jpg", image)
    read = io.read_image(tmp_path / "gray.jpg")
    assert read.shape == (8, 8) and abs(int(read.mean()) - 100) <= 2


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such image file"):
        io.read_image(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="junk.png: cannot decode image"):
        io.read_image(tmp_path / "junk.png")
    with pytest.raises(ValueError, match="expected a uint8 array .see to_uint8., received 'dtype float64'"):
        io.write_image(tmp_path / "out.png", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="expected a non-empty .H, W. or .H, W, 3. array, received 'shape .2, 2, 4.'"):
        io.write_image(tmp_path / "out.png", np.zeros((2, 2, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="out.xyz: cannot write image"):
        io.write_image(tmp_path / "out.xyz", np.zeros((2, 2), dtype=np.uint8))


def test_to_uint8_scales():
    values = np.array([-300.0, -10.0, 0.0, 100.4, 400.0])
    np.testing.assert_array_equal(io.to_uint8(values, "clip"), [0, 0, 0, 100, 255])
    np.testing.assert_array_equal(io.to_uint8(values, "abs"), [191, 6, 0, 64, 255])
    np.testing.assert_array_equal(io.to_uint8(values, "offset"), [0, 118, 128, 228, 255])
    np.testing.assert_array_equal(io.to_uint8(np.zeros(3), "abs"), [0, 0, 0])
    with pytest.raises(ValueError, match="to_uint8: invalid value for argument `scale`"):
        io.to_uint8(values, "log")


def test_docstring_examples_run():
    result = doctest.testmod(io, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
