"""Forward pre-hooks, forward hooks and full backward hooks, and their handles."""

import numpy as np
import pytest

import convstack as cs
from convstack import nn


def test_forward_pre_hook_and_forward_hook_replace_values_in_order():
    layer = nn.Linear(3, 2)
    calls = []

    def pre(module, args):
        calls.append("pre")
        assert module is layer and isinstance(args, tuple)
        return args[0] * 0  # a bare tensor is wrapped into a 1-tuple

    def post(module, args, output):
        calls.append("post")
        assert not args[0].numpy().any()
        return output + 1

    h1, h2 = layer.register_forward_pre_hook(pre), layer.register_forward_hook(post)
    out = layer(cs.randn(4, 3))
    expected = np.broadcast_to(layer.bias.detach().numpy() + 1, (4, 2))
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-6)
    assert calls == ["pre", "post"]
    h1.remove()
    h2.remove()
    h2.remove()  # removing twice is harmless
    layer(cs.randn(1, 3))
    assert calls == ["pre", "post"]


def test_hook_handle_as_context_manager():
    layer, seen = nn.ReLU(), []
    with layer.register_forward_hook(lambda m, a, o: seen.append(o.shape)):
        layer(cs.ones(2))
    layer(cs.ones(3))
    assert seen == [(2,)]


def test_full_backward_hook_shapes_and_values():
    layer = nn.Linear(3, 2)
    records = []
    layer.register_full_backward_hook(lambda m, gi, go: records.append((m, gi, go)))
    x = cs.randn(4, 3, requires_grad=True)
    upstream = np.random.default_rng(1).standard_normal((4, 2)).astype(np.float32)
    layer(x).backward(upstream)
    (module, grad_input, grad_output), = records
    assert module is layer and len(grad_input) == 1 and len(grad_output) == 1
    assert grad_input[0].shape == (4, 3) and grad_output[0].shape == (4, 2)
    np.testing.assert_allclose(grad_output[0].numpy(), upstream)
    np.testing.assert_allclose(grad_input[0].numpy(), upstream @ layer.weight.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), grad_input[0].numpy())


def test_backward_hook_sees_only_the_modules_share_of_a_shared_input():
    layer, grads = nn.Identity(), []
    layer.register_full_backward_hook(lambda m, gi, go: grads.append(gi[0].numpy().copy()))
    x = cs.ones(3, requires_grad=True)
    (layer(x) * 2 + x * 5).sum().backward()
    np.testing.assert_array_equal(grads[0], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 7.0, 7.0])


def test_backward_hook_without_input_grad_and_in_reverse_layer_order():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1))
    order = []
    for name in ("0", "2"):
        model.get_submodule(name).register_full_backward_hook(
            lambda m, gi, go, name=name: order.append((name, gi[0] is None))
        )
    model(cs.randn(2, 3)).sum().backward()  # the input needs no gradient: the first layer sees None
    assert order == [("2", False), ("0", True)]


def test_backward_hook_can_replace_grad_input_and_be_removed():
    layer = nn.Linear(2, 2)
    handle = layer.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0,))
    x = cs.randn(3, 2, requires_grad=True)
    layer(x).sum().backward()
    assert not x.grad.numpy().any()
    assert layer.weight.grad.numpy().any()
    handle.remove()
    x.grad = None
    layer(x).sum().backward()
    assert x.grad.numpy().any()


def test_backward_hook_replacement_needs_a_single_input():
    class Add(nn.Module):
        def forward(self, a, b):
            return a + b

    module = Add()
    module.register_full_backward_hook(lambda m, gi, go: gi)
    a, b = cs.ones(2, requires_grad=True), cs.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="exactly one input requires grad; 2 do"):
        module(a, b).sum().backward()


def test_backward_hook_grad_input_has_one_entry_per_tensor_argument():
    class Scale(nn.Module):
        def forward(self, x, factor, y):
            return x * factor + y

    module, seen = Scale(), []
    module.register_full_backward_hook(lambda m, gi, go: seen.append([g if g is None else g.shape for g in gi]))
    module(cs.ones(2, requires_grad=True), 3.0, cs.ones(2)).sum().backward()
    assert seen == [[(2,), None]]
