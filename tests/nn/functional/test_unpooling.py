"""Max unpooling against PyTorch: indices from convstack's max pooling equal PyTorch's, the unpooled values
and gradients match, output_size, unbatched inputs, finite differences, errors."""

import doctest
import importlib
import re

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
import convstack.nn.functional as F


def _torch():
    return pytest.importorskip("torch")


def _array(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# (spatial dims, input shape, pooling arguments, output_size passed to unpool or None)
CASES = {
    "1d": (1, (2, 3, 8), dict(kernel_size=2), None),
    "1d-odd-restored": (1, (2, 3, 9), dict(kernel_size=2), (9,)),
    "1d-stride-padding": (1, (1, 2, 10), dict(kernel_size=3, stride=2, padding=1), (10,)),
    "2d": (2, (2, 3, 6, 6), dict(kernel_size=2), None),
    "2d-odd-restored-full-shape": (2, (2, 2, 7, 5), dict(kernel_size=2), (2, 2, 7, 5)),
    "2d-overlapping": (2, (1, 2, 7, 7), dict(kernel_size=3, stride=2, padding=1), None),
    "2d-rectangular": (2, (2, 1, 6, 9), dict(kernel_size=(2, 3), stride=(2, 3)), None),
    "2d-unbatched": (2, (3, 4, 4), dict(kernel_size=2), None),
    "3d": (3, (1, 2, 4, 4, 6), dict(kernel_size=2), None),
    "3d-stride1": (3, (1, 1, 3, 4, 3), dict(kernel_size=2, stride=1), None),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_pool_then_unpool_matches_torch(case, dtype):
    torch = _torch()
    d, shape, pool_args, output_size = CASES[case]
    x = _array(shape, dtype=dtype)
    values, indices = getattr(F, f"max_pool{d}d")(cs.tensor(x), return_indices=True, **pool_args)
    theirs_values, theirs_indices = getattr(torch.nn.functional, f"max_pool{d}d")(
        torch.tensor(x), return_indices=True, **pool_args)
    np.testing.assert_array_equal(indices.numpy(), theirs_indices.numpy())  # the same index convention
    unpool_args = dict(pool_args, output_size=output_size)
    check_against_torch(
        lambda v, i: getattr(F, f"max_unpool{d}d")(v, i, **unpool_args),
        lambda v, i: getattr(torch.nn.functional, f"max_unpool{d}d")(v, i, **unpool_args),
        [values.numpy(), indices.numpy()],
    )
    np.testing.assert_array_equal(values.numpy(), theirs_values.numpy())


def test_unpool_puts_each_value_back_where_its_maximum_was():
    x = cs.tensor([[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 8.0, 7.0]]]])
    values, indices = F.max_pool2d(x, 2, return_indices=True)
    assert indices.tolist() == [[[[1, 6]]]]
    np.testing.assert_array_equal(F.max_unpool2d(values, indices, 2).numpy(),
                                  [[[[0, 5, 0, 0], [0, 0, 8, 0]]]])


def test_pool_unpool_round_trip_keeps_exactly_the_maxima_and_their_gradient():
    x = cs.tensor(_array((2, 3, 6, 6)), requires_grad=True)
    restored = F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2)
    kept = restored.detach().numpy() != 0
    assert kept.sum() == 2 * 3 * 9
    np.testing.assert_array_equal(restored.detach().numpy()[kept], x.detach().numpy()[kept])
    restored.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), kept)


def test_finite_differences():
    x = cs.tensor(_array((2, 2, 5, 4)))
    values, indices = F.max_pool2d(x, 2, return_indices=True)
    check_gradients(lambda v: F.max_unpool2d(v, indices, 2, output_size=(5, 4)), [values.numpy()])


def test_indices_from_torch_are_accepted():
    torch = _torch()
    x = _array((1, 2, 6))
    values, indices = torch.nn.functional.max_pool1d(torch.tensor(x), 3, return_indices=True)
    ours = F.max_unpool1d(values.numpy(), indices.numpy(), 3)
    np.testing.assert_array_equal(ours.numpy(), torch.nn.functional.max_unpool1d(values, indices, 3).numpy())


def _pooled():
    return F.max_pool2d(cs.tensor(_array((1, 1, 5, 5))), 2, return_indices=True)


ERRORS = {
    "output-size-range": (
        lambda: F.max_unpool2d(*_pooled(), 2, output_size=(6, 6)),
        "max_unpool2d: invalid value for argument `output_size`: expected sizes within a stride of the default "
        "(4, 4): 3..5, 3..5, received (6, 6) (input shape (1, 1, 2, 2))",
    ),
    "output-size-length": (
        lambda: F.max_unpool2d(*_pooled(), 2, output_size=(5,)),
        "max_unpool2d: invalid value for argument `output_size`: expected a tuple of 2 integers (or of the whole "
        "output shape), received (5,)",
    ),
    "index-out-of-range": (
        lambda: F.max_unpool2d(_pooled()[0], _pooled()[1] * 10, 2),
        "max_unpool2d: invalid value for argument `indices`: expected flat positions in [0, 16) of the (4, 4) "
        "output planes, received 60",
    ),
    "index-shape": (
        lambda: F.max_unpool2d(_pooled()[0], _pooled()[1][..., :1], 2),
        "max_unpool2d: invalid value for argument `indices`: expected an integer tensor of the input's shape "
        "(1, 1, 2, 2), received 'int64 of shape (1, 1, 2, 1)'",
    ),
    "float-indices": (
        lambda: F.max_unpool1d(cs.zeros(1, 1, 2), cs.zeros(1, 1, 2), 2),
        "max_unpool1d: invalid value for argument `indices`: expected an integer tensor of the input's shape "
        "(1, 1, 2), received 'float32 of shape (1, 1, 2)'",
    ),
    "rank": (
        lambda: F.max_unpool2d(cs.zeros(2, 2), cs.zeros(2, 2, dtype=cs.int64), 2),
        "max_unpool2d: expected a 4-D or 3-D input (N, C, D1, D2), received a 2-D input of shape (2, 2)",
    ),
    "kernel": (
        lambda: F.max_unpool1d(cs.zeros(1, 1, 2), cs.zeros(1, 1, 2, dtype=cs.int64), 0),
        "max_unpool1d: invalid value for argument `kernel_size`: expected positive integers, received 0",
    ),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.unpooling")
    result = doctest.testmod(module, extraglobs={"convstack": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
