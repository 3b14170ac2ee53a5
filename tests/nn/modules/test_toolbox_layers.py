"""The practitioner's layers: layer/group/instance norm, PReLU and the newer activations, max unpooling,
adaptive max pooling in 1-D and 3-D. repr and state dicts equal PyTorch's, a twin network matches PyTorch's
outputs and gradients, instance norm's running statistics, get_config round trips, constructor errors."""

import doctest
import importlib

import numpy as np
import pytest
from tests.helpers import check_against_torch

import convstack as cs
from convstack import nn


def _torch():
    return pytest.importorskip("torch")


def _array(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


SPECS = [
    ("LayerNorm", (8,), {}),
    ("LayerNorm", ([3, 4],), {"elementwise_affine": False}),
    ("LayerNorm", (5,), {"bias": False, "eps": 1e-6}),
    ("GroupNorm", (2, 4), {}),
    ("GroupNorm", (3, 6), {"affine": False}),
    ("GroupNorm", (1, 6), {"bias": False}),
    ("InstanceNorm1d", (3,), {}),
    ("InstanceNorm2d", (3,), {"affine": True, "track_running_stats": True}),
    ("InstanceNorm3d", (2,), {"momentum": None, "eps": 1e-3}),
    ("PReLU", (), {}),
    ("PReLU", (3,), {"init": 0.1}),
    ("ReLU6", (), {}),
    ("ReLU6", (), {"inplace": True}),
    ("Hardsigmoid", (), {}),
    ("Hardswish", (), {}),
    ("SiLU", (), {}),
    ("Mish", (), {}),
    ("Softplus", (), {"beta": 2.0, "threshold": 10.0}),
    ("MaxUnpool1d", (2,), {}),
    ("MaxUnpool2d", (3,), {"stride": 2, "padding": 1}),
    ("MaxUnpool3d", ((2, 1, 2),), {}),
    ("AdaptiveMaxPool1d", (3,), {}),
    ("AdaptiveMaxPool2d", ((2, None),), {}),
    ("AdaptiveMaxPool3d", ((1, 2, 2),), {"return_indices": True}),
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
    for (n, mine), their in zip(ours.state_dict().items(), theirs.state_dict().values()):
        np.testing.assert_array_equal(mine.numpy(), their.numpy(), err_msg=n)  # the same initial values


@pytest.mark.parametrize("spec", SPECS, ids=[_spec_id(s) for s in SPECS])
def test_get_config_round_trip(spec):
    name, args, kwargs = spec
    layer = getattr(nn, name)(*args, **kwargs)
    config = layer.get_config()
    rebuilt = type(layer)(**config)
    assert rebuilt.get_config() == config
    assert repr(rebuilt) == repr(layer)


def _twin(lib):
    return lib.Sequential(
        lib.Conv2d(2, 4, 3, padding=1), lib.GroupNorm(2, 4), lib.SiLU(),
        lib.Conv2d(4, 6, 3, padding=1), lib.InstanceNorm2d(6, affine=True), lib.Hardswish(),
        lib.Conv2d(6, 4, 3), lib.LayerNorm([4, 6, 6]), lib.Mish(), lib.AdaptiveMaxPool2d(3),
        lib.Flatten(), lib.Linear(36, 12), lib.PReLU(), lib.Linear(12, 8), lib.ReLU6(), lib.Softplus(beta=2.0),
        lib.Linear(8, 6), lib.Hardsigmoid(), lib.Unflatten(1, (2, 3)), lib.PReLU(2), lib.Flatten(),
    )


def test_twin_network_outputs_and_gradients_match_pytorch():
    torch = _torch()
    ours, theirs = _twin(nn), _twin(torch.nn)
    assert repr(ours) == repr(theirs)
    with torch.no_grad():  # non-trivial affine parameters and slopes
        for name, param in theirs.named_parameters():
            if "weight" in name and param.ndim == 1:
                param.copy_(torch.tensor(_array(param.shape, seed=len(name)) * 0.3 + 1.0))
            elif "bias" in name and param.ndim == 1:
                param.copy_(torch.tensor(_array(param.shape, seed=len(name)) * 0.3))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = _array((3, 2, 8, 8), seed=1)
    check_against_torch(ours, theirs, [x], rtol=1e-4, atol=1e-5)
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        np.testing.assert_allclose(param.grad.numpy(), theirs_params[name].grad.numpy(), rtol=1e-3, atol=1e-5,
                                   err_msg=name)


@pytest.mark.parametrize("name, shape", [("InstanceNorm1d", (4, 3, 6)), ("InstanceNorm2d", (2, 3, 4, 4)),
                                         ("InstanceNorm3d", (2, 3, 2, 3, 2)), ("InstanceNorm2d", (3, 4, 4))])
def test_instance_norm_tracking_running_stats_matches_torch_in_training_and_eval(name, shape):
    torch = _torch()
    ours = getattr(nn, name)(3, affine=True, track_running_stats=True, momentum=0.2, dtype="float64")
    theirs = getattr(torch.nn, name)(3, affine=True, track_running_stats=True, momentum=0.2, dtype=torch.float64)
    for step in range(3):
        check_against_torch(ours, theirs, [_array(shape, seed=step, dtype=np.float64) * 2 + step],
                            rtol=1e-10, atol=1e-10)
    for buffer in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(ours, buffer).numpy(), getattr(theirs, buffer).numpy(), rtol=1e-12)
    ours.eval(), theirs.eval()
    check_against_torch(ours, theirs, [_array(shape, seed=7, dtype=np.float64)], rtol=1e-10, atol=1e-10)


def test_instance_norm_without_tracking_normalises_each_plane_in_eval_mode_too():
    layer = nn.InstanceNorm2d(2).eval()
    out = layer(cs.tensor(_array((2, 2, 5, 5)) * 3 + 4)).numpy().reshape(4, -1)
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-5)
    assert list(layer.state_dict()) == []


def test_layer_norm_and_group_norm_do_not_depend_on_the_batch_or_the_mode():
    x = cs.tensor(_array((4, 6, 3, 3)))
    for layer in (nn.LayerNorm([6, 3, 3]), nn.GroupNorm(3, 6)):
        whole = layer(x).detach().numpy()
        layer.eval()
        np.testing.assert_allclose(layer(x[2:3]).detach().numpy(), whole[2:3], rtol=1e-5, atol=1e-6)


def test_encoder_decoder_with_unpooling_matches_torch():
    torch = _torch()

    def parts(lib):
        return (lib.Conv2d(1, 3, 3, padding=1), lib.MaxPool2d(2, return_indices=True), lib.MaxUnpool2d(2),
                lib.Conv2d(3, 1, 3, padding=1))

    ours, theirs = parts(nn), parts(torch.nn)
    for mine, their in zip(ours, theirs):
        mine.load_state_dict({k: v.numpy() for k, v in their.state_dict().items()})

    def run(layers, x):
        encoded, indices = layers[1](layers[0](x))
        return layers[3](layers[2](encoded, indices, output_size=x.shape))

    check_against_torch(lambda x: run(ours, x), lambda x: run(theirs, x), [_array((2, 1, 7, 6))])


@pytest.mark.parametrize("d", [1, 3])
def test_adaptive_max_pool_layers_match_torch(d):
    torch = _torch()
    shape = (2, 3, 11) if d == 1 else (1, 2, 5, 7, 4)
    size = 4 if d == 1 else (2, 3, None)
    name = f"AdaptiveMaxPool{d}d"
    ours, theirs = getattr(nn, name)(size, True), getattr(torch.nn, name)(size, True)
    check_against_torch(ours, theirs, [_array(shape)])


def test_prelu_learns_its_slope():
    layer = nn.PReLU()
    x = cs.tensor([-2.0, -1.0, 3.0])
    layer(x).sum().backward()
    np.testing.assert_allclose(layer.weight.grad.numpy(), [-3.0])


def test_instance_norm_warns_when_unused_num_features_differ():
    with pytest.warns(UserWarning, match=r"InstanceNorm1d: expected an input with 3 channels \(num_features\), "
                                         r"received shape \(2, 4, 5\); num_features is not used when affine=False"):
        nn.InstanceNorm1d(3)(cs.randn(2, 4, 5))


ERRORS = [
    (lambda: nn.GroupNorm(3, 4), "GroupNorm: invalid value for argument `num_groups`: expected a divisor of "
                                 "num_channels (4), received 3"),
    (lambda: nn.GroupNorm(2, 4)(cs.ones(2, 6, 3)),
     "GroupNorm: expected an input (N, 4, *) with num_channels=4 channels, received shape (2, 6, 3)"),
    (lambda: nn.LayerNorm(0), "LayerNorm: invalid value for argument `normalized_shape`: expected a positive integer "
                              "or a non-empty tuple of positive integers, received 0"),
    (lambda: nn.LayerNorm(4)(cs.ones(2, 3)), "layer_norm: invalid value for argument `normalized_shape`: expected the "
                                             "input's trailing sizes, e.g. (3,), received (4,) (input shape (2, 3))"),
    (lambda: nn.InstanceNorm2d(3, affine=True)(cs.ones(2, 4, 3, 3)), "InstanceNorm2d: expected an input with 3 "
                                                                     "channels (num_features), received shape "
                                                                     "(2, 4, 3, 3)"),
    (lambda: nn.InstanceNorm2d(3)(cs.ones(2, 3)), "InstanceNorm2d: expected a 3-D (unbatched) or 4-D input, received "
                                                  "a 2-D input of shape (2, 3)"),
    (lambda: nn.PReLU(0), "PReLU: invalid value for argument `num_parameters`: expected a positive integer, "
                          "received 0"),
    (lambda: nn.PReLU(3)(cs.ones(2, 4)), "prelu: invalid value for argument `weight`: expected a 1-D float32 tensor "
                                         "of 1 or 4 values (one per channel, dim 1), received float32 of shape (3,) "
                                         "(input shape (2, 4))"),
    (lambda: nn.Softplus(beta=0), "Softplus: invalid value for argument `beta`: expected a non-zero number, "
                                  "received 0"),
    (lambda: nn.SiLU(inplace=1), "SiLU: invalid value for argument `inplace`: expected True or False, received 1"),
    (lambda: nn.MaxUnpool2d(0), "MaxUnpool2d: invalid value for argument `kernel_size`: expected positive integers, "
                                "received 0"),
    (lambda: nn.AdaptiveMaxPool3d((1, 2)), "AdaptiveMaxPool3d: invalid value for argument `output_size`: expected a "
                                           "positive integer or a tuple of 3 positive integers or None, received "
                                           "(1, 2)"),
]


@pytest.mark.parametrize("call, message", ERRORS)
def test_errors_are_pinned(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message


@pytest.mark.parametrize("module", ["activation", "adaptive_pooling", "per_sample_normalization", "unpooling"])
def test_docstring_examples_run(module):
    module = importlib.import_module(f"convstack.nn.modules.{module}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
