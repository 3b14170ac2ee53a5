"""Gradient clipping, as ``torch.nn.utils``: ``clip_grad_norm_`` and ``clip_grad_value_``.

Both act in place on the ``.grad`` of the given parameters, between ``loss.backward()``
and ``optimizer.step()``. Clipping by the global norm is Pascanu et al. 2013.
"""

from __future__ import annotations

import math

import numpy

from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor


def _grads(parameters, op: str) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = []
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: expected tensors, but one of the parameters is {type(p).__name__}")
        if p.grad is not None:
            grads.append(p.grad.data)
    return grads


def _norm(array, norm_type: float):
    xp = get_array_module(array)
    magnitude = xp.abs(array)
    if norm_type == math.inf:
        return magnitude.max() if magnitude.size else xp.zeros((), dtype=array.dtype)
    if norm_type == 0:
        return (magnitude != 0).sum().astype(array.dtype)
    if norm_type == 1:
        return magnitude.sum()
    if norm_type == 2:
        return xp.sqrt((magnitude * magnitude).sum())
    return (magnitude**norm_type).sum() ** (1.0 / norm_type)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients so that their joint norm is at most ``max_norm``; return the norm before clipping.

    The joint norm is the ``norm_type``-norm of all the gradients seen as one vector. Every
    gradient is multiplied by ``min(1, max_norm / (total_norm + 1e-6))``.

    Args:
        parameters: a tensor or an iterable of tensors; those without a gradient are skipped.
        max_norm: the largest allowed norm.
        norm_type: the p of the norm (``float("inf")`` for the largest magnitude).
        error_if_nonfinite: raise ``RuntimeError`` if the total norm is nan or inf.

    Returns:
        the total norm (a 0-d tensor of the gradients' dtype).

    Examples:
        >>> loss.backward()
        >>> clip_grad_norm_(model.parameters(), max_norm=1.0)
        >>> optimizer.step()
    """
    norm_type = float(norm_type)
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)):
        raise invalid("clip_grad_norm_", "max_norm", "a number", max_norm)
    grads = _grads(parameters, "clip_grad_norm_")
    if not grads:
        return Tensor._make(get_array_module().zeros((), dtype="float32"))
    xp = get_array_module(*grads)
    norms = xp.stack([_norm(g, norm_type) for g in grads])
    total = _norm(norms, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    coefficient = min(float(max_norm) / (float(total) + 1e-6), 1.0)
    with numpy.errstate(invalid="ignore"):  # a non-finite norm gives nan gradients, as in PyTorch
        for grad in grads:
            grad *= coefficient
    return Tensor._make(total)


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``, in place.

    Args:
        parameters: a tensor or an iterable of tensors; those without a gradient are skipped.
        clip_value: the largest allowed magnitude.
    """
    if isinstance(clip_value, bool) or not isinstance(clip_value, (int, float)):
        raise invalid("clip_grad_value_", "clip_value", "a number", clip_value)
    clip_value = float(clip_value)
    for grad in _grads(parameters, "clip_grad_value_"):
        get_array_module(grad).clip(grad, -clip_value, clip_value, out=grad)
