"""Inference fusion: conv + batch norm (+ ReLU) as one convolution, only where nothing can tell."""

import numpy as np
import pytest
from tests.helpers import kernel_tiers

import convstack as cs
from convstack import nn
from convstack.nn import fusion


def _layers(rng, dims=2, bias=True, affine=True, groups=1, padding_mode="zeros"):
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims](4, 6, 3, padding=1, bias=bias, groups=groups,
                                                             padding_mode=padding_mode)
    bn = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims](6, affine=affine)
    bn.running_mean.data[:] = rng.standard_normal(6)
    bn.running_var.data[:] = rng.random(6) + 0.5
    if affine:
        bn.weight.data[:] = rng.standard_normal(6)
        bn.bias.data[:] = rng.standard_normal(6)
    return conv, bn.eval(), nn.ReLU()


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("options", [dict(), dict(dims=1), dict(dims=3), dict(bias=False), dict(affine=False),
                                     dict(groups=2), dict(padding_mode="reflect")],
                         ids=["2d", "1d", "3d", "no-bias", "no-affine", "groups", "reflect"])
@pytest.mark.parametrize("with_relu", [True, False], ids=["relu", "no-relu"])
def test_fused_equals_the_modules_one_after_the_other(tier, options, with_relu, rng):
    conv, bn, relu = _layers(rng, **options)
    dims = options.get("dims", 2)
    x = cs.tensor(rng.standard_normal((3, 4) + (7,) * dims).astype(np.float32))
    relu = relu if with_relu else None
    with cs.kernel_tier(tier), cs.no_grad():
        expected = bn(conv(x))
        expected = relu(expected) if relu is not None else expected
        assert fusion.fusable(conv, bn, relu)
        actual = fusion.conv_bn(conv, bn, x, relu)
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_runs_the_modules_wherever_the_fusion_would_show(rng):
    conv, bn, relu = _layers(rng)
    x = cs.tensor(rng.standard_normal((2, 4, 6, 6)).astype(np.float32))
    calls = []
    bn.register_forward_hook(lambda module, inputs, output: calls.append("bn"))
    with cs.no_grad():
        assert not fusion.fusable(conv, bn, relu)  # a hook on the batch norm must see its input
        fusion.conv_bn(conv, bn, x, relu)
    assert calls == ["bn"]
    conv, bn, relu = _layers(rng)
    out = fusion.conv_bn(conv, bn, x, relu)  # gradients recorded: the batch norm's own backward is needed
    assert out.requires_grad and not fusion.fusable(conv, bn, relu)
    out.sum().backward()
    assert conv.weight.grad is not None
    bn.train()
    with cs.no_grad():
        assert not fusion.fusable(conv, bn, relu)  # batch statistics
    bn.eval()
    with cs.no_grad(), cs.detect_anomaly():
        assert not fusion.fusable(conv, bn, relu)  # anomaly mode names each layer


def test_the_fused_convolution_refuses_to_record_a_gradient(rng):
    from convstack.nn.functional.conv import _conv

    x = cs.tensor(rng.standard_normal((1, 2, 5, 5)).astype(np.float32))
    weight = cs.tensor(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), requires_grad=True)
    with pytest.raises(RuntimeError, match="records no gradient: run it under no_grad"):
        _conv("conv2d", 2, x, weight, None, 1, 0, 1, 1, relu=True)
