"""The flattened-padded-plane paths equal the direct im2col path, in any dimension, groups and chunking."""

import numpy as np
import pytest
from tests.nn.kernels.test_algorithms import _close, _reference

from convstack.nn.kernels import algorithm
from convstack.nn.kernels.geometry import ConvGeometry
from convstack.nn.kernels.reference import chunked, flat_planes

# name: (input shape, weight shape, pads, dilation)
SHAPES = {
    "2d-3x3": ((3, 4, 7, 9), (4, 1, 3, 3), ((1, 1), (1, 1)), (1, 1)),
    "2d-multiplier-3": ((2, 3, 6, 5), (9, 1, 3, 3), ((1, 1), (1, 1)), (1, 1)),
    "2d-5x3-asymmetric": ((2, 5, 8, 6), (5, 1, 5, 3), ((2, 1), (0, 2)), (1, 1)),
    "2d-dilated-unpadded": ((2, 3, 9, 10), (3, 1, 3, 2), ((0, 0), (0, 0)), (2, 3)),
    "1d": ((3, 4, 17), (8, 1, 5), ((2, 1),), (1,)),
    "3d": ((2, 3, 5, 6, 4), (3, 1, 3, 3, 3), ((1, 1), (1, 1), (0, 1)), (1, 1, 1)),
}


def _arrays(name, rng, dtype=np.float32):
    input_shape, weight_shape, pads, dilation = SHAPES[name]
    x = rng.standard_normal(input_shape).astype(dtype)
    weight = rng.standard_normal(weight_shape).astype(dtype)
    geometry = ConvGeometry.of(x, weight, (1,) * len(pads), pads, dilation, input_shape[1])
    grad = rng.standard_normal((input_shape[0], weight_shape[0]) + geometry.out_sizes).astype(dtype)
    return x, weight, grad, geometry


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("limit", [algorithm.DEFAULT_WORKSPACE_LIMIT, 1])  # the whole batch; one sample a chunk
def test_depthwise_matches_direct_path(name, limit, rng):
    x, weight, grad, geometry = _arrays(name, rng)
    bias = rng.standard_normal(weight.shape[0]).astype(np.float32)
    out, grad_input, grad_weight = _reference(x, weight, grad, geometry)
    if flat_planes.applies_depthwise(geometry, "forward"):
        actual = flat_planes.forward(x, weight, bias, geometry, limit)
        assert actual.dtype == np.float32 and actual.flags.c_contiguous
        _close(actual, out + bias.reshape((-1,) + (1,) * (x.ndim - 2)), 1e-5)
    assert flat_planes.applies_depthwise(geometry, "backward_weight")
    _close(flat_planes.backward_weight_depthwise(grad, x, geometry, limit), grad_weight, 1e-5)
    with algorithm.use("gemm"):  # the input gradient: the forward of the flipped kernel, depthwise again
        _close(algorithm.backward_data(grad, weight, geometry), grad_input, 1e-5)


def test_float64_is_exact(rng):
    x, weight, grad, geometry = _arrays("2d-5x3-asymmetric", rng, np.float64)
    out, _, grad_weight = _reference(x, weight, grad, geometry)
    _close(flat_planes.forward(x, weight, None, geometry, 2**20), out, 1e-12)
    _close(flat_planes.backward_weight_depthwise(grad, x, geometry, 2**20), grad_weight, 1e-12)


def test_which_layers_take_the_path(rng):
    assert flat_planes.applies_depthwise(_arrays("2d-3x3", rng)[3], "forward")
    assert not flat_planes.applies_depthwise(_arrays("1d", rng)[3], "forward")  # 1-D forward stays on im2col
    lenet = ConvGeometry((64, 1, 28, 28), (6, 1, 5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 1, "float32")
    strided = ConvGeometry((8, 32, 56, 56), (32, 1, 3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 32, "float32")
    grouped = ConvGeometry((8, 32, 56, 56), (32, 2, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 16, "float32")
    for geometry in (lenet, strided, grouped):
        assert not flat_planes.applies_depthwise(geometry, "forward")
        assert not flat_planes.applies_depthwise(geometry, "backward_weight")


def test_kept_columns_still_serve_the_weight_gradient(rng):
    """A 1-D depthwise training forward keeps im2col's columns; the weight gradient then runs on them."""
    x, weight, grad, geometry = _arrays("1d", rng)
    _, _, grad_weight = _reference(x, weight, grad, geometry)
    _, columns = chunked.forward(x, weight, None, geometry, algorithm.DEFAULT_WORKSPACE_LIMIT, keep=True)
    assert isinstance(columns, chunked.Columns)
    _close(chunked.backward_weight(grad, columns, geometry, algorithm.DEFAULT_WORKSPACE_LIMIT), grad_weight, 1e-5)


@pytest.mark.parametrize("name", ["2d-3x3", "2d-dilated-unpadded", "3d"])
def test_tap_offsets_address_the_padded_plane(name, rng):
    """Each tap's flat offset is where that tap of the first window sits in the padded plane."""
    _, _, _, geometry = _arrays(name, rng)
    plane = np.arange(np.prod(geometry.padded_sizes)).reshape(geometry.padded_sizes)
    first_window = plane[tuple(slice(0, d * (k - 1) + 1, d) for k, d in zip(geometry.kernel, geometry.dilation))]
    assert flat_planes.tap_offsets(geometry) == tuple(first_window.ravel())


# name: (input shape, weight shape, pads, dilation, groups): stride-1 layers of any groups for the input gradient
DATA_SHAPES = {
    "lenet-like": ((3, 6, 14, 14), (16, 6, 5, 5), ((0, 0), (0, 0)), (1, 1), 1),
    "groups-dilated-asymmetric": ((2, 4, 9, 8), (6, 2, 3, 2), ((2, 0), (1, 3)), (2, 1), 2),
    "padding-wider-than-kernel": ((2, 3, 5, 6), (4, 3, 3, 3), ((3, 3), (0, 4)), (1, 1), 1),
    "1d": ((3, 4, 17), (8, 4, 5), ((2, 1),), (1,), 1),
    "3d": ((2, 2, 5, 6, 4), (3, 2, 3, 3, 3), ((1, 1), (1, 1), (0, 1)), (1, 1, 1), 1),
}


def _data_arrays(name, rng):
    input_shape, weight_shape, pads, dilation, groups = DATA_SHAPES[name]
    x = rng.standard_normal(input_shape).astype(np.float32)
    weight = rng.standard_normal(weight_shape).astype(np.float32)
    geometry = ConvGeometry.of(x, weight, (1,) * len(pads), pads, dilation, groups)
    grad = rng.standard_normal((input_shape[0], weight_shape[0]) + geometry.out_sizes).astype(np.float32)
    return x, weight, grad, geometry


@pytest.mark.parametrize("name", list(DATA_SHAPES))
@pytest.mark.parametrize("limit", [algorithm.DEFAULT_WORKSPACE_LIMIT, 1])
def test_backward_data_matches_col2im(name, limit, rng):
    x, weight, grad, geometry = _data_arrays(name, rng)
    _, grad_input, _ = _reference(x, weight, grad, geometry)
    actual = flat_planes.backward_data(grad, weight, geometry, limit)
    assert actual.dtype == np.float32 and actual.flags.c_contiguous
    _close(actual, grad_input, 1e-5)


def test_backward_data_rule():
    def geometry(input_shape, weight_shape, stride=1, padding=0):
        dims = len(weight_shape) - 2
        return ConvGeometry(input_shape, weight_shape, (stride,) * dims, ((padding, padding),) * dims,
                            (1,) * dims, 1, "float32")

    assert flat_planes.applies_backward_data(geometry((64, 6, 14, 14), (16, 6, 5, 5)))  # thin output side
    assert flat_planes.applies_backward_data(geometry((8, 64, 1024), (128, 64, 9), padding=4))  # planes 1% larger
    assert not flat_planes.applies_backward_data(geometry((32, 3, 32, 32), (64, 3, 5, 5), padding=2))
    assert not flat_planes.applies_backward_data(geometry((8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3))


@pytest.mark.parametrize("name", list(DATA_SHAPES))
@pytest.mark.parametrize("limit", [algorithm.DEFAULT_WORKSPACE_LIMIT, 1])
def test_dense_forward_and_weight_gradient_match_the_direct_path(name, limit, rng):
    x, weight, grad, geometry = _data_arrays(name, rng)
    bias = rng.standard_normal(weight.shape[0]).astype(np.float32)
    out, _, grad_weight = _reference(x, weight, grad, geometry)
    actual = flat_planes.forward(x, weight, bias, geometry, limit)
    assert actual.dtype == np.float32 and actual.flags.c_contiguous
    _close(actual, out + bias.reshape((-1,) + (1,) * (x.ndim - 2)), 1e-5)
    _close(flat_planes.backward_weight(grad, x, geometry, limit), grad_weight, 1e-5)


def test_dense_rule_takes_tightly_padded_layers_and_leaves_kept_columns_alone(rng):
    def geometry(input_shape, weight_shape, stride=1, padding=1):
        dims = len(weight_shape) - 2
        return ConvGeometry(input_shape, weight_shape, (stride,) * dims, ((padding, padding),) * dims,
                            (1,) * dims, 1, "float32")

    assert flat_planes.applies_forward(geometry((128, 16, 32, 32), (16, 16, 3, 3)))  # planes 1.13x
    assert flat_planes.applies_forward(geometry((2, 16, 32, 32, 32), (16, 16, 3, 3, 3)))  # 1.2x
    assert not flat_planes.applies_forward(geometry((8, 16, 16, 16, 16), (16, 16, 3, 3, 3)))  # 1.42x
    assert not flat_planes.applies_forward(geometry((64, 6, 14, 14), (16, 6, 5, 5), padding=0))  # 1.96x
    assert not flat_planes.applies_forward(geometry((8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3))
    assert not flat_planes.applies_forward(geometry((8, 64, 1024), (64, 64, 9), padding=4))  # 1-D: im2col
    # LeNet's first layer (planes 1.31x) keeps its columns for the weight gradient when training
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    weight = rng.standard_normal((6, 1, 5, 5)).astype(np.float32)
    lenet = ConvGeometry.of(x, weight, (1, 1), ((2, 2), (2, 2)), (1, 1), 1)
    assert flat_planes.applies_forward(lenet)
    _, columns = chunked.forward(x, weight, None, lenet, algorithm.DEFAULT_WORKSPACE_LIMIT, keep=True)
    assert isinstance(columns, chunked.Columns)
