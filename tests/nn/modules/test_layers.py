"""Every layer: module equals functional, parameter shapes and repr equal PyTorch's,
get_config round trip, and constructor errors pinned by message."""

import numpy as np
import pytest

import convstack as cs
from convstack import nn
from convstack.nn import functional as F

# (layer, input shape, the same computation written with the functional op)
EQUIVALENTS = [
    (nn.Conv1d(2, 4, 3, stride=2, padding=1), (2, 2, 9), lambda m, x: F.conv1d(x, m.weight, m.bias, 2, 1)),
    (nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False), (2, 4, 6, 6),
     lambda m, x: F.conv2d(x, m.weight, None, 1, 1, 1, 2)),
    (nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="reflect"), (1, 2, 5, 6),
     lambda m, x: F.conv2d(F.pad(x, (2, 2, 1, 1), mode="reflect"), m.weight, m.bias)),
    (nn.Conv2d(2, 3, 2, padding=1, padding_mode="circular", dilation=2), (1, 2, 5, 5),
     lambda m, x: F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), m.weight, m.bias, dilation=2)),
    (nn.Conv2d(2, 3, (4, 3), padding="same"), (1, 2, 6, 6),
     lambda m, x: F.conv2d(F.pad(x, (1, 1, 1, 2)), m.weight, m.bias)),
    (nn.Conv2d(2, 3, 3, padding="valid", padding_mode="replicate"), (1, 2, 5, 5),
     lambda m, x: F.conv2d(x, m.weight, m.bias)),
    (nn.Conv3d(2, 2, 2, stride=(1, 2, 2)), (1, 2, 4, 4, 4), lambda m, x: F.conv3d(x, m.weight, m.bias, (1, 2, 2))),
    (nn.ConvTranspose1d(2, 3, 3, stride=2, output_padding=1), (2, 2, 5),
     lambda m, x: F.conv_transpose1d(x, m.weight, m.bias, 2, 0, 1)),
    (nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, groups=2, dilation=2), (1, 4, 4, 4),
     lambda m, x: F.conv_transpose2d(x, m.weight, m.bias, 2, 1, 0, 2, 2)),
    (nn.ConvTranspose3d(2, 1, 2, stride=2, bias=False), (1, 2, 2, 3, 2),
     lambda m, x: F.conv_transpose3d(x, m.weight, None, 2)),
    (nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 9), lambda m, x: F.max_pool1d(x, 3, 2, 1)),
    (nn.MaxPool2d(2, dilation=2, ceil_mode=True), (1, 2, 7, 7), lambda m, x: F.max_pool2d(x, 2, 2, 0, 2, True)),
    (nn.MaxPool3d(2), (1, 2, 4, 4, 4), lambda m, x: F.max_pool3d(x, 2)),
    (nn.AvgPool1d(3, 2, 1, count_include_pad=False), (2, 3, 8), lambda m, x: F.avg_pool1d(x, 3, 2, 1, False, False)),
    (nn.AvgPool2d(2, divisor_override=3), (1, 2, 6, 6), lambda m, x: F.avg_pool2d(x, 2, divisor_override=3)),
    (nn.AvgPool3d(2, stride=1), (1, 1, 3, 3, 3), lambda m, x: F.avg_pool3d(x, 2, 1)),
    (nn.AdaptiveAvgPool1d(3), (2, 2, 7), lambda m, x: F.adaptive_avg_pool1d(x, 3)),
    (nn.AdaptiveAvgPool2d((2, None)), (1, 2, 5, 4), lambda m, x: F.adaptive_avg_pool2d(x, (2, 4))),
    (nn.AdaptiveAvgPool3d(1), (1, 2, 3, 3, 3), lambda m, x: F.adaptive_avg_pool3d(x, 1)),
    (nn.AdaptiveMaxPool2d(2), (1, 2, 5, 5), lambda m, x: F.adaptive_max_pool2d(x, 2)),
    (nn.Linear(5, 3), (2, 4, 5), lambda m, x: F.linear(x, m.weight, m.bias)),
    (nn.Linear(5, 3, bias=False), (2, 5), lambda m, x: F.linear(x, m.weight)),
    (nn.Flatten(), (2, 3, 2, 2), lambda m, x: x.reshape(2, 12)),
    (nn.Flatten(0, 1), (2, 3, 2), lambda m, x: x.reshape(6, 2)),
    (nn.Unflatten(1, (2, -1)), (2, 6), lambda m, x: x.reshape(2, 2, 3)),
    (nn.Identity(54, unused=True), (3, 2), lambda m, x: x),
    (nn.ReLU(), (3, 4), lambda m, x: F.relu(x)),
    (nn.LeakyReLU(0.2), (3, 4), lambda m, x: F.leaky_relu(x, 0.2)),
    (nn.ELU(0.5), (3, 4), lambda m, x: F.elu(x, 0.5)),
    (nn.GELU("tanh"), (3, 4), lambda m, x: F.gelu(x, approximate="tanh")),
    (nn.Sigmoid(), (3, 4), lambda m, x: F.sigmoid(x)),
    (nn.Tanh(), (3, 4), lambda m, x: F.tanh(x)),
    (nn.Softmax(dim=0), (3, 4), lambda m, x: F.softmax(x, 0)),
    (nn.Softmax(), (3, 4), lambda m, x: F.softmax(x, 1)),  # PyTorch's legacy implicit dim
    (nn.LogSoftmax(-1), (3, 4), lambda m, x: F.log_softmax(x, -1)),
    (nn.Dropout(0.3).eval(), (3, 4), lambda m, x: x),
]


@pytest.mark.parametrize("layer, shape, functional", EQUIVALENTS, ids=lambda v: type(v).__name__)
def test_module_equals_functional(layer, shape, functional):
    x = cs.tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32), requires_grad=True)
    out = layer(x)
    expected = functional(layer, x)
    np.testing.assert_array_equal(out.detach().numpy(), expected.detach().numpy())
    out.sum().backward()  # every layer is differentiable end to end
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize("layer, fn, shape", [
    (nn.Dropout(0.3), lambda x: F.dropout(x, 0.3, True), (4, 5)),
    (nn.Dropout2d(0.5), lambda x: F.dropout2d(x, 0.5, True), (2, 8, 3, 3)),
    (nn.Dropout3d(0.5), lambda x: F.dropout3d(x, 0.5, True), (2, 8, 3, 3, 3)),
])
def test_dropout_modules_equal_functional_in_training(layer, fn, shape):
    x = cs.ones(*shape)
    cs.manual_seed(7)
    out = layer(x).numpy()
    cs.manual_seed(7)
    np.testing.assert_array_equal(out, fn(x).numpy())
    assert (out == 0).any() and (out != 0).any()
    np.testing.assert_array_equal(layer.eval()(x).numpy(), x.numpy())


def test_losses_equal_functional():
    rng = np.random.default_rng(0)
    logits, labels = cs.tensor(rng.standard_normal((6, 4)).astype(np.float32)), cs.tensor([0, 1, 2, 3, -100, 1])
    weight = cs.tensor([1.0, 2.0, 0.5, 1.0])
    np.testing.assert_array_equal(
        nn.CrossEntropyLoss(weight, label_smoothing=0.1)(logits, labels).numpy(),
        F.cross_entropy(logits, labels, weight=weight, label_smoothing=0.1).numpy(),
    )
    log_probs = F.log_softmax(logits, 1)
    np.testing.assert_array_equal(
        nn.NLLLoss(reduction="sum")(log_probs, labels).numpy(), F.nll_loss(log_probs, labels, reduction="sum").numpy()
    )
    valid = cs.tensor([0, 1, 2, 3, 0, 1])
    np.testing.assert_array_equal(
        nn.MultiMarginLoss(p=2, margin=0.5, weight=weight)(logits, valid).numpy(),
        F.multi_margin_loss(logits, valid, p=2, margin=0.5, weight=weight).numpy(),
    )
    target = cs.tensor(rng.random((6, 4)).astype(np.float32))
    mse = nn.MSELoss("none")(logits, target)
    np.testing.assert_array_equal(mse.numpy(), F.mse_loss(logits, target, "none").numpy())
    np.testing.assert_array_equal(nn.L1Loss()(logits, target).numpy(), F.l1_loss(logits, target).numpy())
    pos = cs.tensor([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(
        nn.BCEWithLogitsLoss(pos_weight=pos)(logits, target).numpy(),
        F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos).numpy(),
    )
    assert list(nn.CrossEntropyLoss(weight).state_dict()) == ["weight"]  # weights are buffers, as in PyTorch
    assert list(nn.BCEWithLogitsLoss(pos_weight=pos).state_dict()) == ["pos_weight"]


def test_conv_transpose_output_size():
    layer = nn.ConvTranspose2d(2, 2, 3, stride=2)
    x = cs.randn(1, 2, 4, 4)
    assert layer(x).shape == (1, 2, 9, 9)
    assert layer(x, output_size=(10, 10)).shape == (1, 2, 10, 10)
    assert layer(x, output_size=(1, 2, 10, 9)).shape == (1, 2, 10, 9)
    with pytest.raises(ValueError, match=r"ConvTranspose2d: requested output_size \(11, 9\) is not reachable"):
        layer(x, output_size=(11, 9))


def test_float64_layers():
    layer = nn.Conv2d(1, 2, 3, dtype="float64")
    assert layer.weight.dtype == np.float64 and layer.bias.dtype == np.float64
    assert layer(cs.randn(1, 1, 4, 4, dtype=np.float64)).dtype == np.float64
    assert nn.Linear(2, 2, dtype=cs.float64).get_config()["dtype"] == "float64"


# (class name, args, kwargs): built both here and in PyTorch
SPECS = [
    ("Conv1d", (2, 4, 3), {"stride": 2, "padding": 1, "bias": False}),
    ("Conv2d", (1, 6, 5), {"padding": 2}),
    ("Conv2d", (4, 8, (3, 5)), {"groups": 4, "dilation": 2, "padding_mode": "reflect"}),
    ("Conv2d", (2, 3, 4), {"padding": "same", "padding_mode": "circular"}),
    ("Conv3d", (2, 4, 3), {"stride": (1, 2, 2), "padding": "valid"}),
    ("ConvTranspose1d", (4, 2, 3), {"stride": 2, "output_padding": 1}),
    ("ConvTranspose2d", (4, 6, 2), {"stride": 2, "groups": 2}),
    ("ConvTranspose3d", (2, 3, 3), {"padding": 1, "dilation": 2, "bias": False}),
    ("Linear", (400, 120), {}),
    ("Linear", (3, 1), {"bias": False}),
    ("MaxPool1d", (3,), {"stride": 2, "padding": 1}),
    ("MaxPool2d", (2,), {}),
    ("MaxPool2d", ((2, 3),), {"ceil_mode": True, "return_indices": True}),
    ("MaxPool3d", (2,), {"dilation": 2}),
    ("AvgPool1d", (3,), {"padding": 1}),
    ("AvgPool2d", (2,), {"stride": 1, "count_include_pad": False}),
    ("AvgPool3d", (3,), {"divisor_override": 2}),
    ("AdaptiveAvgPool1d", (4,), {}),
    ("AdaptiveAvgPool2d", ((1, 1),), {}),
    ("AdaptiveAvgPool2d", ((5, None),), {}),
    ("AdaptiveAvgPool3d", (2,), {}),
    ("AdaptiveMaxPool2d", (3,), {"return_indices": True}),
    ("Flatten", (), {}),
    ("Unflatten", (1, (16, 5, 5)), {}),
    ("Identity", (), {}),
    ("ReLU", (), {}),
    ("ReLU", (), {"inplace": True}),
    ("LeakyReLU", (0.2,), {}),
    ("ELU", (), {"alpha": 0.5}),
    ("GELU", (), {"approximate": "tanh"}),
    ("Sigmoid", (), {}),
    ("Tanh", (), {}),
    ("Softmax", (), {"dim": 1}),
    ("LogSoftmax", (-1,), {}),
    ("Dropout", (0.25,), {}),
    ("Dropout2d", (), {}),
    ("Dropout3d", (0.1,), {}),
    ("CrossEntropyLoss", (), {"ignore_index": 0, "label_smoothing": 0.1}),
    ("NLLLoss", (), {"reduction": "sum"}),
    ("MultiMarginLoss", (2, 0.5), {}),
    ("MSELoss", (), {}),
    ("L1Loss", (), {"reduction": "none"}),
    ("BCEWithLogitsLoss", (), {}),
]


def _spec_id(spec):
    return spec[0] + "".join(f"-{k}" for k in spec[2])


@pytest.mark.parametrize("spec", SPECS, ids=[_spec_id(s) for s in SPECS])
def test_parameter_shapes_and_repr_equal_pytorch(spec):
    torch = pytest.importorskip("torch")
    name, args, kwargs = spec
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [
        (n, tuple(p.shape)) for n, p in theirs.named_parameters()
    ]


@pytest.mark.parametrize("spec", SPECS, ids=[_spec_id(s) for s in SPECS])
def test_get_config_round_trip(spec):
    name, args, kwargs = spec
    layer = getattr(nn, name)(*args, **kwargs)
    config = layer.get_config()
    rebuilt = type(layer)(**config)
    assert rebuilt.get_config() == config
    assert repr(rebuilt) == repr(layer)
    assert [(n, p.shape, p.dtype) for n, p in rebuilt.named_parameters()] == [
        (n, p.shape, p.dtype) for n, p in layer.named_parameters()
    ]


def test_get_config_holds_every_constructor_argument():
    config = nn.ConvTranspose2d(4, 6, 3, stride=2).get_config()
    assert config == {
        "in_channels": 4, "out_channels": 6, "kernel_size": (3, 3), "stride": (2, 2), "padding": (0, 0),
        "output_padding": (0, 0), "groups": 1, "bias": True, "dilation": (1, 1), "padding_mode": "zeros",
        "dtype": "float32",
    }
    weight = cs.tensor([1.0, 2.0])
    loss = nn.CrossEntropyLoss(weight)
    assert nn.CrossEntropyLoss(**loss.get_config()).weight.numpy().tolist() == [1.0, 2.0]


ERRORS = [
    (lambda: nn.Conv2d(3, 0, 3), "Conv2d: invalid value for argument `out_channels`: expected a positive integer, "
                                 "received 0"),
    (lambda: nn.Conv2d(3, 8, (3, 0)), "Conv2d: invalid value for argument `kernel_size`: expected positive integers, "
                                      "received (3, 0)"),
    (lambda: nn.Conv1d(3, 8, (3, 3)), "Conv1d: invalid value for argument `kernel_size`: expected an integer or a "
                                      "tuple of 1 integers, received (3, 3)"),
    (lambda: nn.Conv2d(3, 8, 3, groups=2), "Conv2d: invalid value for argument `groups`: expected a divisor of "
                                           "in_channels (3) and out_channels (8), received 2"),
    (lambda: nn.Conv2d(3, 8, 3, padding=-1), "Conv2d: invalid value for argument `padding`: expected integers >= 0, "
                                             "received -1"),
    (lambda: nn.Conv2d(3, 8, 3, padding_mode="mirror"), "Conv2d: invalid value for argument `padding_mode`: expected "
                                                        "one of 'zeros', 'reflect', 'replicate', 'circular', received "
                                                        "'mirror'"),
    (lambda: nn.Conv2d(3, 8, 3, stride=2, padding="same"), "Conv2d: invalid value for argument `padding`: expected an "
                                                           "explicit padding for a strided convolution ('same' needs "
                                                           "stride 1), received 'same'"),
    (lambda: nn.Conv2d(3, 8, 3, bias=1), "Conv2d: invalid value for argument `bias`: expected True or False, "
                                         "received 1"),
    (lambda: nn.Conv2d(3, 8, 3, dtype="int64"), "Conv2d: invalid value for argument `dtype`: expected float32 or "
                                                "float64, received 'int64'"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2), "ConvTranspose2d: invalid value for argument "
                                                                      "`output_padding`: expected values smaller than "
                                                                      "stride (2, 2) or dilation (1, 1), received 2"),
    (lambda: nn.ConvTranspose1d(2, 2, 3, padding_mode="reflect"), "ConvTranspose1d: invalid value for argument "
                                                                  "`padding_mode`: expected one of 'zeros', received "
                                                                  "'reflect'"),
    (lambda: nn.Linear(0, 3), "Linear: invalid value for argument `in_features`: expected a positive integer, "
                              "received 0"),
    (lambda: nn.MaxPool2d(2, padding=2), "MaxPool2d: invalid value for argument `padding`: expected at most half the "
                                         "(dilated) kernel size (2, 2), received 2"),
    (lambda: nn.AvgPool2d(2, stride=0), "AvgPool2d: invalid value for argument `stride`: expected positive integers, "
                                        "received 0"),
    (lambda: nn.AdaptiveAvgPool2d((2, 0)), "AdaptiveAvgPool2d: invalid value for argument `output_size`: expected a "
                                           "positive integer or a tuple of 2 positive integers or None, "
                                           "received (2, 0)"),
    (lambda: nn.Dropout(1.5), "Dropout: invalid value for argument `p`: expected a probability in [0, 1], "
                              "received 1.5"),
    (lambda: nn.GELU("fast"), "GELU: invalid value for argument `approximate`: expected one of 'none', 'tanh', "
                              "received 'fast'"),
    (lambda: nn.Softmax(dim=1.0), "Softmax: invalid value for argument `dim`: expected an integer, received 1.0"),
    (lambda: nn.Unflatten(1, (2, 0)), "Unflatten: invalid value for argument `unflattened_size`: expected a "
                                      "non-empty tuple of positive integers (one may be -1), received (2, 0)"),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), "CrossEntropyLoss: invalid value for argument `reduction`: "
                                                   "expected one of 'none', 'mean', 'sum', received 'avg'"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=2), "CrossEntropyLoss: invalid value for argument "
                                                     "`label_smoothing`: expected a number in [0, 1], received 2"),
    (lambda: nn.MultiMarginLoss(p=3), "MultiMarginLoss: invalid value for argument `p`: expected 1 or 2, received 3"),
]


@pytest.mark.parametrize("build, message", ERRORS, ids=[m.split(":")[0] + "-" + m.split("`")[1] for _, m in ERRORS])
def test_constructor_errors(build, message):
    with pytest.raises(ValueError) as info:
        build()
    assert str(info.value) == message


def test_every_bad_argument_reported_at_once():
    with pytest.raises(ValueError) as info:
        nn.Conv2d(0, 8, 3, stride=0, padding_mode="mirror")
    lines = str(info.value).split("\n")
    assert [line.split("`")[1] for line in lines] == ["in_channels", "stride", "padding_mode"]
