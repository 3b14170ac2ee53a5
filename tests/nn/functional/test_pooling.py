"""Max, average and adaptive pooling against PyTorch, finite differences, worked examples and errors."""

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
from convstack.nn.functional import adaptive_pooling as A
from convstack.nn.functional import pooling as P

SIZES = {1: (11,), 2: (9, 10), 3: (5, 6, 7)}


def _tf():
    return pytest.importorskip("torch").nn.functional


def distinct(shape, dtype=np.float64, seed=0):
    """Values without ties (a shuffled range), so that every window has one maximum."""
    values = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape)
    return (values / 8 - 3).astype(dtype)


MAX_CASES = [
    (1, dict(kernel_size=3)),
    (1, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (1, dict(kernel_size=2, padding=1, dilation=3)),
    (2, dict(kernel_size=2)),
    (2, dict(kernel_size=3, stride=2)),
    (2, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (2, dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), ceil_mode=True)),
    (3, dict(kernel_size=2)),
    (3, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (3, dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), dilation=(2, 1, 1))),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("return_indices", [False, True])
@pytest.mark.parametrize("spatial, kwargs", MAX_CASES)
def test_max_pool_matches_torch(spatial, kwargs, return_indices, dtype):
    name = f"max_pool{spatial}d"
    x = distinct((2, 3) + SIZES[spatial], dtype)
    check_against_torch(
        lambda t: getattr(P, name)(t, return_indices=return_indices, **kwargs),
        lambda t: getattr(_tf(), name)(t, return_indices=return_indices, **kwargs),
        [x],
    )


AVG_CASES = [
    (1, dict(kernel_size=3)),
    (1, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (1, dict(kernel_size=4, stride=3, padding=2, ceil_mode=True, count_include_pad=False)),
    (2, dict(kernel_size=2)),
    (2, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (2, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    (2, dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), count_include_pad=False)),
    (2, dict(kernel_size=3, stride=2, padding=1, divisor_override=5)),
    (3, dict(kernel_size=2, ceil_mode=True)),
    (3, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    (3, dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0), divisor_override=4)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spatial, kwargs", AVG_CASES)
def test_avg_pool_matches_torch(spatial, kwargs, dtype):
    name = f"avg_pool{spatial}d"
    x = np.random.default_rng(1).standard_normal((2, 3) + SIZES[spatial]).astype(dtype)
    check_against_torch(lambda t: getattr(P, name)(t, **kwargs), lambda t: getattr(_tf(), name)(t, **kwargs), [x])


ADAPTIVE_CASES = [(1, 4), (1, 11), (1, 3), (2, (3, 5)), (2, (4, 7)), (2, (None, 3)), (3, (5, 2, 7)), (3, (2, None, 4)),
                  (1, 1), (2, 1), (3, (1, 1, 1))]  # the last three: global pooling


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spatial, output_size", ADAPTIVE_CASES)
def test_adaptive_avg_pool_matches_torch(spatial, output_size, dtype):
    name = f"adaptive_avg_pool{spatial}d"
    x = np.random.default_rng(2).standard_normal((2, 3) + SIZES[spatial]).astype(dtype)
    check_against_torch(
        lambda t: getattr(A, name)(t, output_size), lambda t: getattr(_tf(), name)(t, output_size), [x]
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("return_indices", [False, True])
@pytest.mark.parametrize("spatial, output_size", ADAPTIVE_CASES)
def test_adaptive_max_pool_matches_torch(spatial, output_size, return_indices, dtype):
    name = f"adaptive_max_pool{spatial}d"
    x = distinct((2, 3) + SIZES[spatial], dtype)
    check_against_torch(
        lambda t: getattr(A, name)(t, output_size, return_indices),
        lambda t: getattr(_tf(), name)(t, output_size, return_indices),
        [x],
    )


@pytest.mark.parametrize(
    "cs_fn, torch_name, kwargs",
    [
        (P.max_pool2d, "max_pool2d", dict(kernel_size=3, stride=2, padding=1, return_indices=True)),
        (P.max_pool1d, "max_pool1d", dict(kernel_size=2)),
        (P.avg_pool1d, "avg_pool1d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
        (P.avg_pool3d, "avg_pool3d", dict(kernel_size=2)),
        (A.adaptive_avg_pool2d, "adaptive_avg_pool2d", dict(output_size=(4, 3))),
        (A.adaptive_avg_pool2d, "adaptive_avg_pool2d", dict(output_size=1)),
        (A.adaptive_max_pool2d, "adaptive_max_pool2d", dict(output_size=(4, 3), return_indices=True)),
    ],
)
def test_unbatched_input_matches_torch(cs_fn, torch_name, kwargs):
    spatial = int(torch_name[-2])
    x = distinct((3,) + SIZES[spatial])
    out = check_against_torch(lambda t: cs_fn(t, **kwargs), lambda t: getattr(_tf(), torch_name)(t, **kwargs), [x])
    assert out.ndim == spatial + 1


def test_lecture_example_max_pool_2x2_stride_2_keeps_each_regions_maximum():
    x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=np.float32)
    out, indices = P.max_pool2d(x[None, None], 2, stride=2, return_indices=True)
    np.testing.assert_array_equal(out.numpy()[0, 0], [[6, 8], [3, 4]])
    np.testing.assert_array_equal(indices.numpy()[0, 0], [[5, 7], [8, 15]])


def test_ties_go_to_first_maximum_in_window_order():
    x = cs.tensor([[[1.0, 3.0, 3.0, 2.0, 3.0]]], requires_grad=True)
    out, indices = P.max_pool1d(x, 3, stride=1, return_indices=True)
    np.testing.assert_array_equal(out.detach().numpy(), [[[3, 3, 3]]])
    np.testing.assert_array_equal(indices.numpy(), [[[1, 1, 2]]])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[[0, 2, 1, 0, 0]]])
    plane = np.ones((1, 1, 4, 4), dtype=np.float32)
    check_against_torch(
        lambda t: P.max_pool2d(t, 2, return_indices=True),
        lambda t: _tf().max_pool2d(t, 2, return_indices=True),
        [plane],
    )
    _, adaptive = A.adaptive_max_pool2d(plane, 2, return_indices=True)
    np.testing.assert_array_equal(adaptive.numpy()[0, 0], [[0, 2], [8, 10]])


def test_nan_wins_its_window_and_large_kernels_match_torch():
    x = distinct((1, 2, 6, 6), np.float32)
    x[0, 1, 2, 3] = np.nan
    check_against_torch(
        lambda t: P.max_pool2d(t, 3, stride=2, padding=1, return_indices=True),
        lambda t: _tf().max_pool2d(t, 3, stride=2, padding=1, return_indices=True),
        [x],
        check_grad=False,
    )
    big = distinct((1, 2, 18, 17))  # 289 offsets per window: wider than the uint8 offset store
    check_against_torch(
        lambda t: P.max_pool2d(t, 17, stride=1, return_indices=True),
        lambda t: _tf().max_pool2d(t, 17, stride=1, return_indices=True),
        [big],
    )


@pytest.mark.parametrize("spatial, kwargs", MAX_CASES)
def test_max_pool_ties_route_gradient_like_torch_without_indices(spatial, kwargs):
    """Few distinct values: most windows tie, and the one-dimension-at-a-time path must pick torch's winner."""
    x = np.random.default_rng(2).integers(0, 3, (2, 3) + SIZES[spatial]).astype(np.float64)
    name = f"max_pool{spatial}d"
    check_against_torch(lambda t: getattr(P, name)(t, **kwargs), lambda t: getattr(_tf(), name)(t, **kwargs), [x])


def test_max_pool_without_indices_lets_nan_win_and_routes_its_gradient():
    x = distinct((1, 2, 6, 6), np.float32)
    x[0, 1, 2, 3] = np.nan
    check_against_torch(
        lambda t: P.max_pool2d(t, 3, stride=2, padding=1), lambda t: _tf().max_pool2d(t, 3, stride=2, padding=1), [x]
    )


TILED_CASES = [(1, (12,), 3), (2, (8, 6), 2), (2, (8, 6), (2, 3)), (3, (4, 6, 4), 2)]


@pytest.mark.parametrize("spatial, size, kernel", TILED_CASES)
def test_windows_tiling_the_input_route_ties_to_the_first_maximum(spatial, size, kernel):
    """Stride = kernel and sizes multiples of it: the mask path, with ties in most windows (as after a ReLU)."""
    x = np.random.default_rng(3).integers(0, 3, (2, 3) + size).astype(np.float32)
    x[0, 0] = 0.0  # whole planes of equal values
    x[1, 2].flat[::5] = -np.inf
    name = f"max_pool{spatial}d"
    check_against_torch(lambda t: getattr(P, name)(t, kernel), lambda t: getattr(_tf(), name)(t, kernel), [x])
    distinct_x = distinct((2, 3) + size, np.float32, seed=4)  # no ties: one compare finds every winner
    check_against_torch(lambda t: getattr(P, name)(t, kernel), lambda t: getattr(_tf(), name)(t, kernel), [distinct_x])


def test_windows_tiling_the_input_let_nan_win_and_route_its_gradient():
    x = distinct((1, 2, 6, 8), np.float32)
    x[0, 1, 2, 3] = np.nan
    check_against_torch(lambda t: P.max_pool2d(t, 2), lambda t: _tf().max_pool2d(t, 2), [x])


@pytest.mark.parametrize("spatial, kwargs", MAX_CASES + [(2, dict(kernel_size=3, stride=2, padding=1))])
def test_max_pool_without_gradient_matches_torch_and_the_gradient_path(spatial, kwargs):
    """Under no_grad the passes run outermost dimension first and keep no winners: same maxima."""
    torch = pytest.importorskip("torch")
    name = f"max_pool{spatial}d"
    x = np.random.default_rng(5).standard_normal((2, 3) + SIZES[spatial]).astype(np.float32)
    x[0, 1].flat[::4] = np.nan
    with cs.no_grad():
        quiet = getattr(P, name)(cs.tensor(x), **kwargs).numpy()
    tracked = getattr(P, name)(cs.tensor(x, requires_grad=True), **kwargs).detach().numpy()
    with torch.no_grad():
        expected = getattr(_tf(), name)(torch.tensor(x), **kwargs).numpy()
    np.testing.assert_array_equal(quiet, expected)
    np.testing.assert_array_equal(tracked, expected)


@pytest.mark.parametrize("size", [56, 57])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=2),
                                    dict(kernel_size=5, stride=2, padding=2), dict(kernel_size=3, stride=1, padding=1),
                                    dict(kernel_size=4, stride=3, padding=2, ceil_mode=True)])
def test_overlapping_windows_in_float32_match_torch_with_ties(size, kwargs):
    """ResNet's stem pooling and neighbours, at sizes whose stride classes are as long as the output or not."""
    x = np.random.default_rng(6).integers(-2, 3, (2, 4, size, size)).astype(np.float32)
    x[1] = np.random.default_rng(7).standard_normal((4, size, size))
    x[0, 3] = -np.inf  # a plane of -inf: every window ties
    check_against_torch(lambda t: P.max_pool2d(t, **kwargs), lambda t: _tf().max_pool2d(t, **kwargs), [x])


def test_indices_are_int64():
    _, indices = P.max_pool3d(distinct((1, 1, 4, 4, 4)), 2, return_indices=True)
    _, adaptive = A.adaptive_max_pool1d(distinct((1, 2, 7)), 3, return_indices=True)
    assert indices.dtype == np.int64 and adaptive.dtype == np.int64


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: P.max_pool2d(t, 3, stride=2, padding=1, ceil_mode=True),
        lambda t: P.max_pool1d(t[0], 2, padding=1, dilation=2),
        lambda t: P.avg_pool2d(t, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        lambda t: P.avg_pool2d(t, 2, stride=1, divisor_override=3),
        lambda t: A.adaptive_avg_pool2d(t, (3, 2)),
        lambda t: A.adaptive_max_pool2d(t, (3, 2)),
    ],
)
def test_gradients_match_finite_differences(fn):
    check_gradients(fn, [distinct((1, 2, 5, 4))])


def test_gradients_match_finite_differences_in_3d():
    volume = distinct((1, 1, 3, 3, 2))
    check_gradients(lambda t: P.avg_pool3d(t, 2, stride=1, padding=1, count_include_pad=False), [volume])
    check_gradients(lambda t: P.max_pool3d(t, 2, stride=1), [volume])


X4 = np.zeros((1, 1, 4, 4), dtype=np.float32)
ERRORS = [
    (lambda: P.max_pool2d(X4, 0), r"max_pool2d: invalid value for argument `kernel_size`: expected positive integers, "
     r"received 0 \(input shape \(1, 1, 4, 4\)\)"),
    (lambda: P.max_pool2d(X4, 2, stride=(1, 0)), r"max_pool2d: .*`stride`: expected positive integers, "
     r"received \(1, 0\)"),
    (lambda: P.max_pool1d(X4[0], 2, dilation=0), r"max_pool1d: .*`dilation`: expected positive integers, received 0"),
    (lambda: P.avg_pool2d(X4, 2, padding=-1), r"avg_pool2d: .*`padding`: expected integers >= 0, received -1"),
    (lambda: P.max_pool2d(X4, 3, padding=2), r"max_pool2d: .*`padding`: expected at most half the kernel size, "
     r"kernel_size // 2 = \(1, 1\), received 2 \(input shape \(1, 1, 4, 4\)\)"),
    (lambda: P.max_pool2d(X4[0, 0], 2), r"max_pool2d: expected a 4-D or 3-D input .*received a 2-D input "
     r"of shape \(4, 4\)"),
    (lambda: P.max_pool2d(X4, 3, dilation=2), r"max_pool2d: .*`kernel_size`: expected a window that fits in the padded "
     r"input \(the output size would be \(0, 0\)\), received 3 \(input shape \(1, 1, 4, 4\), padding \(0, 0\)"),
    (lambda: P.avg_pool2d(X4, 2, divisor_override=0), r"avg_pool2d: .*`divisor_override`: expected None or a non-zero"),
    (lambda: A.adaptive_avg_pool2d(X4, (0, 2)), r"adaptive_avg_pool2d: .*`output_size`: expected a positive integer .*"
     r"received \(0, 2\) \(input shape \(1, 1, 4, 4\)\)"),
    (lambda: A.adaptive_max_pool2d(X4, (2, 2, 2)), r"adaptive_max_pool2d: .*`output_size`.*received \(2, 2, 2\)"),
    (lambda: A.adaptive_avg_pool3d(X4[0], 2), r"adaptive_avg_pool3d: expected a 5-D or 4-D input"),
]


@pytest.mark.parametrize("call, message", ERRORS)
def test_bad_arguments_raise_value_errors_naming_op_argument_and_shape(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_functional_namespace_exports_pooling():
    import convstack.nn.functional as F

    for name in ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
                 "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
                 "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d"]:
        assert callable(getattr(F, name)), name


def test_remembered_arguments_still_refuse_what_they_refused():
    x = cs.randn(1, 2, 8, 8)
    assert P.max_pool2d(x, 2).shape == (1, 2, 4, 4)  # (2, 2), stride (2, 2) remembered
    for bad in (2.0, (2, 2.0), True):
        with pytest.raises((ValueError, TypeError)):
            P.max_pool2d(x, bad)
    assert P.max_pool2d(x, [2, 2]).shape == (1, 2, 4, 4)  # lists work too


@pytest.mark.parametrize("name, shape", [("max_pool1d", (2, 3, 8)), ("avg_pool2d", (2, 3, 8, 6)),
                                         ("max_pool2d", (3, 8, 6)), ("avg_pool3d", (1, 2, 4, 6, 4)),
                                         ("max_pool2d", (0, 3, 8, 6))])
@pytest.mark.parametrize("stride", [(), []])
def test_empty_stride_means_the_kernel_size_as_in_torch(name, shape, stride, rng):
    TF = pytest.importorskip("torch").nn.functional
    x = rng.standard_normal(shape).astype(np.float32)
    ours, theirs = getattr(P, name), getattr(TF, name)
    check_against_torch(lambda t: ours(t, 2, stride=stride), lambda t: theirs(t, 2, stride=stride), [x])


def test_pooling_layers_take_an_empty_stride():
    for name in ("MaxPool2d", "AvgPool1d", "MaxPool3d"):
        layer = getattr(cs.nn, name)(2, stride=())
        assert layer.stride == layer.kernel_size
    assert repr(cs.nn.MaxPool2d(2, stride=())) == "MaxPool2d(kernel_size=2, stride=(), padding=0, dilation=1, " \
                                                  "ceil_mode=False)"  # as PyTorch prints it
