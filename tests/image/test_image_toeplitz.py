"""to_matrix: M @ x.ravel() == correlate(x).ravel() in 1-D, 2-D, 3-D, all modes and boundaries; Toeplitz structure."""

import doctest

import numpy as np
import pytest

from convstack.image import convolve, correlate, filtering, to_matrix, toeplitz


@pytest.mark.parametrize("mode", ["valid", "same", "full"])
@pytest.mark.parametrize(
    "image_shape, kernel_shape",
    [((9,), (3,)), ((8,), (4,)), ((5, 6), (3, 3)), ((6, 5), (2, 4)), ((4, 3, 5), (2, 3, 3))],
)
def test_matrix_product_equals_correlation(rng, mode, image_shape, kernel_shape):
    image, kernel = rng.standard_normal(image_shape), rng.standard_normal(kernel_shape)
    matrix = to_matrix(kernel, image_shape, mode)
    expected = correlate(image, kernel, mode)
    assert matrix.shape == (expected.size, image.size)
    np.testing.assert_allclose(matrix @ image.ravel(), expected.ravel(), atol=1e-12)
    np.testing.assert_allclose(
        to_matrix(kernel, image_shape, mode, convolve=True) @ image.ravel(),
        convolve(image, kernel, mode).ravel(),
        atol=1e-12,
    )


@pytest.mark.parametrize("boundary", filtering.BOUNDARIES)
def test_boundaries_and_sparse(rng, boundary):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    image, kernel = rng.standard_normal((4, 5)), rng.standard_normal((3, 7))  # wider than the image: folds repeat
    expected = correlate(image, kernel, "same", boundary).ravel()
    dense = to_matrix(kernel, image.shape, "same", boundary)
    np.testing.assert_allclose(dense @ image.ravel(), expected, atol=1e-12)
    sparse = to_matrix(kernel, image.shape, "same", boundary, sparse=True)
    assert scipy_sparse.issparse(sparse)
    np.testing.assert_allclose(sparse.toarray(), dense, atol=1e-12)


def test_one_d_is_toeplitz():
    matrix = to_matrix([1.0, 2.0, 3.0], (6,), "full")
    for offset in range(-matrix.shape[0] + 1, matrix.shape[1]):
        diagonal = np.diagonal(matrix, offset)
        assert np.all(diagonal == diagonal[0])  # constant along every diagonal
    np.testing.assert_array_equal(matrix[2, :3], [1.0, 2.0, 3.0])  # out[2] = 1 x[0] + 2 x[1] + 3 x[2]


def test_two_d_is_doubly_block_toeplitz(rng):
    kernel, (height, width) = rng.standard_normal((3, 2)), (5, 4)
    matrix = to_matrix(kernel, (height, width), "same")
    blocks = matrix.reshape(height, width, height, width).transpose(0, 2, 1, 3)  # (out row, in row, out col, in col)
    for out_row in range(height):
        for in_row in range(height):
            offset = in_row - out_row + 1  # the kernel row this block holds (centre row 1)
            expected = to_matrix(kernel[offset], (width,), "same") if 0 <= offset < 3 else 0
            np.testing.assert_array_equal(blocks[out_row, in_row], expected)
            if 0 < out_row and 0 < in_row:
                np.testing.assert_array_equal(blocks[out_row, in_row], blocks[out_row - 1, in_row - 1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(kernel=np.ones((2, 2, 2, 2))), "to_matrix: invalid value for argument `kernel`: expected a non-empty"),
        (dict(image_shape=(4,)), "expected 2 positive sizes, one per kernel axis, received (4,)"),
        (dict(image_shape=(4, 0)), "expected 2 positive sizes"),
        (dict(mode="circular"), "to_matrix: invalid value for argument `mode`"),
        (dict(boundary="edge"), "to_matrix: invalid value for argument `boundary`"),
        (dict(image_shape=(2, 2)), "expected a kernel no larger than the image in mode 'valid'"),
        (dict(image_shape=(20000, 10)), "to_matrix: invalid value for argument `sparse`: expected True for a matrix"),
    ],
)
def test_errors(kwargs, message):
    arguments = dict(kernel=np.ones((3, 3)), image_shape=(4, 4))
    arguments.update(kwargs)
    with pytest.raises(ValueError) as caught:
        to_matrix(**arguments)
    assert message in str(caught.value)


def test_docstring_examples_run():
    result = doctest.testmod(toeplitz, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
