"""correlate / convolve: scipy.ndimage and scipy.signal parity, the lecture's examples, dtypes, gradients, errors."""

import doctest

import numpy as np
import pytest
from tests.helpers import check_gradients

import convstack as cs
from convstack.image import convolve, correlate, filtering, kernels

ndimage = pytest.importorskip("scipy.ndimage")
signal = pytest.importorskip("scipy.signal")

SCIPY_MODES = {"zero": "constant", "reflect": "reflect", "mirror": "mirror", "replicate": "nearest", "wrap": "wrap"}

# The lecture's 10x10 image: a 5x5 block of 90s (rows 2-6, columns 3-7) with a 0 at (5, 4), a lone 90 at (8, 2).
LECTURE_IMAGE = np.zeros((10, 10))
LECTURE_IMAGE[2:7, 3:8] = 90
LECTURE_IMAGE[5, 4] = 0
LECTURE_IMAGE[8, 2] = 90


def scipy_same(fn, image, kernel, boundary, channels_last):
    """scipy.ndimage's result, one channel at a time when the image has a trailing channel axis."""
    mode = SCIPY_MODES[boundary]
    if channels_last:
        return np.stack([fn(image[..., c], kernel, mode=mode) for c in range(image.shape[-1])], axis=-1)
    return fn(image, kernel, mode=mode)


@pytest.mark.parametrize("boundary", filtering.BOUNDARIES)
@pytest.mark.parametrize(
    "image_shape, kernel_shape",
    [
        ((17,), (3,)),
        ((16,), (4,)),  # even kernel: centre k // 2, as scipy.ndimage
        ((5,), (9,)),  # kernel longer than the signal: periodic extensions
        ((9, 11), (3, 3)),
        ((8, 7), (4, 2)),
        ((6, 5), (9, 13)),  # larger than the image: the gather path, not F.pad
        ((9, 11, 3), (3, 5)),  # RGB, channels last: depthwise
        ((7, 6, 2), (2, 4)),
        ((5, 6, 7), (3, 2, 3)),  # a volume
    ],
)
def test_same_matches_scipy_ndimage(rng, boundary, image_shape, kernel_shape):
    image, kernel = rng.standard_normal(image_shape), rng.standard_normal(kernel_shape)
    channels_last = len(image_shape) == len(kernel_shape) + 1
    for ours, theirs in ((correlate, ndimage.correlate), (convolve, ndimage.convolve)):
        expected = scipy_same(theirs, image, kernel, boundary, channels_last)
        result = ours(image, kernel, mode="same", boundary=boundary)
        assert result.shape == image.shape and result.dtype == np.float64
        np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-10)


# 'same' only with odd kernels: scipy.signal centres even ones differently in correlate2d and convolve2d
@pytest.mark.parametrize(
    "mode, kernel_shape",
    [(m, k) for m in ("full", "valid") for k in ((3, 3), (3, 5), (4, 2), (1, 6))]
    + [("same", (3, 3)), ("same", (5, 1))],
)
def test_zero_boundary_matches_scipy_signal(rng, mode, kernel_shape):
    image, kernel = rng.standard_normal((9, 11)), rng.standard_normal(kernel_shape)
    np.testing.assert_allclose(correlate(image, kernel, mode), signal.correlate2d(image, kernel, mode), atol=1e-12)
    np.testing.assert_allclose(convolve(image, kernel, mode), signal.convolve2d(image, kernel, mode), atol=1e-12)


@pytest.mark.parametrize("mode", ["full", "valid"])
@pytest.mark.parametrize("boundary, scipy_boundary", [("wrap", "wrap"), ("reflect", "symm")])
def test_full_with_boundaries_matches_scipy_signal(rng, mode, boundary, scipy_boundary):
    image, kernel = rng.standard_normal((7, 8)), rng.standard_normal((3, 5))
    expected = signal.correlate2d(image, kernel, mode, boundary=scipy_boundary)
    np.testing.assert_allclose(correlate(image, kernel, mode, boundary), expected, atol=1e-12)


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_one_d_and_channels_match_numpy(rng, mode):
    signal_1d, kernel = rng.standard_normal(13), rng.standard_normal(3)
    np.testing.assert_allclose(correlate(signal_1d, kernel, mode), np.correlate(signal_1d, kernel, mode), atol=1e-12)
    np.testing.assert_allclose(convolve(signal_1d, kernel, mode), np.convolve(signal_1d, kernel, mode), atol=1e-12)
    rgb, kernel_2d = rng.standard_normal((6, 7, 3)), rng.standard_normal((3, 3))
    per_channel = np.stack([signal.correlate2d(rgb[..., c], kernel_2d, mode) for c in range(3)], axis=-1)
    np.testing.assert_allclose(correlate(rgb, kernel_2d, mode), per_channel, atol=1e-12)


def test_lecture_box_filter_first_valid_row():
    """The slide's h[m, n] = sum g[k, l] f[m + k, n + l]: the first 'valid' row starts 0 10 20 30 30."""
    result = correlate(LECTURE_IMAGE, kernels.box(3), mode="valid")
    assert result.shape == (8, 8)
    np.testing.assert_allclose(result[0], [0, 10, 20, 30, 30, 30, 20, 10], atol=1e-12)
    np.testing.assert_allclose(result[1, :5], [0, 20, 40, 60, 60], atol=1e-12)  # the slide's next row, partly
    np.testing.assert_allclose(result, ndimage.uniform_filter(LECTURE_IMAGE, 3, mode="constant")[1:-1, 1:-1])


def test_lecture_one_d_box_example():
    # The slide prints h = 20 40 40 30 20 30 23.333; its fifth value is a slip: (10 + 20 + 40) / 3 = 23.333.
    f = np.array([10.0, 50, 60, 10, 20, 40, 30])
    np.testing.assert_allclose(convolve(f, np.full(3, 1 / 3)), [20, 40, 40, 30, 70 / 3, 30, 70 / 3])


def test_identity_returns_the_image(rng):
    image = rng.random((8, 9, 3))
    for size in (1, 3, 5):
        np.testing.assert_array_equal(correlate(image, kernels.identity(size), boundary="reflect"), image)
        np.testing.assert_array_equal(convolve(image, kernels.identity(size)), image)


def test_shift_moves_content_with_zero_fill(rng):
    image = rng.random((6, 7)) + 1
    right = correlate(image, kernels.shift(1, 0))
    np.testing.assert_array_equal(right[:, 1:], image[:, :-1])
    np.testing.assert_array_equal(right[:, 0], 0)
    down_left = correlate(image, kernels.shift(-2, 1))
    np.testing.assert_array_equal(down_left[1:, :-2], image[:-1, 2:])
    assert not down_left[0].any() and not down_left[:, -2:].any()
    # the lecture's kernel (a 1 right of the centre) shifts the image left
    left = correlate(image, [[0, 0, 0], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(left[:, :-1], image[:, 1:])


def test_convolve_flips_the_kernel(rng):
    image, kernel = rng.standard_normal((7, 7)), rng.standard_normal((3, 3))
    np.testing.assert_allclose(convolve(image, kernel), correlate(image, kernel[::-1, ::-1]), atol=1e-12)
    assert not np.allclose(convolve(image, kernel), correlate(image, kernel))


def test_dtypes_and_kinds(rng):
    photo = rng.integers(0, 256, (6, 5, 3)).astype(np.uint8)
    out = correlate(photo, kernels.identity())
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_array_equal(out, photo)  # values kept in 0..255, not rescaled
    assert correlate(photo.astype(np.float32), kernels.box(3)).dtype == np.float32
    assert correlate([1, 2, 3, 4], [1, 1]).dtype == np.float64  # lists work, integers become float64
    tensor_out = correlate(cs.tensor(photo.astype(np.float32)), kernels.box(3))
    assert isinstance(tensor_out, cs.Tensor) and tensor_out.dtype == np.float32


@pytest.mark.parametrize("boundary", ["zero", "reflect", "mirror", "replicate", "wrap"])
@pytest.mark.parametrize("fn", [correlate, convolve])
def test_gradients_reach_image_and_kernel(rng, boundary, fn):
    image, kernel = rng.standard_normal((4, 5, 2)), rng.standard_normal((3, 2))
    check_gradients(lambda x, w: fn(x, w, "full", boundary), [image, kernel])


def test_bands_equal_one_pass(rng, monkeypatch):
    image, kernel = rng.standard_normal((23, 9, 3)), rng.standard_normal((5, 4))
    whole = correlate(image, kernel, boundary="reflect")
    monkeypatch.setattr(filtering, "BAND_BYTES", 1)  # one output row per band
    calls = []
    conv2d = filtering._CONVS[2]
    monkeypatch.setitem(filtering._CONVS, 2, lambda *args, **kwargs: calls.append(1) or conv2d(*args, **kwargs))
    np.testing.assert_allclose(correlate(image, kernel, boundary="reflect"), whole, rtol=1e-13, atol=1e-13)
    assert len(calls) == 23


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(mode="circular"),
            "correlate: invalid value for argument `mode`: expected 'same', 'full' or 'valid', received 'circular'",
        ),
        (
            dict(boundary="symmetric"),
            "invalid value for argument `boundary`: expected 'zero', 'reflect', 'mirror', "
            "'replicate' or 'wrap', received 'symmetric'",
        ),
        (dict(kernel=np.ones((2, 2, 2, 2))), "expected a 1-D, 2-D or 3-D kernel, received 'a 4-D kernel'"),
        (
            dict(image=np.ones((2, 3, 4, 5))),
            "expected a 2-D image, or 3-D with channels last, for a 2-D kernel, "
            "received 'a 4-D image' (image shape (2, 3, 4, 5), kernel shape (3, 3))",
        ),
        (dict(mode="valid", kernel=np.ones((5, 5))), "expected a kernel no larger than the image in mode 'valid'"),
        (
            dict(kernel=np.ones((0, 3))),
            "invalid value for argument `kernel`: expected a non-empty kernel, received 'shape (0, 3)'",
        ),
    ],
)
def test_errors(kwargs, message):
    arguments = dict(image=np.ones((4, 4)), kernel=np.ones((3, 3)))
    arguments.update(kwargs)
    with pytest.raises(ValueError) as caught:
        correlate(**arguments)
    assert message in str(caught.value)


def test_docstring_examples_run():
    result = doctest.testmod(filtering, extraglobs={"numpy": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
