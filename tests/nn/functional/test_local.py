"""Locally connected and tiled convolution: against explicit Python-loop references (here only),
against PyTorch's conv2d (tile 1), tile = output size equals locally connected, finite differences, errors."""

import doctest
import importlib

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
from convstack.nn import functional as F


def loop_reference(x, weight, bias, stride, padding, tile=None):
    """Output position p uses kernel weight[p] (locally connected) or weight[p mod tile] (tiled), one at a time."""
    dims = x.ndim - 2
    kernel = weight.shape[dims + 2:]
    padded = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    out_sizes = [(n - k) // s + 1 for n, k, s in zip(padded.shape[2:], kernel, stride)]
    out = np.zeros((x.shape[0], weight.shape[dims]) + tuple(out_sizes))
    for position in np.ndindex(*out_sizes):
        window = padded[(slice(None), slice(None)) + tuple(slice(i * s, i * s + k)
                                                           for i, s, k in zip(position, stride, kernel))]
        kernel_index = position if tile is None else tuple(i % t for i, t in zip(position, tile))
        out[(slice(None), slice(None)) + position] = np.tensordot(
            window, weight[kernel_index], axes=(list(range(1, dims + 2)), list(range(1, dims + 2))))
        if bias is not None:
            out[(slice(None), slice(None)) + position] += bias[kernel_index]
    return out


LOCAL_CASES = [
    (1, (2, 3, 9), 3, (1,), (0,)),
    (1, (2, 2, 8), 2, (3,), (1,)),
    (2, (2, 3, 6, 7), (3, 2), (1, 1), (0, 0)),
    (2, (1, 2, 7, 6), (3, 3), (2, 1), (1, 2)),
]


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("dims, shape, kernel, stride, padding", LOCAL_CASES)
def test_locally_connected_matches_loop_reference(dims, shape, kernel, stride, padding, with_bias, rng):
    kernel = kernel if isinstance(kernel, tuple) else (kernel,)
    out_sizes = tuple((n + 2 * p - k) // s + 1 for n, p, k, s in zip(shape[2:], padding, kernel, stride))
    x = rng.standard_normal(shape)
    weight = rng.standard_normal(out_sizes + (4, shape[1]) + kernel)
    bias = rng.standard_normal(out_sizes + (4,)) if with_bias else None
    op = F.locally_connected1d if dims == 1 else F.locally_connected2d
    out = op(cs.tensor(x), cs.tensor(weight), None if bias is None else cs.tensor(bias), stride, padding)
    np.testing.assert_allclose(out.numpy(), loop_reference(x, weight, bias, stride, padding), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tile, stride, padding", [((2, 3), (1, 1), (1, 1)), ((3, 1), (2, 1), (0, 2)),
                                                   ((4, 4), (1, 2), (0, 0))])
def test_tiled_conv2d_matches_loop_reference(tile, stride, padding, rng):
    x = rng.standard_normal((2, 3, 7, 8))
    weight = rng.standard_normal(tile + (4, 3, 3, 2))
    bias = rng.standard_normal(tile + (4,))
    out = F.tiled_conv2d(cs.tensor(x), cs.tensor(weight), cs.tensor(bias), stride, padding)
    np.testing.assert_allclose(out.numpy(), loop_reference(x, weight, bias, stride, padding, tile), atol=1e-12)


def test_tiled_conv1d_matches_loop_reference(rng):
    x, weight, bias = rng.standard_normal((2, 2, 9)), rng.standard_normal((3, 4, 2, 2)), rng.standard_normal((3, 4))
    out = F.tiled_conv1d(cs.tensor(x), cs.tensor(weight), cs.tensor(bias), 2, 1)
    np.testing.assert_allclose(out.numpy(), loop_reference(x, weight, bias, (2,), (1,), (3,)), atol=1e-12)


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), ((1, 2), (2, 0))])
def test_tile_of_one_is_conv2d(stride, padding, rng):
    """Values and the gradients of input, weight and bias all equal PyTorch's conv2d."""
    inputs = [rng.standard_normal((2, 3, 7, 6)).astype(np.float32), rng.standard_normal((4, 3, 3, 2)).astype(
        np.float32), rng.standard_normal(4).astype(np.float32)]
    check_against_torch(
        lambda x, w, b: F.tiled_conv2d(x, w.reshape(1, 1, 4, 3, 3, 2), b.reshape(1, 1, 4), stride, padding),
        lambda x, w, b: pytest.importorskip("torch").nn.functional.conv2d(x, w, b, stride, padding),
        inputs,
    )


def test_tile_equal_to_the_output_is_locally_connected(rng):
    x = cs.tensor(rng.standard_normal((2, 3, 6, 5)), requires_grad=True)
    weight = cs.tensor(rng.standard_normal((3, 3, 4, 3, 2, 2)), requires_grad=True)  # output size (3, 3)
    bias = cs.tensor(rng.standard_normal((3, 3, 4)), requires_grad=True)
    upstream = rng.standard_normal((2, 4, 3, 3))
    grads = []
    for op in (F.tiled_conv2d, F.locally_connected2d):
        out = op(x, weight, bias, stride=(2, 2), padding=(0, 1))
        out.backward(cs.tensor(upstream))
        grads.append([out.detach().numpy()] + [t.grad.numpy() for t in (x, weight, bias)])
        for t in (x, weight, bias):
            t.grad = None
    for tiled, local in zip(*grads):
        np.testing.assert_allclose(tiled, local, rtol=1e-12, atol=1e-12)


def test_unbatched_input(rng):
    x, weight = rng.standard_normal((2, 5, 5)), rng.standard_normal((3, 3, 4, 2, 3, 3))
    batched = F.locally_connected2d(cs.tensor(x[None]), cs.tensor(weight)).numpy()
    np.testing.assert_allclose(F.locally_connected2d(cs.tensor(x), cs.tensor(weight)).numpy(), batched[0])


@pytest.mark.parametrize("op, shapes, kwargs", [
    (F.locally_connected2d, [(2, 2, 4, 3), (2, 2, 1, 2, 3, 3), (2, 2, 1)], dict(stride=2, padding=1)),
    (F.locally_connected1d, [(2, 2, 5), (2, 3, 2, 2), (2, 3)], dict(stride=2)),
    (F.tiled_conv2d, [(1, 2, 5, 4), (2, 3, 2, 2, 2, 2), (2, 3, 2)], dict(stride=(2, 1), padding=1)),
    (F.tiled_conv1d, [(2, 1, 7), (2, 2, 1, 3), (2, 2)], dict(padding=1)),
])
def test_finite_differences(op, shapes, kwargs, rng):
    check_gradients(lambda x, w, b: op(x, w, b, **kwargs), [rng.standard_normal(s) for s in shapes])


ERRORS = {
    "positions": (lambda: F.locally_connected2d(cs.ones(1, 2, 5, 5), cs.ones(4, 4, 3, 2, 3, 3)),
                  "locally_connected2d: invalid value for argument `weight`: expected leading dimensions equal to the "
                  "output size (3, 3), received (4, 4) (input shape (1, 2, 5, 5), weight shape (4, 4, 3, 2, 3, 3))"),
    "weight-rank": (lambda: F.tiled_conv2d(cs.ones(1, 2, 5, 5), cs.ones(3, 2, 3, 3)),
                    "tiled_conv2d: invalid value for argument `weight`: expected a 6-D weight (*tile, out_channels, "
                    "in_channels, *kernel), received (3, 2, 3, 3) (input shape (1, 2, 5, 5), weight shape "
                    "(3, 2, 3, 3))"),
    "channels": (lambda: F.tiled_conv1d(cs.ones(1, 2, 5), cs.ones(1, 3, 4, 3)),
                 "tiled_conv1d: invalid value for argument `weight`: expected weight.shape[2] equal to the input's 2 "
                 "channels, received 4 (input shape (1, 2, 5), weight shape (1, 3, 4, 3))"),
    "kernel": (lambda: F.tiled_conv1d(cs.ones(1, 2, 3), cs.ones(1, 3, 2, 5)),
               "tiled_conv1d: invalid value for argument `weight`: expected a kernel no larger than the padded input "
               "(3,), received (5,) (input shape (1, 2, 3), weight shape (1, 3, 2, 5))"),
    "bias": (lambda: F.tiled_conv1d(cs.ones(1, 2, 5), cs.ones(2, 3, 2, 3), cs.ones(3)),
             "tiled_conv1d: invalid value for argument `bias`: expected a float32 bias of shape (2, 3), received "
             "'float32 of shape (3,)' (input shape (1, 2, 5), weight shape (2, 3, 2, 3))"),
    "stride": (lambda: F.tiled_conv1d(cs.ones(1, 2, 5), cs.ones(2, 3, 2, 3), stride=0),
               "tiled_conv1d: invalid value for argument `stride`: expected positive integers, received 0 "
               "(input shape (1, 2, 5), weight shape (2, 3, 2, 3))"),
}


@pytest.mark.parametrize("call, message", ERRORS.values(), ids=ERRORS.keys())
def test_errors_are_pinned(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.local")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
