"""The extra layers: batch norm (running statistics over many steps and state dicts against PyTorch),
LRN, Upsample, padding layers, locally connected / tiled convolution, maxout, partial connectivity.
Module equals functional, repr and parameter/buffer names equal PyTorch's, get_config round trip,
and constructor errors pinned."""

import numpy as np
import pytest
from tests.helpers import check_against_torch

import convstack as cs
from convstack import nn
from convstack.nn import functional as F


def _torch():
    return pytest.importorskip("torch")


def _array(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# (layer, input shape, the same computation with the functional op)
EQUIVALENTS = [
    (nn.BatchNorm1d(3), (4, 3), lambda m, x: F.batch_norm(x, None, None, m.weight, m.bias, training=True)),
    (nn.BatchNorm2d(3, affine=False).eval(), (2, 3, 4, 4),
     lambda m, x: F.batch_norm(x, cs.zeros(3), cs.ones(3))),
    (nn.BatchNorm3d(2, track_running_stats=False).eval(), (2, 2, 2, 3, 2),
     lambda m, x: F.batch_norm(x, None, None, m.weight, m.bias, training=True)),
    (nn.LocalResponseNorm(3, alpha=0.1), (2, 5, 3, 3), lambda m, x: F.local_response_norm(x, 3, alpha=0.1)),
    (nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), (1, 2, 3, 3),
     lambda m, x: F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)),
    (nn.UpsamplingNearest2d(size=(5, 4)), (1, 2, 3, 3), lambda m, x: F.interpolate(x, size=(5, 4))),
    (nn.ZeroPad2d((1, 2, 0, 3)), (1, 2, 3, 3), lambda m, x: F.pad(x, (1, 2, 0, 3))),
    (nn.ConstantPad1d(2, 1.5), (1, 2, 3), lambda m, x: F.pad(x, (2, 2), value=1.5)),
    (nn.ReflectionPad2d(1), (1, 2, 3, 3), lambda m, x: F.pad(x, (1, 1, 1, 1), mode="reflect")),
    (nn.ReplicationPad3d((1, 0, 2, 1, 0, 1)), (1, 1, 2, 2, 2),
     lambda m, x: F.pad(x, (1, 0, 2, 1, 0, 1), mode="replicate")),
    (nn.CircularPad2d((1, 1, 0, 2)), (1, 1, 3, 3), lambda m, x: F.pad(x, (1, 1, 0, 2), mode="circular")),
    (nn.LocallyConnected2d(2, 3, (5, 5), 3, stride=2, padding=1), (2, 2, 5, 5),
     lambda m, x: F.locally_connected2d(x, m.weight, m.bias, 2, 1)),
    (nn.LocallyConnected1d(2, 3, 7, 3, bias=False), (2, 2, 7), lambda m, x: F.locally_connected1d(x, m.weight)),
    (nn.TiledConv2d(2, 3, 3, tile_size=(2, 3), padding=1), (2, 2, 5, 6),
     lambda m, x: F.tiled_conv2d(x, m.weight, m.bias, 1, 1)),
    (nn.TiledConv1d(2, 3, 2, tile_size=2, stride=2), (1, 2, 9), lambda m, x: F.tiled_conv1d(x, m.weight, m.bias, 2)),
    (nn.Maxout(2), (2, 6, 3), lambda m, x: F.maxout(x, 2)),
    (nn.CrossChannelPool(3, dim=-1), (2, 4, 6), lambda m, x: F.maxout(x, 3, -1)),
    (nn.PartialConv2d(3, 2, 2, [[1, 0, 1], [0, 1, 1]], padding=1), (1, 3, 4, 4),
     lambda m, x: F.conv2d(x, m.weight * cs.tensor(np.array([[1, 0, 1], [0, 1, 1]], np.float32)[:, :, None, None]),
                           m.bias, padding=1)),
]


@pytest.mark.parametrize("layer, shape, functional", EQUIVALENTS, ids=lambda v: type(v).__name__)
def test_module_equals_functional(layer, shape, functional):
    x = cs.tensor(_array(shape), requires_grad=True)
    out = layer(x)
    np.testing.assert_array_equal(out.detach().numpy(), functional(layer, x).detach().numpy())
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


# (class name, args, kwargs): built both here and in PyTorch
SPECS = [
    ("BatchNorm1d", (4,), {}),
    ("BatchNorm2d", (3,), {"momentum": None, "eps": 1e-3}),
    ("BatchNorm2d", (3,), {"affine": False}),
    ("BatchNorm2d", (3,), {"bias": False}),
    ("BatchNorm3d", (2,), {"track_running_stats": False}),
    ("LocalResponseNorm", (5,), {"alpha": 1e-4, "beta": 0.75, "k": 2.0}),
    ("Upsample", (), {"scale_factor": 2}),
    ("Upsample", (), {"size": (3, 4), "mode": "bilinear", "align_corners": True}),
    ("Upsample", (), {"scale_factor": (2, 3), "mode": "nearest-exact"}),
    ("UpsamplingNearest2d", (), {"size": 3}),
    ("UpsamplingBilinear2d", (), {"scale_factor": 2}),
    ("ZeroPad1d", (2,), {}),
    ("ZeroPad2d", (1,), {}),
    ("ZeroPad2d", ((1, 2, 3, 4),), {}),
    ("ZeroPad3d", (1,), {}),
    ("ConstantPad2d", (2, 3.5), {}),
    ("ConstantPad1d", ((1, 2), 0), {}),
    ("ConstantPad3d", (1, -1.0), {}),
    ("ReflectionPad1d", (2,), {}),
    ("ReflectionPad2d", ((1, 0, 2, 1),), {}),
    ("ReflectionPad3d", (1,), {}),
    ("ReplicationPad1d", ((1, 2),), {}),
    ("ReplicationPad2d", (2,), {}),
    ("ReplicationPad3d", (1,), {}),
    ("CircularPad1d", (1,), {}),
    ("CircularPad2d", ((1, 1, 2, 0),), {}),
    ("CircularPad3d", (1,), {}),
]


def _spec_id(spec):
    return spec[0] + "".join(f"-{k}" for k in spec[2])


@pytest.mark.parametrize("spec", SPECS, ids=[_spec_id(s) for s in SPECS])
def test_repr_parameters_and_buffers_equal_pytorch(spec):
    torch = _torch()
    name, args, kwargs = spec
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert [(n, tuple(t.shape), str(t.dtype)) for n, t in ours.state_dict().items()] == [
        (n, tuple(t.shape), str(t.dtype).replace("torch.", "")) for n, t in theirs.state_dict().items()
    ]


OWN_LAYERS = [
    nn.LocallyConnected1d(2, 3, 8, 3, stride=2, padding=1),
    nn.LocallyConnected2d(3, 4, (6, 5), (3, 2), bias=False, dtype="float64"),
    nn.TiledConv1d(2, 3, 3, tile_size=4),
    nn.TiledConv2d(3, 4, 3, tile_size=(2, 3), stride=2, padding=1),
    nn.Maxout(4),
    nn.CrossChannelPool(2, dim=2),
    nn.PartialConv2d(6, 16, 5, nn.lenet5_c3_table(), padding=2, bias=False),
]


@pytest.mark.parametrize("layer", [getattr(nn, s[0])(*s[1], **s[2]) for s in SPECS] + OWN_LAYERS,
                         ids=[_spec_id(s) for s in SPECS] + [type(layer).__name__ for layer in OWN_LAYERS])
def test_get_config_round_trip(layer):
    config = layer.get_config()
    rebuilt = type(layer)(**config)
    assert rebuilt.get_config() == config
    assert repr(rebuilt) == repr(layer)
    assert [(n, t.shape, t.dtype) for n, t in rebuilt.state_dict().items()] == [
        (n, t.shape, t.dtype) for n, t in layer.state_dict().items()
    ]


# ----------------------------------------------------------------------------- batch norm against torch.nn
@pytest.mark.parametrize("name, shape", [("BatchNorm1d", (8, 3)), ("BatchNorm1d", (4, 3, 5)),
                                         ("BatchNorm2d", (4, 3, 3, 3)), ("BatchNorm3d", (2, 3, 2, 3, 2))])
@pytest.mark.parametrize("momentum", [0.1, None, 0.7])
def test_batch_norm_training_steps_match_torch(name, shape, momentum):
    """Several training steps, then eval: outputs, gradients, running statistics and the batch count."""
    torch = _torch()
    ours = getattr(nn, name)(3, momentum=momentum, dtype="float64")
    theirs = getattr(torch.nn, name)(3, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor([0.5, 1.5, -1.0]))
        theirs.bias.copy_(torch.tensor([0.1, 0.0, -0.2]))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for step in range(4):
        x = _array(shape, seed=step, dtype=np.float64) * (step + 1) + step
        check_against_torch(ours, theirs, [x], rtol=1e-10, atol=1e-10)
        for buffer in ("running_mean", "running_var"):
            np.testing.assert_allclose(getattr(ours, buffer).numpy(), getattr(theirs, buffer).numpy(), rtol=1e-12)
    assert int(ours.num_batches_tracked.numpy()) == int(theirs.num_batches_tracked) == 4
    ours.eval(), theirs.eval()
    check_against_torch(ours, theirs, [_array(shape, seed=9, dtype=np.float64)], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-8)


def test_batch_norm_without_running_stats_matches_torch_in_both_modes():
    torch = _torch()
    ours, theirs = nn.BatchNorm2d(2, track_running_stats=False), torch.nn.BatchNorm2d(2, track_running_stats=False)
    for mode in (True, False):
        ours.train(mode), theirs.train(mode)
        check_against_torch(ours, theirs, [_array((3, 2, 2, 2), seed=int(mode))])
    assert list(ours.state_dict()) == ["weight", "bias"]


def test_batch_norm_state_dict_loads_from_torch_and_eval_uses_it():
    torch = _torch()
    theirs = torch.nn.BatchNorm2d(3)
    theirs.train()
    for seed in range(3):
        theirs(torch.tensor(_array((4, 3, 2, 2), seed) * 2 + 1))
    theirs.eval()
    ours = nn.BatchNorm2d(3).eval()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert ours.num_batches_tracked.dtype == np.int64 and int(ours.num_batches_tracked.numpy()) == 3
    x = _array((2, 3, 2, 2), seed=7)
    np.testing.assert_allclose(ours(cs.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_batch_norm_eval_does_not_touch_the_running_statistics():
    layer = nn.BatchNorm1d(2).eval()
    layer(cs.randn(5, 2) * 3 + 4)
    np.testing.assert_array_equal(layer.running_mean.numpy(), [0, 0])
    assert int(layer.num_batches_tracked.numpy()) == 0


# ----------------------------------------------------------------------------- padding against torch.nn
@pytest.mark.parametrize("name, padding, shape", [
    ("ZeroPad2d", (1, 2, 0, 1), (2, 2, 3, 3)),
    ("ZeroPad2d", (-1, 1, 1, -1), (1, 2, 3, 4)),
    ("ReflectionPad2d", (2, 1, 1, 2), (1, 2, 4, 4)),
    ("ReplicationPad2d", (3, 0, 1, 2), (2, 1, 3, 3)),
    ("ReflectionPad1d", 2, (1, 2, 5)),
    ("ReplicationPad3d", 1, (1, 1, 2, 3, 2)),
    ("CircularPad2d", (1, 2, 2, 1), (1, 2, 3, 3)),
])
def test_padding_layers_match_torch(name, padding, shape):
    torch = _torch()
    check_against_torch(getattr(nn, name)(padding), getattr(torch.nn, name)(padding), [_array(shape)])


def test_constant_pad_matches_torch():
    torch = _torch()
    check_against_torch(nn.ConstantPad2d((1, 0, 2, 1), 3.5), torch.nn.ConstantPad2d((1, 0, 2, 1), 3.5),
                        [_array((2, 2, 3, 3))])


# ----------------------------------------------------------------------------- unshared convolution
def test_tiled_conv_with_tile_one_equals_conv2d_with_the_same_weights():
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    tiled = nn.TiledConv2d(3, 4, 3, tile_size=1, stride=2, padding=1)
    weight, bias = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    tiled.load_state_dict({"weight": weight[None, None], "bias": bias[None, None]})  # (1, 1, O, C, kH, kW)
    x = cs.tensor(_array((2, 3, 7, 8)))
    np.testing.assert_allclose(tiled(x).detach().numpy(), conv(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_tiled_conv_with_tile_equal_to_the_output_equals_locally_connected():
    local = nn.LocallyConnected2d(2, 3, (6, 7), (3, 2), stride=(1, 2), padding=(1, 0))
    assert local.output_size == (6, 3) and local.weight.shape == (6, 3, 3, 2, 3, 2)
    tiled = nn.TiledConv2d(2, 3, (3, 2), tile_size=local.output_size, stride=(1, 2), padding=(1, 0))
    tiled.load_state_dict(local.state_dict())
    x = cs.tensor(_array((2, 2, 6, 7)))
    np.testing.assert_allclose(tiled(x).detach().numpy(), local(x).detach().numpy(), rtol=1e-6, atol=1e-6)


def test_locally_connected_learns_a_kernel_per_position():
    layer = nn.LocallyConnected1d(1, 1, 4, 2, bias=False)
    layer.load_state_dict({"weight": np.array([1, 2, 3], np.float32).reshape(3, 1, 1, 1) * np.ones((3, 1, 1, 2))})
    out = layer(cs.ones(1, 1, 4))
    # every window of ones sums to 2, scaled by its own position's weight
    np.testing.assert_array_equal(out.detach().numpy().ravel(), [2, 4, 6])
    bound = 1 / np.sqrt(3 * 3 * 3)  # PyTorch's conv default bound, fan-in of one kernel
    weight = nn.LocallyConnected2d(3, 4, 8, 3).weight.detach().numpy()
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.9 * bound


# ----------------------------------------------------------------------------- partial connectivity
def test_lenet5_c3_table_is_lecun_table_one():
    table = nn.lenet5_c3_table()
    # Table I, row by row (S2 map -> the C3 maps that read it), as printed in LeCun et al. (1998).
    rows = ["X...XXX..XXXX.XX", "XX...XXX..XXXX.X", "XXX...XXX..X.XXX",
            ".XXX..XXXX..X.XX", "..XXX..XXXX.XX.X", "...XXX..XXXX.XXX"]
    np.testing.assert_array_equal(table.T, np.array([[c == "X" for c in row] for row in rows]))
    assert table[:6].sum(axis=1).tolist() == [3] * 6 and table[6:15].sum(axis=1).tolist() == [4] * 9
    assert table[15].all()


def test_lenet5_c3_has_1516_parameters():
    c3 = nn.PartialConv2d(6, 16, 5, nn.lenet5_c3_table())
    assert c3.effective_parameter_count() == (6 * 3 + 9 * 4 + 6) * 25 + 16 == 1516
    assert int((c3.weight.detach().numpy() != 0).sum()) == 60 * 25  # the unconnected weights start at zero
    assert list(c3.state_dict()) == ["weight", "bias"]  # reads as a Conv2d's state dict
    assert repr(c3) == "PartialConv2d(6, 16, kernel_size=(5, 5), stride=(1, 1), connections=60/96)"


def test_partial_conv_equals_masked_dense_conv_against_torch():
    table = nn.lenet5_c3_table()
    layer = nn.PartialConv2d(6, 16, 5, table)
    mask = table[:, :, None, None].astype(np.float32)
    dense = _array((16, 6, 5, 5), seed=3)
    layer.load_state_dict({"weight": dense, "bias": _array(16, seed=4)})  # even with non-zero unconnected weights
    check_against_torch(
        layer,
        lambda x: _torch().nn.functional.conv2d(x, _torch().tensor(dense * mask), _torch().tensor(_array(16, seed=4))),
        [_array((2, 6, 9, 9))],
    )


def test_unconnected_weights_get_no_gradient_and_stay_zero():
    table = np.array([[1, 0, 0], [1, 1, 0]], dtype=bool)
    layer = nn.PartialConv2d(3, 2, 3, table, padding=1)
    optimizer = cs.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    for step in range(3):
        optimizer.zero_grad()
        (layer(cs.tensor(_array((2, 3, 5, 5), seed=step))) ** 2).sum().backward()
        assert (layer.weight.grad.numpy()[~table] == 0).all() and (layer.weight.grad.numpy()[table] != 0).any()
        optimizer.step()
    assert (layer.weight.detach().numpy()[~table] == 0).all() and (layer.weight.detach().numpy()[table] != 0).all()


# ----------------------------------------------------------------------------- errors
ERRORS = [
    (lambda: nn.BatchNorm2d(0), "BatchNorm2d: invalid value for argument `num_features`: expected a positive integer, "
                                "received 0"),
    (lambda: nn.BatchNorm1d(3, momentum=1.5), "BatchNorm1d: invalid value for argument `momentum`: expected a number "
                                              "in [0, 1] or None, received 1.5"),
    (lambda: nn.BatchNorm2d(3)(cs.ones(2, 3, 4)), "BatchNorm2d: expected a 4-D input (N, C, H, W), received a 3-D "
                                                  "input of shape (2, 3, 4)"),
    (lambda: nn.BatchNorm1d(3)(cs.ones(2, 4)), "BatchNorm1d: expected an input with 3 channels (num_features), "
                                               "received shape (2, 4)"),
    (lambda: nn.LocalResponseNorm(0), "LocalResponseNorm: invalid value for argument `size`: expected a positive "
                                      "integer, received 0"),
    (lambda: nn.Upsample(), "Upsample: invalid value for argument `size`: expected exactly one of size and "
                            "scale_factor, received 'size=None, scale_factor=None'"),
    (lambda: nn.Upsample(scale_factor=2, align_corners=True), "Upsample: invalid value for argument `align_corners`: "
                                                              "expected None unless mode is 'linear', 'bilinear', "
                                                              "'bicubic' or 'trilinear', received True"),
    (lambda: nn.ZeroPad2d((1, 2)), "ZeroPad2d: invalid value for argument `padding`: expected an integer or a tuple "
                                   "of 4 integers, received (1, 2)"),
    (lambda: nn.LocallyConnected2d(3, 4, 4, 5), "LocallyConnected2d: invalid value for argument `kernel_size`: "
                                                "expected at most the padded input size (4, 4), received 5"),
    (lambda: nn.LocallyConnected2d(3, 4, (6, 6), 3)(cs.ones(1, 3, 7, 6)), "LocallyConnected2d: expected an input of "
                                                                         "spatial size (6, 6) (input_size), received "
                                                                         "shape (1, 3, 7, 6)"),
    (lambda: nn.TiledConv2d(3, 4, 3, tile_size=0), "TiledConv2d: invalid value for argument `tile_size`: expected "
                                                   "positive integers, received 0"),
    (lambda: nn.Maxout(0), "Maxout: invalid value for argument `pool_size`: expected a positive integer, received 0"),
    (lambda: nn.PartialConv2d(6, 16, 5, np.ones((6, 16), bool)), "PartialConv2d: invalid value for argument "
                                                                 "`connections`: expected a boolean table of shape "
                                                                 "(out_channels, in_channels) = (16, 6), received "
                                                                 "'bool array of shape (6, 16)'"),
    (lambda: nn.PartialConv2d(2, 1, 3, [[1, 2]]), "PartialConv2d: invalid value for argument `connections`: expected "
                                                  "entries that are True/False or 1/0, received [[1, 2]]"),
]


@pytest.mark.parametrize("call, message", ERRORS)
def test_errors_are_pinned(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message
