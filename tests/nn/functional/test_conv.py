"""conv1d/2d/3d and conv_transpose1d/2d/3d: parity with PyTorch, finite differences, lecture examples, errors."""

import re

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
import convstack.nn.functional as F
from convstack.nn.kernels.reference.windows import output_size

# PyTorch warns that it copies the input for 'same' with an even kernel; convstack always pads.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
TOLERANCES = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-9, atol=1e-10)}

# (input shape, weight shape, keyword arguments)
CONV_CASES = {
    "1d": ((2, 3, 10), (4, 3, 3), {}),
    "1d-stride3-leftover": ((2, 3, 11), (4, 3, 2), dict(stride=3)),
    "1d-same-dilation2": ((2, 3, 10), (4, 3, 3), dict(padding="same", dilation=2)),
    "1d-same-even-kernel": ((2, 3, 9), (4, 3, 4), dict(padding="same")),
    "2d-pad1": ((2, 3, 7, 6), (4, 3, 3, 3), dict(padding=1)),
    "2d-tuples": ((2, 3, 7, 6), (4, 3, 3, 2), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))),
    "2d-valid": ((2, 3, 7, 6), (4, 3, 3, 3), dict(padding="valid")),
    "2d-same-even-kernel": ((2, 3, 7, 6), (4, 3, 2, 4), dict(padding="same")),
    "2d-groups3": ((2, 6, 6, 6), (9, 2, 3, 3), dict(groups=3, stride=2, padding=1)),
    "2d-depthwise": ((2, 4, 6, 5), (8, 1, 3, 3), dict(groups=4, padding="same")),
    "2d-1x1": ((2, 3, 5, 4), (5, 3, 1, 1), {}),
    "2d-1x1-padded-groups": ((2, 6, 5, 4), (4, 3, 1, 1), dict(padding=1, groups=2)),
    "2d-1x1-stride2": ((2, 3, 5, 4), (5, 3, 1, 1), dict(stride=2)),
    "2d-unbatched": ((3, 7, 6), (4, 3, 3, 3), dict(padding=1, stride=2)),
    "3d": ((2, 2, 5, 4, 6), (3, 2, 3, 2, 3), dict(stride=(1, 2, 1), padding=1)),
    "3d-unbatched-same": ((2, 4, 4, 5), (3, 2, 3, 3, 2), dict(padding="same")),
}

CONV_TRANSPOSE_CASES = {
    "1d": ((2, 4, 5), (4, 3, 3), {}),
    "1d-stride2-outpad": ((2, 4, 5), (4, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    "1d-depthwise-gaps": ((2, 4, 5), (4, 1, 2), dict(stride=3, groups=4)),
    "2d-stride2-outpad": ((2, 4, 4, 5), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    "2d-groups-tuples": (
        (2, 4, 4, 4),
        (4, 3, 3, 2),
        dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2),
    ),
    "2d-outpad-below-dilation": ((2, 4, 4, 5), (4, 3, 3, 3), dict(padding=1, output_padding=1, dilation=2)),
    "2d-1x1": ((2, 4, 4, 5), (4, 3, 1, 1), {}),
    "2d-1x1-outpad-dilation": ((2, 4, 4, 5), (4, 3, 1, 1), dict(output_padding=1, dilation=2)),
    "2d-1x1-stride2": ((2, 4, 4, 5), (4, 3, 1, 1), dict(stride=2)),
    "2d-unbatched": ((4, 4, 5), (4, 3, 3, 3), dict(stride=2)),
    "3d": ((2, 2, 3, 4, 3), (2, 3, 2, 3, 2), dict(stride=2, padding=(0, 1, 0))),
}


def _arrays(rng, input_shape, weight_shape, out_channels, dtype, bias):
    arrays = [rng.standard_normal(input_shape).astype(dtype), rng.standard_normal(weight_shape).astype(dtype)]
    if bias:
        arrays.append(rng.standard_normal(out_channels).astype(dtype))
    return arrays


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv_matches_torch(case, bias, dtype, rng):
    torch = pytest.importorskip("torch")
    input_shape, weight_shape, options = case
    dims = len(weight_shape) - 2
    torch_conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}[dims]
    arrays = _arrays(rng, input_shape, weight_shape, weight_shape[0], dtype, bias)
    check_against_torch(
        lambda *t: CONV[dims](*t, **options), lambda *t: torch_conv(*t, **options), arrays, **TOLERANCES[dtype]
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("case", CONV_TRANSPOSE_CASES.values(), ids=CONV_TRANSPOSE_CASES.keys())
def test_conv_transpose_matches_torch(case, bias, dtype, rng):
    torch = pytest.importorskip("torch")
    input_shape, weight_shape, options = case
    dims = len(weight_shape) - 2
    functional = torch.nn.functional
    torch_fn = {1: functional.conv_transpose1d, 2: functional.conv_transpose2d, 3: functional.conv_transpose3d}[dims]
    out_channels = weight_shape[1] * options.get("groups", 1)
    arrays = _arrays(rng, input_shape, weight_shape, out_channels, dtype, bias)
    check_against_torch(
        lambda *t: CONV_TRANSPOSE[dims](*t, **options), lambda *t: torch_fn(*t, **options), arrays, **TOLERANCES[dtype]
    )


@pytest.mark.parametrize(
    "fn, shapes",
    [
        (lambda x, w, b: F.conv1d(x, w, b, padding="same", dilation=2), [(1, 2, 6), (3, 2, 2), (3,)]),
        (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2), [(1, 4, 4, 3), (2, 2, 2, 2), (2,)]),
        (lambda x, w, b: F.conv2d(x, w, b), [(2, 3, 2, 2), (2, 3, 1, 1), (2,)]),
        (lambda x, w, b: F.conv3d(x, w, b, padding=(1, 0, 0)), [(1, 1, 2, 3, 2), (2, 1, 2, 2, 1), (2,)]),
        (
            lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
            [(1, 2, 2, 3), (2, 2, 3, 2), (2,)],
        ),
        (lambda x, w, b: F.conv_transpose1d(x, w, b, output_padding=1, dilation=2), [(2, 2, 3), (2, 1, 2), (1,)]),
    ],
    ids=["conv1d-same", "conv2d-stride-groups", "conv2d-1x1", "conv3d", "conv_transpose2d", "conv_transpose1d"],
)
def test_finite_differences(fn, shapes, rng):
    check_gradients(fn, [rng.standard_normal(shape) for shape in shapes])


def test_lecture_box_filter():
    f = cs.tensor([[[10.0, 50, 60, 10, 20, 40, 30]]], dtype=np.float64)
    g = cs.tensor([[[1 / 3, 1 / 3, 1 / 3]]], dtype=np.float64)
    expected = [20, 40, 40, 30, 70 / 3, 30, 70 / 3]
    np.testing.assert_allclose(F.conv1d(f, g, padding=1).numpy()[0, 0], expected, rtol=1e-12)


def test_lecture_edge_filter():
    out = F.conv1d(cs.tensor([[[0.0, 1, -1, 1, 1]]]), cs.tensor([[[-1.0, 1]]]))
    np.testing.assert_array_equal(out.numpy()[0, 0], [1, -2, 2, 0])


@pytest.mark.parametrize("width", [5, 8, 13])
@pytest.mark.parametrize("kernel", [1, 3, 4])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_output_size_formula(width, kernel, stride, padding):
    expected = (width + 2 * padding - kernel) // stride + 1  # the lectures' floor((W + 2P - K) / S) + 1
    assert output_size(width, kernel, stride, 2 * padding, 1) == expected
    out = F.conv2d(cs.zeros(1, 1, width, width + 1), cs.zeros(1, 1, kernel, kernel), stride=stride, padding=padding)
    assert out.shape == (1, 1, expected, (width + 1 + 2 * padding - kernel) // stride + 1)


def test_only_requested_gradients(rng):
    torch = pytest.importorskip("torch")
    x_array, w_array = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    x, w = cs.tensor(x_array, requires_grad=True), cs.tensor(w_array)
    out = F.conv2d(x, w, padding=1)
    assert out.grad_fn.x is None  # no input kept when the weight needs no gradient
    out.sum().backward()
    assert w.grad is None
    tx = torch.tensor(x_array, requires_grad=True)
    torch.nn.functional.conv2d(tx, torch.tensor(w_array), padding=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    x, w = cs.tensor(x_array), cs.tensor(w_array, requires_grad=True)
    out = F.conv2d(x, w, padding=1)
    assert out.grad_fn.weight is None  # nor the weight when the input needs no gradient
    out.sum().backward()
    assert x.grad is None and w.grad is not None


def test_no_grad_keeps_nothing():
    x, w = cs.randn(1, 2, 5, 5, requires_grad=True), cs.randn(3, 2, 3, 3, requires_grad=True)
    with cs.no_grad():
        out = F.conv2d(x, w)
    assert out.grad_fn is None and not out.requires_grad


def _context(input_shape, weight_shape):
    return f"(input shape {input_shape}, weight shape {weight_shape})"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x, w: F.conv2d(x, w, stride=0), "conv2d: invalid value for argument `stride`: expected positive"),
        (lambda x, w: F.conv2d(x, w, stride=(1, -2)), "received (1, -2)"),
        (lambda x, w: F.conv2d(x, w, dilation=0), "argument `dilation`: expected positive integers, received 0"),
        (lambda x, w: F.conv2d(x, w, padding=-1), "argument `padding`: expected integers >= 0, received -1"),
        (lambda x, w: F.conv2d(x, w, padding="full"), "expected an integer, a tuple of integers, 'valid' or 'same'"),
        (
            lambda x, w: F.conv2d(x, w, stride=2, padding="same"),
            "`padding`: expected 'same' only with stride 1, received 'same' (stride (2, 2), input shape",
        ),
        (
            lambda x, w: F.conv2d(x, w, dilation=4),
            "argument `weight`: expected a dilated kernel size dilation * (kernel - 1) + 1 no larger than the "
            "padded input (6, 6), received (9, 9) " + _context((2, 4, 6, 6), (6, 4, 3, 3)),
        ),
        (
            lambda x, w: F.conv2d(x, w, groups=3),
            "conv2d: invalid value for argument `groups`: expected a divisor of the input's 4 channels, received 3 "
            + _context((2, 4, 6, 6), (6, 4, 3, 3)),
        ),
        (lambda x, w: F.conv2d(x, w, groups=0), "argument `groups`: expected a positive integer, received 0"),
        (
            lambda x, w: F.conv2d(x, w, groups=2),
            "argument `weight`: expected weight.shape[1] == in_channels / groups = 4 / 2, received 4",
        ),
        (
            lambda x, w: F.conv2d(x[:, :3], w),
            "argument `weight`: expected weight.shape[1] == in_channels / groups = 3 / 1, received 4 "
            + _context((2, 3, 6, 6), (6, 4, 3, 3)),
        ),
        (
            lambda x, w: F.conv2d(x, w[:, :, :0]),
            "argument `weight`: expected a kernel of positive sizes, received (0, 3)",
        ),
        (lambda x, w: F.conv2d(x[0, 0], w), "conv2d: expected a 4-D or 3-D input (N, C, D1, D2), received a 2-D input"),
        (lambda x, w: F.conv1d(x, w), "conv1d: expected a 3-D or 2-D input (N, C, D1), received a 4-D input"),
        (
            lambda x, w: F.conv2d(x, w[0]),
            "argument `weight`: expected a 4-D weight (out_channels, in_channels / groups",
        ),
        (lambda x, w: F.conv2d(x, w, cs.zeros(5)), "argument `bias`: expected a float32 bias of shape (6,), received"),
        (lambda x, w: F.conv2d(x, w.to(np.float64)), "argument `weight`: expected the input's dtype float32"),
    ],
)
def test_conv_errors(call, message):
    x, w = cs.randn(2, 4, 6, 6), cs.randn(6, 4, 3, 3)
    with pytest.raises(ValueError, match=re.escape(message)):
        call(x, w)


def test_conv_out_channels_not_divisible_by_groups():
    with pytest.raises(ValueError, match=re.escape("expected a divisor of the weight's 5 out_channels, received 2")):
        F.conv2d(cs.randn(1, 4, 5, 5), cs.randn(5, 2, 3, 3), groups=2)


@pytest.mark.parametrize(
    "options, message",
    [
        (
            dict(stride=2, output_padding=2),
            "conv_transpose2d: invalid value for argument `output_padding`: expected values smaller than the stride "
            "(2, 2) or the dilation (1, 1), received 2 " + _context((2, 4, 3, 3), (4, 2, 3, 3)),
        ),
        (dict(output_padding=1), "argument `output_padding`: expected values smaller than the stride (1, 1)"),
        (dict(padding=3), "argument `padding`: expected a padding that leaves a positive output size"),
        (dict(padding="same"), "argument `padding`: expected an integer or a tuple of 2 integers, received 'same'"),
        (dict(groups=3), "argument `groups`: expected a divisor of the input's 4 channels, received 3"),
        (dict(stride=0), "argument `stride`: expected positive integers, received 0"),
    ],
)
def test_conv_transpose_errors(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        F.conv_transpose2d(cs.randn(2, 4, 3, 3), cs.randn(4, 2, 3, 3), **options)


def test_conv_transpose_weight_channels():
    message = "argument `weight`: expected weight.shape[0] equal to the input's 3 channels, received 4"
    with pytest.raises(ValueError, match=re.escape(message)):
        F.conv_transpose2d(cs.randn(2, 3, 3, 3), cs.randn(4, 2, 3, 3))
