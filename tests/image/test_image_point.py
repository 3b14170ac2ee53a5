"""Point operations on uint8 (0..255) and float (0..1) images: values, clipping, dtype and kind kept."""

import doctest

import numpy as np
import pytest

import convstack as cs
from convstack.image import point

U8 = np.array([[0, 64, 128], [200, 250, 255]], dtype=np.uint8)


def test_invert():
    np.testing.assert_array_equal(point.invert(U8), 255 - U8)
    floats = U8.astype(np.float32) / 255
    out = point.invert(floats)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 1 - floats)


def test_brightness_clips():
    np.testing.assert_array_equal(point.brightness(U8, 128), [[128, 192, 255], [255, 255, 255]])
    np.testing.assert_array_equal(point.brightness(U8, -128), [[0, 0, 0], [72, 122, 127]])
    np.testing.assert_allclose(point.brightness(np.array([0.2, 0.9]), 0.25), [0.45, 1.0])


def test_contrast_pivots():
    # around 127.5: 127.5 + 2 * 0.5 = 128.5 rounds half to even, to 128
    np.testing.assert_array_equal(point.contrast(U8, 2.0), [[0, 0, 128], [255, 255, 255]])
    np.testing.assert_array_equal(point.contrast(U8, 2.0, pivot=0), [[0, 128, 255], [255, 255, 255]])  # x * 2
    np.testing.assert_array_equal(point.contrast(U8, 0.0), np.full_like(U8, 128))  # rint(127.5) = 128
    floats = np.array([0.3, 0.4, 0.5])
    out = point.contrast(floats, 3.0, pivot="mean")
    np.testing.assert_allclose(out, [0.1, 0.4, 0.7])
    assert np.isclose(out.mean(), floats.mean())  # the mean pivot keeps the average brightness


def test_gamma_matches_the_lecture_formulas():
    expected_cube_root = np.rint((U8 / 255.0) ** (1 / 3) * 255).astype(np.uint8)
    np.testing.assert_array_equal(point.gamma(U8, 1 / 3), expected_cube_root)
    np.testing.assert_array_equal(point.gamma(U8, 2), np.rint((U8 / 255.0) ** 2 * 255).astype(np.uint8))
    np.testing.assert_allclose(point.gamma(np.array([-0.1, 0.25, 1.2]), 0.5), [0.0, 0.5, 1.0])


def test_threshold():
    np.testing.assert_array_equal(point.threshold(U8, 128), [[0, 0, 255], [255, 255, 255]])
    np.testing.assert_array_equal(point.threshold(np.array([0.2, 0.5, 0.7]), 0.5), [0.0, 1.0, 1.0])


def test_colour_images_and_tensors_keep_shape_and_kind():
    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3)).astype(np.uint8)
    assert point.invert(rgb).shape == (4, 5, 3)
    out = point.brightness(cs.tensor(rgb), 10)
    assert isinstance(out, cs.Tensor) and out.dtype == np.uint8
    np.testing.assert_array_equal(out.numpy(), np.minimum(rgb.astype(int) + 10, 255))


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: point.invert(np.array([1, 2], dtype=np.int32)),
            "invert: invalid value for argument `image`: expected a uint8 image (0..255) or a float image (0..1), "
            "received 'dtype int32'",
        ),
        (lambda: point.brightness(U8, float("nan")), "brightness: invalid value for argument `delta`"),
        (lambda: point.contrast(U8, -1.0), "contrast: invalid value for argument `factor`: expected a number >= 0"),
        (lambda: point.contrast(U8, 2.0, pivot="median"), "expected 'mid', 'mean' or a number, received 'median'"),
        (lambda: point.gamma(U8, 0), "gamma: invalid value for argument `g`: expected a positive number, received 0.0"),
        (lambda: point.threshold(U8, "128"), "threshold: invalid value for argument `t`: expected a finite number"),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError) as caught:
        call()
    assert message in str(caught.value)


def test_docstring_examples_run():
    result = doctest.testmod(point, extraglobs={"numpy": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
