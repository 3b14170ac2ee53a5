"""unfold (im2col) and fold (col2im): parity with PyTorch over geometries (values and gradients),
finite differences, the adjoint identity, convolution as unfold + matmul, edge cases and errors."""

import doctest
import importlib

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
import convstack.nn.functional as F

# (input shape, kernel_size, dilation, padding, stride)
GEOMETRIES = [
    ((2, 3, 6, 7), 2, 1, 0, 1),
    ((2, 3, 6, 7), (2, 3), 1, 0, 1),
    ((1, 2, 7, 6), 3, 2, 1, 2),
    ((2, 1, 8, 5), (3, 1), (1, 2), (2, 0), (3, 1)),
    ((1, 4, 5, 5), 1, 1, 0, 2),
    ((1, 2, 4, 4), 4, 1, 0, 1),  # one block
    ((3, 5, 5), 2, 1, 1, 1),  # unbatched
    ((0, 3, 5, 5), 2, 1, 0, 1),  # empty batch
]


def _torch_functional():
    return pytest.importorskip("torch").nn.functional


def _ids(geometry):
    return "-".join(str(v).replace(" ", "") for v in geometry)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=_ids)
def test_unfold_matches_torch(geometry, rng):
    shape, kernel, dilation, padding, stride = geometry
    TF = _torch_functional()
    check_against_torch(lambda x: F.unfold(x, kernel, dilation, padding, stride),
                        lambda x: TF.unfold(x, kernel, dilation, padding, stride),
                        [rng.standard_normal(shape).astype(np.float32)])


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=_ids)
def test_fold_matches_torch(geometry, rng):
    shape, kernel, dilation, padding, stride = geometry
    TF = _torch_functional()
    columns = F.unfold(cs.zeros(*shape), kernel, dilation, padding, stride).shape
    check_against_torch(lambda c: F.fold(c, shape[-2:], kernel, dilation, padding, stride),
                        lambda c: TF.fold(c, shape[-2:], kernel, dilation, padding, stride),
                        [rng.standard_normal(columns).astype(np.float32)])


@pytest.mark.parametrize("geometry", GEOMETRIES[:4], ids=_ids)
def test_finite_differences(geometry, rng):
    shape, kernel, dilation, padding, stride = geometry
    small = shape[:2] + (min(shape[2], 6), min(shape[3], 5))
    check_gradients(lambda x: F.unfold(x, kernel, dilation, padding, stride), [rng.standard_normal(small)])
    columns = F.unfold(cs.zeros(*small), kernel, dilation, padding, stride).shape
    check_gradients(lambda c: F.fold(c, small[2:], kernel, dilation, padding, stride), [rng.standard_normal(columns)])


def test_fold_is_the_adjoint_of_unfold(rng):
    """<unfold(x), c> = <x, fold(c)> for every x and c."""
    x = rng.standard_normal((2, 3, 7, 6))
    geometry = dict(kernel_size=(3, 2), dilation=(2, 1), padding=1, stride=(2, 1))
    c = rng.standard_normal(F.unfold(cs.tensor(x), **geometry).shape)
    left = (F.unfold(cs.tensor(x), **geometry).numpy() * c).sum()
    right = (x * F.fold(cs.tensor(c), (7, 6), **geometry).numpy()).sum()
    np.testing.assert_allclose(left, right, rtol=1e-12)


def test_convolution_is_unfold_then_matmul(rng):
    """The lectures' view: conv2d(x, W) = W (O, C kH kW) @ unfold(x), reshaped."""
    x, weight = rng.standard_normal((2, 3, 7, 8)), rng.standard_normal((4, 3, 3, 2))
    columns = F.unfold(cs.tensor(x), (3, 2), padding=1, stride=2)  # (N, C kH kW, L)
    product = np.einsum("ok,nkl->nol", weight.reshape(4, -1), columns.numpy())
    expected = F.conv2d(cs.tensor(x), cs.tensor(weight), padding=1, stride=2).numpy()
    np.testing.assert_allclose(product.reshape(expected.shape), expected, rtol=1e-10, atol=1e-12)


def test_fold_of_unfold_counts_the_overlaps():
    x = cs.ones(1, 1, 3, 3)
    np.testing.assert_array_equal(F.fold(F.unfold(x, 2), (3, 3), 2).numpy()[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


ERRORS = {
    "unfold-rank": (lambda: F.unfold(cs.ones(1, 2, 3, 4, 5), 2),
                    "unfold: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, received a 5-D input of shape "
                    "(1, 2, 3, 4, 5)"),
    "unfold-kernel": (lambda: F.unfold(cs.ones(1, 1, 4, 4), 0),
                      "unfold: invalid value for argument `kernel_size`: expected positive integers, received 0 "
                      "(input shape (1, 1, 4, 4))"),
    "unfold-empty-stride": (lambda: F.unfold(cs.ones(1, 1, 4, 4), 2, stride=()),
                            "unfold: invalid value for argument `stride`: expected an integer or a tuple of 2 "
                            "integers, received () (input shape (1, 1, 4, 4))"),
    "unfold-padding": (lambda: F.unfold(cs.ones(1, 1, 4, 4), 2, padding=-1),
                       "unfold: invalid value for argument `padding`: expected integers >= 0, received -1 (input "
                       "shape (1, 1, 4, 4))"),
    "unfold-too-big": (lambda: F.unfold(cs.ones(1, 1, 4, 4), 5),
                       "unfold: invalid value for argument `input`: expected a size that fits at least one block per "
                       "dimension (kernel_size (5, 5), dilation (1, 1), padding (0, 0) give (0, 0) blocks), received "
                       "(4, 4) (input shape (1, 1, 4, 4))"),
    "fold-rank": (lambda: F.fold(cs.ones(4), (3, 3), 2),
                  "fold: expected a 2-D (C * kH * kW, L) or 3-D (N, C * kH * kW, L) input, received a 1-D input of "
                  "shape (4,)"),
    "fold-channels": (lambda: F.fold(cs.ones(1, 5, 4), (3, 3), 2),
                      "fold: expected the size of the input's column dimension (5) to be divisible by the product "
                      "of kernel_size (2, 2) (4) (input shape (1, 5, 4))"),
    "fold-blocks": (lambda: F.fold(cs.ones(1, 4, 5), (3, 3), 2),
                    "fold: expected 4 blocks (2 * 2) in the input's last dimension for output_size (3, 3), "
                    "kernel_size (2, 2), dilation (1, 1), padding (0, 0), stride (1, 1), received 5 (input shape "
                    "(1, 4, 5))"),
    "fold-output-size": (lambda: F.fold(cs.ones(1, 4, 5), (3, 0), 2),
                         "fold: invalid value for argument `output_size`: expected positive integers, received (3, 0) "
                         "(input shape (1, 4, 5))"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors_are_pinned(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.sliding_blocks")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
