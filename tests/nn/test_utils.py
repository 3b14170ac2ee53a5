"""clip_grad_norm_ and clip_grad_value_ against torch.nn.utils."""

from __future__ import annotations

import numpy as np
import pytest

import convstack as cs
from convstack.nn.utils import clip_grad_norm_, clip_grad_value_

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (5,), (2, 2, 2)]


def pair(dtype=np.float64, scale=1.0, with_none=True):
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [rng.standard_normal(s).astype(dtype) * scale for s in SHAPES]
    ours, theirs = [], []
    for index, (v, g) in enumerate(zip(values, grads)):
        p, q = cs.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
        if not (with_none and index == 1):
            p.grad, q.grad = cs.tensor(g), torch.tensor(g)
        ours.append(p)
        theirs.append(q)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.0, float("inf"), 0.5])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype):
    ours, theirs = pair(dtype)
    total = clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    tolerance = 1e-12 if dtype == np.float64 else 1e-6
    assert isinstance(total, cs.Tensor) and total.shape == () and total.dtype == dtype
    np.testing.assert_allclose(float(total), float(expected), rtol=tolerance)
    for p, q in zip(ours, theirs):
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=tolerance, atol=tolerance)


def test_clip_grad_norm_single_tensor_and_no_grads():
    p = cs.tensor([3.0, 4.0], requires_grad=True)
    p.grad = cs.tensor([3.0, 4.0])
    assert float(clip_grad_norm_(p, 1.0)) == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    assert float(clip_grad_norm_([cs.tensor([1.0], requires_grad=True)], 1.0)) == 0.0


def test_clip_grad_norm_error_if_nonfinite():
    p = cs.tensor([1.0, 2.0], requires_grad=True)
    p.grad = cs.tensor([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="total norm of order 2.0 .* non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert float(clip_grad_norm_([p], 1.0)) == np.inf


@pytest.mark.parametrize("clip_value", [0.3, 5.0])
def test_clip_grad_value_matches_torch(clip_value):
    ours, theirs = pair(scale=2.0)
    arrays = [p.grad.data for p in ours if p.grad is not None]
    assert clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for p, q in zip(ours, theirs):
        if p.grad is not None:
            np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    assert all(p.grad.data is a for p, a in zip([p for p in ours if p.grad is not None], arrays))  # in place
