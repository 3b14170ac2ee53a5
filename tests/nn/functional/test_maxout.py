"""maxout: against PyTorch's reshape-max, gradient to the winner (first on ties), finite differences, errors."""

import doctest
import importlib

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
from convstack.nn import functional as F


def distinct(shape, seed=0):
    """Values without ties, so that each group has one maximum."""
    return (np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) / 7 - 2).astype(np.float32)


@pytest.mark.parametrize("shape, pool_size, dim", [
    ((2, 6), 2, 1),
    ((2, 6, 5), 3, 1),
    ((2, 8, 3, 4), 4, 1),
    ((2, 4, 2, 3, 2), 2, 1),
    ((3, 2, 6), 3, -1),
    ((4, 3), 4, 0),
    ((2, 5, 3), 1, 1),
])
def test_maxout_matches_torch_reshape_max(shape, pool_size, dim):
    def theirs(t):
        axis = dim % t.ndim
        grouped = t.reshape(t.shape[:axis] + (t.shape[axis] // pool_size, pool_size) + t.shape[axis + 1:])
        return grouped.max(dim=axis + 1).values

    check_against_torch(lambda t: F.maxout(t, pool_size, dim), theirs, [distinct(shape)])


def test_gradient_goes_to_the_first_maximum_of_each_group():
    x = cs.tensor([[2.0, 5.0, 5.0, -1.0, 0.0, 0.0]], requires_grad=True)
    out = F.maxout(x, 3)
    np.testing.assert_array_equal(out.detach().numpy(), [[5.0, 0.0]])
    out.backward(cs.tensor([[10.0, 20.0]]))
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 10, 0, 0, 20, 0]])


@pytest.mark.parametrize("shape, pool_size", [((2, 6, 3), 2), ((1, 4, 2, 2), 4)])
def test_finite_differences(shape, pool_size):
    check_gradients(lambda x: F.maxout(x, pool_size), [distinct(shape).astype(np.float64)])


ERRORS = {
    "divisor": (lambda: F.maxout(cs.ones(2, 5, 3), 2),
                "maxout: invalid value for argument `pool_size`: expected a divisor of the 5 entries of dimension 1, "
                "received 2 (input shape (2, 5, 3))"),
    "pool-size": (lambda: F.maxout(cs.ones(2, 4), 0),
                  "maxout: invalid value for argument `pool_size`: expected a positive integer, received 0 "
                  "(input shape (2, 4))"),
    "dim": (lambda: F.maxout(cs.ones(2, 4), 2, dim=2),
            "maxout: invalid value for argument `dim`: expected an integer in [-2, 1], received 2 "
            "(input shape (2, 4))"),
}


@pytest.mark.parametrize("call, message", ERRORS.values(), ids=ERRORS.keys())
def test_errors_are_pinned(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.maxout")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
