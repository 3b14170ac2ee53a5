"""Shared checks that make a new op's tests a few lines long.

``check_against_torch``: forward output and the gradient of every float input agree
with PyTorch (skipped cleanly when PyTorch is not installed).
``check_gradients``: float64 central finite differences agree with backward(),
no PyTorch needed.
``write_band_dataset``: tiny MNIST-shaped IDX files that a network learns in an epoch.
"""

from __future__ import annotations

import numpy as np
import pytest

import convstack as cs


def _torch():
    return pytest.importorskip("torch")


def _is_float(array) -> bool:
    return isinstance(array, np.ndarray) and array.dtype.kind == "f"


def check_against_torch(cs_fn, torch_fn, inputs, rtol=1e-4, atol=1e-5, seed=0, check_grad=True):
    """Run ``cs_fn`` on convstack tensors and ``torch_fn`` on torch tensors made from ``inputs``.

    ``inputs`` is a list of NumPy arrays; float arrays require grad, other arrays
    (class indices, masks) are passed without. The functions may return one tensor
    or a tuple whose first element is the differentiable output. Values are compared,
    then a random upstream gradient is pushed back through both and the gradients of
    every float input are compared.
    """
    torch = _torch()
    cs_inputs = [
        cs.tensor(a, requires_grad=_is_float(a) and check_grad) if isinstance(a, np.ndarray) else a for a in inputs
    ]
    torch_inputs = [
        torch.tensor(a, requires_grad=_is_float(a) and check_grad) if isinstance(a, np.ndarray) else a for a in inputs
    ]
    cs_out = cs_fn(*cs_inputs)
    torch_out = torch_fn(*torch_inputs)
    if isinstance(cs_out, tuple):
        for extra_cs, extra_torch in zip(cs_out[1:], torch_out[1:]):
            np.testing.assert_array_equal(extra_cs.numpy(), extra_torch.detach().numpy())
        cs_out, torch_out = cs_out[0], torch_out[0]
    expected = torch_out.detach().numpy()
    assert cs_out.shape == expected.shape, f"shape {cs_out.shape} != torch {expected.shape}"
    np.testing.assert_allclose(cs_out.detach().numpy(), expected, rtol=rtol, atol=atol, err_msg="forward")
    if not check_grad or not any(_is_float(a) for a in inputs):
        return cs_out
    upstream = np.random.default_rng(seed).standard_normal(expected.shape).astype(expected.dtype)
    cs_out.backward(upstream)
    torch_out.backward(torch.tensor(upstream))
    for position, (cs_in, torch_in, raw) in enumerate(zip(cs_inputs, torch_inputs, inputs)):
        if not _is_float(raw):
            continue
        assert (cs_in.grad is None) == (torch_in.grad is None), f"input {position}: gradient presence differs"
        if cs_in.grad is None:
            continue
        scale = max(1.0, float(np.abs(torch_in.grad.numpy()).max(initial=0.0)))  # initial: empty inputs
        np.testing.assert_allclose(
            cs_in.grad.numpy(),
            torch_in.grad.numpy(),
            rtol=rtol,
            atol=atol * scale,
            err_msg=f"gradient of input {position}",
        )
    return cs_out


def check_gradients(fn, inputs, eps=1e-6, rtol=1e-5, atol=1e-6, seed=0):
    """Compare ``backward()`` with float64 central differences for every float input.

    ``fn`` takes convstack tensors and returns a tensor; the scalar checked is
    ``sum(fn(*inputs) * w)`` for a fixed random ``w``. Keep inputs small: the check
    evaluates ``fn`` twice per input element.
    """
    rng = np.random.default_rng(seed)
    arrays = [a.astype(np.float64) if _is_float(a) else a for a in inputs]
    tensors = [cs.tensor(a, requires_grad=True) if _is_float(a) else a for a in arrays]
    out = fn(*tensors)
    out = out[0] if isinstance(out, tuple) else out
    weights = rng.standard_normal(out.shape)
    (out * cs.tensor(weights, dtype=np.float64)).sum().backward()

    def scalar(values):
        with cs.no_grad():
            args = [cs.tensor(v) if _is_float(v) else v for v in values]
            result = fn(*args)
            result = result[0] if isinstance(result, tuple) else result
            return float((result.numpy().astype(np.float64) * weights).sum())

    for position, array in enumerate(arrays):
        if not _is_float(array):
            continue
        numeric = np.zeros_like(array)
        flat = array.reshape(-1)
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            plus = scalar(arrays)
            flat[i] = original - eps
            minus = scalar(arrays)
            flat[i] = original
            numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
        analytic = tensors[position].grad
        analytic = np.zeros_like(array) if analytic is None else analytic.numpy()
        np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol, err_msg=f"gradient of input {position}")


def kernel_tiers():
    """The kernel tiers to run kernel tests on: the NumPy reference, and the compiled tier where Numba imports."""
    from convstack.nn.kernels import tiers

    return ["numpy", "numba"] if tiers.numba_available() else ["numpy"]


def write_band_dataset(root, counts, *, columns=False):
    """IDX files in ``root`` (``counts``: (train, test) images, 28x28) whose class is a bright band's place.

    Class c brightens rows ``2 + 2c`` to ``4 + 2c`` (columns with ``columns=True``) over noise in [0, 40):
    learnable in one epoch, by the command line's tests. Returns ``root``.
    """
    from convstack.data import write_idx

    rng = np.random.default_rng(0)
    for prefix, n in zip(("train", "t10k"), counts):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28))
        for i, label in enumerate(labels):
            band = slice(2 + 2 * label, 5 + 2 * label)
            images[(i, slice(None), band) if columns else (i, band)] += 200
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images.astype(np.uint8))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root
