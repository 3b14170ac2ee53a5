"""BatchNorm + ReLU run as one op inside nn.Sequential: same values, gradients and statistics; never under hooks."""

import numpy as np
import pytest
from tests.helpers import kernel_tiers

import convstack as cs
from convstack import nn
from convstack.nn.functional.activation import ReLU as ReLUFunction
from convstack.nn.functional.normalization import BatchNorm as BatchNormFunction
from convstack.nn.kernels import tiers
from convstack.nn.modules import fusion


def _model(dtype=np.float32):
    cs.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 5, 3),
                          nn.BatchNorm2d(5), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(5 * 4 * 4, 3),
                          nn.BatchNorm1d(3), nn.ReLU())
    return model.to(dtype)


def _separately(model, x):
    """The model's modules called one by one (what Sequential does without fusion)."""
    for module in model:
        x = module(x)
    return x


def _run(model, x, forward):
    model.zero_grad()
    out = forward(model, x)
    out.backward(cs.tensor(np.linspace(-1, 1, out.numel(), dtype=x.dtype).reshape(out.shape)))
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    stats = [b.numpy().copy() for b in model.buffers()]
    return out.detach().numpy(), x.grad.numpy(), grads, stats


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_fused_sequential_equals_the_modules_run_one_by_one(tier, dtype, training, rng):
    data = rng.standard_normal((6, 3, 6, 6)).astype(dtype)
    results = []
    for forward in (lambda m, x: m(x), _separately):
        model = _model(dtype).train(training)
        x = cs.tensor(data, requires_grad=True)
        with tiers.kernel_tier(tier):
            results.append(_run(model, x, forward))
    (out, grad_x, grads, stats), (out_ref, grad_x_ref, grads_ref, stats_ref) = results
    tolerance = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(out, out_ref, **tolerance)
    np.testing.assert_allclose(grad_x, grad_x_ref, **tolerance)
    for got, want in zip(grads + stats, grads_ref + stats_ref):
        np.testing.assert_allclose(got, want, **tolerance)


def test_a_batch_norm_followed_by_a_relu_runs_as_one_op():
    model = nn.Sequential(nn.BatchNorm2d(2), nn.ReLU())
    out = model(cs.randn(4, 2, 3, 3, requires_grad=True))
    assert type(out.grad_fn) is BatchNormFunction  # no ReLU op in the graph
    assert (out.detach().numpy() >= 0).all()


@pytest.mark.parametrize("watch", ["bn-forward-hook", "relu-forward-hook", "relu-pre-hook", "bn-backward-hook",
                                   "anomaly"])
def test_no_fusion_while_a_hook_or_anomaly_mode_watches_the_layers(watch):
    bn, relu = nn.BatchNorm2d(2), nn.ReLU()
    model = nn.Sequential(bn, relu)
    calls = []
    if watch == "bn-forward-hook":
        bn.register_forward_hook(lambda module, args, output: calls.append(output))
    elif watch == "relu-forward-hook":
        relu.register_forward_hook(lambda module, args, output: calls.append(output))
    elif watch == "relu-pre-hook":
        relu.register_forward_pre_hook(lambda module, args: calls.append(args))
    elif watch == "bn-backward-hook":
        bn.register_full_backward_hook(lambda module, grad_input, grad_output: calls.append(grad_output))
    x = cs.randn(4, 2, 3, 3, requires_grad=True)
    if watch == "anomaly":
        with cs.detect_anomaly():
            assert fusion.fused(bn, relu) is None
            out = model(x)
    else:
        assert fusion.fused(bn, relu) is None
        out = model(x)
    out.sum().backward()
    assert type(out.grad_fn) is not BatchNormFunction
    assert watch == "anomaly" or len(calls) == 1


def test_only_a_relu_is_absorbed(rng):
    for follower in (nn.LeakyReLU(0.1), nn.Sigmoid(), nn.BatchNorm2d(2)):
        assert fusion.fused(nn.BatchNorm2d(2), follower) is None
    assert fusion.fused(nn.ReLU(), nn.BatchNorm2d(2)) is None
    model = nn.Sequential(nn.BatchNorm2d(2), nn.LeakyReLU(0.1))
    out = model(cs.tensor(rng.standard_normal((3, 2, 4, 4)).astype(np.float32), requires_grad=True))
    assert type(out.grad_fn) is not BatchNormFunction


def test_a_subclass_with_its_own_forward_is_not_fused():
    class Shifted(nn.BatchNorm2d):
        def forward(self, input):
            return super().forward(input) + 1.0

    class Leaky(nn.ReLU):
        pass

    assert fusion.fused(Shifted(2), nn.ReLU()) is None
    assert fusion.fused(nn.BatchNorm2d(2), Leaky()) is None
    x = cs.randn(3, 2, 4, 4)
    model = nn.Sequential(Shifted(2), nn.ReLU())
    assert float(model(x).min()) >= 0.0 and float(model(x).mean()) > 0.5  # the shift happened before the ReLU


def test_chain_fuses_a_pair_and_falls_back_to_calling_both(rng):
    bn, relu = nn.BatchNorm2d(3), nn.ReLU()
    x = cs.tensor(rng.standard_normal((2, 3, 4, 4)).astype(np.float32))
    assert type(fusion.chain(bn, relu, x.requires_grad_()).grad_fn) is BatchNormFunction
    bn.eval()  # the same statistics for every call below
    np.testing.assert_allclose(fusion.chain(relu, bn, x).detach().numpy(), bn(relu(x)).detach().numpy(), rtol=1e-6)
    sigmoid = nn.Sigmoid()
    np.testing.assert_allclose(fusion.chain(bn, sigmoid, x).detach().numpy(), sigmoid(bn(x)).detach().numpy(),
                               rtol=1e-6)
    handle = relu.register_forward_hook(lambda module, args, output: None)
    assert type(fusion.chain(bn, relu, x).grad_fn) is ReLUFunction
    handle.remove()


def test_fused_layer_names_itself_in_input_errors():
    model = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU())
    with pytest.raises(ValueError, match="expected an input with 3 channels"):
        model(cs.randn(2, 4, 5, 5))
