"""Named kernels: their defining properties, scipy's Gaussian filter, get_kernel specs and errors."""

import doctest
import math

import numpy as np
import pytest

from convstack.image import correlate, get_kernel, kernels

ndimage = pytest.importorskip("scipy.ndimage")


def test_every_kernel_is_float64_with_a_docstring():
    made = [
        kernels.identity(),
        kernels.shift(1, 2),
        kernels.box(3),
        kernels.gaussian(1.0),
        kernels.sharpen(),
        kernels.sobel_x(),
        kernels.sobel_y(),
        kernels.prewitt_x(),
        kernels.prewitt_y(),
        kernels.laplacian(),
        kernels.emboss(),
        kernels.gabor(0.3, 2.0, 5.0),
    ]
    assert all(k.dtype == np.float64 and k.ndim == 2 for k in made)
    for name in kernels.KERNEL_NAMES:
        assert getattr(kernels, name).__doc__


@pytest.mark.parametrize("sigma, size", [(0.5, 5), (1.0, 7), (2.0, 13), (1.3, 9), (1.0, 3)])
def test_gaussian_sums_to_one_and_matches_scipy(rng, sigma, size):
    kernel = kernels.gaussian(sigma, None if size != 3 else 3)
    assert kernel.shape == (size, size) and math.isclose(kernel.sum(), 1.0, rel_tol=1e-12)
    np.testing.assert_allclose(kernel, kernel.T)
    image = rng.random((20, 17))
    radius = size // 2
    expected = ndimage.gaussian_filter(image, sigma, mode="reflect", truncate=radius / sigma)
    np.testing.assert_allclose(correlate(image, kernel, boundary="reflect"), expected, atol=1e-12)


def test_sharpen_is_twice_identity_minus_box(rng):
    np.testing.assert_allclose(kernels.sharpen(), 2 * kernels.identity() - kernels.box(3))
    image = rng.random((9, 9))
    sharpened = correlate(image, kernels.sharpen())
    np.testing.assert_allclose(sharpened, 2 * image - correlate(image, kernels.box(3)), atol=1e-12)


@pytest.mark.parametrize("name", ["sobel_x", "prewitt_x"])
def test_x_derivatives_respond_only_at_a_vertical_step(name):
    image = np.zeros((8, 10))
    image[:, 5:] = 1.0  # dark | bright between columns 4 and 5
    response = correlate(image, getattr(kernels, name)(), boundary="replicate")
    assert (response[:, [4, 5]] > 0).all()
    np.testing.assert_array_equal(np.delete(response, [4, 5], axis=1), 0)
    transposed = correlate(image.T, getattr(kernels, name.replace("_x", "_y"))(), boundary="replicate")
    np.testing.assert_allclose(transposed, response.T)


def test_zero_sum_kernels_ignore_flat_regions():
    flat = np.full((6, 6), 7.0)
    for kernel in (
        kernels.sobel_x(),
        kernels.sobel_y(),
        kernels.laplacian(),
        kernels.emboss(),
        kernels.gabor(0.5, 1.5, 4.0, zero_mean=True),
    ):
        np.testing.assert_allclose(correlate(flat, kernel, boundary="replicate"), 0, atol=1e-12)


def test_laplacian_is_the_sum_of_second_differences(rng):
    image = rng.random((7, 8))
    second_x = correlate(image, [[1.0, -2.0, 1.0]])
    second_y = correlate(image, [[1.0], [-2.0], [1.0]])
    np.testing.assert_allclose(correlate(image, kernels.laplacian()), second_x + second_y, atol=1e-12)


def test_shift_kernel_layout():
    np.testing.assert_array_equal(kernels.shift(-1, 0), [[0, 0, 0], [0, 0, 1], [0, 0, 0]])  # the lecture's
    kernel = kernels.shift(2, -1)
    assert kernel.shape == (5, 5) and kernel.sum() == 1 and kernel[3, 0] == 1
    np.testing.assert_array_equal(kernels.shift(0, 0), kernels.identity())


def test_gabor_orientation_and_phase():
    vertical = kernels.gabor(0.0, 2.0, 6.0)
    np.testing.assert_allclose(vertical, vertical[::-1])  # theta 0: constant phase down a column
    assert vertical[6, 6] == 1.0
    np.testing.assert_allclose(kernels.gabor(math.pi / 2, 2.0, 6.0), vertical.T, atol=1e-12)
    odd = kernels.gabor(0.0, 2.0, 6.0, phase=math.pi / 2)
    np.testing.assert_allclose(odd, -odd[:, ::-1], atol=1e-12)
    assert kernels.gabor(0.0, 2.0, 6.0, gamma=0.5).shape == (25, 25)
    assert abs(kernels.gabor(0.4, 2.0, 6.0, zero_mean=True).sum()) < 1e-12


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("sharpen", kernels.sharpen()),
        ("box", kernels.box(3)),
        ("box:5", kernels.box(5)),
        ("gaussian:2", kernels.gaussian(2.0)),
        ("gaussian:1.5,5", kernels.gaussian(1.5, 5)),
        ("shift:1,0", kernels.shift(1, 0)),
        ("identity:5", kernels.identity(5)),
        ("sobel_y", kernels.sobel_y()),
        (" emboss ", kernels.emboss()),
        ("gabor:0.5,2,6", kernels.gabor(0.5, 2.0, 6.0)),
        ("gabor:0.5,2,6,1.57,0.5", kernels.gabor(0.5, 2.0, 6.0, 1.57, 0.5)),
    ],
)
def test_get_kernel(spec, expected):
    np.testing.assert_array_equal(get_kernel(spec), expected)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("blur", "unknown kernel 'blur' in 'blur': expected one of identity, shift, box, gaussian, sharpen,"),
        ("box:a", "kernel 'box:a': expected an integer for `n` (box[:n]), received 'a'"),
        ("box:2.5", "expected an integer for `n`"),
        ("box:3,3", "kernel 'box:3,3': expected box[:n], received 2 argument(s)"),
        ("shift:1", "kernel 'shift:1': expected shift:dx,dy, received 1 argument(s)"),
        ("gaussian", "expected gaussian:sigma[,size], received 0 argument(s)"),
        (
            "gaussian:-1",
            "gaussian: invalid value for argument `sigma`: expected a positive finite number, received -1.0",
        ),
        ("gaussian:1,4", "gaussian: invalid value for argument `size`: expected a positive odd integer"),
        ("gabor:0,2", "expected gabor:theta,sigma,wavelength[,phase][,gamma], received 2 argument(s)"),
        ("box:0", "box: invalid value for argument `n`: expected a positive integer, received 0"),
        ("identity:4", "identity: invalid value for argument `size`: expected a positive odd integer"),
    ],
)
def test_get_kernel_errors(spec, message):
    with pytest.raises(ValueError) as caught:
        get_kernel(spec)
    assert message in str(caught.value)


def test_kernel_argument_errors():
    with pytest.raises(ValueError, match="shift: invalid value for argument `dx`: expected an integer"):
        kernels.shift(0.5, 0)
    with pytest.raises(ValueError, match="gabor: invalid value for argument `theta`: expected a finite number"):
        kernels.gabor(float("nan"), 1.0, 2.0)
    with pytest.raises(ValueError, match="gabor: invalid value for argument `wavelength`"):
        kernels.gabor(0.0, 1.0, 0.0)


def test_docstring_examples_run():
    result = doctest.testmod(kernels, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
