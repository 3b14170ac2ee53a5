"""Norms, similarities and distances between vectors: ``normalize``, ``cosine_similarity``,
``pairwise_distance``, as ``torch.nn.functional``.

``VectorNorm`` is the p-norm along one dimension with PyTorch's subgradients: 0 where the
norm is 0 (p = 2 and general p), ``sign(x)`` for p = 1, the gradient shared equally by the
tied extremes for p = +-inf, and none for p = 0 (a count). Inputs broadcast against each
other as in arithmetic; a 0-D input is a vector of one element.
"""

from __future__ import annotations

import math
import numbers

import numpy

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid, shape_context
from convstack.ops.arithmetic import unbroadcast
from convstack.tensor import Tensor, as_tensor


class VectorNorm(Function):
    """``(sum_i |x_i|^p)^(1/p)`` along ``dim`` (max |x_i| for p = inf, min for -inf, the non-zero count for 0)."""

    def forward(self, x, *, p, dim, keepdim):
        xp = get_array_module(x)
        magnitude = xp.abs(x)
        if p == math.inf:
            norm = magnitude.max(axis=dim, keepdims=True)
        elif p == -math.inf:
            norm = magnitude.min(axis=dim, keepdims=True)
        elif p == 0:
            norm = (x != 0).sum(axis=dim, keepdims=True).astype(x.dtype)
        elif p == 1:
            norm = magnitude.sum(axis=dim, keepdims=True)
        elif p == 2:
            norm = xp.sqrt((x * x).sum(axis=dim, keepdims=True))
        else:
            with numpy.errstate(divide="ignore"):  # 0 ** p = inf for p < 0: the norm is then 0, as PyTorch's
                norm = (magnitude ** p).sum(axis=dim, keepdims=True) ** (1 / p)
        self.x, self.norm, self.p, self.dim, self.keepdim = x, norm, p, dim, keepdim
        return norm if keepdim else xp.squeeze(norm, axis=dim)

    def backward(self, grad):
        xp = get_array_module(grad)
        x, norm, p, dim = self.x, self.norm, self.p, self.dim
        if not self.keepdim:
            grad = xp.expand_dims(grad, dim)
        if p == 0:
            return (xp.zeros_like(x),)
        if p == 1:
            return (xp.sign(x) * grad,)
        zero_norm = norm == 0
        if p == 2:
            return (x * xp.where(zero_norm, 0, grad / xp.where(zero_norm, 1, norm)),)
        if math.isinf(p):
            extreme = xp.abs(x) == norm  # ties share the gradient
            return (xp.sign(x) * extreme * (grad / extreme.sum(axis=dim, keepdims=True)),)
        magnitude = xp.abs(x)
        with numpy.errstate(divide="ignore", invalid="ignore"):  # |x|^(p-1) at x = 0 for p < 1: masked below
            power = xp.where(magnitude == 0, 0, magnitude ** (p - 1))
            scale = xp.where(zero_norm, 0, grad / xp.where(zero_norm, 1, norm) ** (p - 1))
        return (xp.sign(x) * power * scale,)


class CosineSimilarity(Function):
    """``sum(x1 x2) / (max(|x1|, eps) max(|x2|, eps))`` along ``dim``, on broadcast inputs.

    The gradient follows PyTorch's: through each norm as if it were not clamped by ``eps``
    (``d max(n, eps) / dn = 1``), 0 where a norm is 0.
    """

    def forward(self, x1, x2, *, dim, eps):
        xp = get_array_module(x1, x2)
        a, b = xp.broadcast_arrays(x1, x2)
        norm1 = xp.sqrt((a * a).sum(axis=dim, keepdims=True))
        norm2 = xp.sqrt((b * b).sum(axis=dim, keepdims=True))
        clamped1, clamped2 = xp.maximum(norm1, eps), xp.maximum(norm2, eps)
        similarity = ((a / clamped1) * (b / clamped2)).sum(axis=dim, keepdims=True)
        self.saved = (a, b, norm1, norm2, clamped1, clamped2, similarity)
        self.shapes, self.dim = (x1.shape, x2.shape), dim
        return xp.squeeze(similarity, axis=dim)

    def backward(self, grad):
        xp = get_array_module(grad)
        a, b, norm1, norm2, clamped1, clamped2, similarity = self.saved
        grad = xp.expand_dims(grad, self.dim)
        denominator = clamped1 * clamped2
        grads = []
        for mine, other, norm, clamped, shape in ((a, b, norm1, clamped1, self.shapes[0]),
                                                  (b, a, norm2, clamped2, self.shapes[1])):
            unit = mine / xp.where(norm == 0, 1, norm)  # d|x|/dx, 0 where |x| = 0
            grads.append(unbroadcast(grad * (other / denominator - similarity / clamped * unit), shape))
        return tuple(grads)


def _check_p(op: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or math.isnan(p):
        raise invalid(op, "p", "a real number (or inf)", p)
    return float(p)


def _positive(op: str, argument: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise invalid(op, argument, "a non-negative number", value)
    return float(value)


def _check_dim(op: str, dim, shape) -> int:
    rank = max(len(shape), 1)
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -rank <= dim < rank:
        raise invalid(op, "dim", f"an integer in [{-rank}, {rank - 1}]", dim, f"input shape {tuple(shape)}")
    return int(dim) % rank


def _float(op: str, name: str, value) -> Tensor:
    value = as_tensor(value)
    if value.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point {name}, received dtype {value.dtype}")
    return value


def _broadcast_shape(op: str, x1: Tensor, x2: Tensor) -> tuple:
    try:
        return numpy.broadcast_shapes(x1.shape, x2.shape)  # shape arithmetic only
    except ValueError:
        raise ValueError(f"{op}: x1 and x2 must broadcast to one shape, received "
                         f"{shape_context(x1=x1.shape, x2=x2.shape)}") from None


def vector_norm(op: str, input: Tensor, p: float, dim: int, keepdim: bool = False) -> Tensor:
    """The p-norm of ``input`` along ``dim`` (checked); a 0-D input counts as one element."""
    if input.ndim == 0:
        return VectorNorm.apply(input.reshape(1), p=p, dim=0, keepdim=False).reshape(())
    if math.isinf(p) and input.shape[dim] == 0:
        raise ValueError(f"{op}: cannot take the {p} norm along dimension {dim} of size 0 (it has no identity) "
                         f"(input shape {input.shape})")
    return VectorNorm.apply(input, p=p, dim=dim, keepdim=keepdim)


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None) -> Tensor:
    """``x / max(||x||_p, eps)`` along ``dim``: each slice scaled to unit p-norm.

    Args:
        input: a float tensor of any shape (a 0-D one with ``dim=0`` or ``-1``).
        p: the norm's exponent (a real number, ``inf`` or ``-inf``).
        dim: the dimension normalised.
        eps: the smallest divisor, so that zero vectors stay zero.
        out: not supported (convstack returns a new tensor); must be None.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.normalize(cs.tensor([[3.0, 4.0]]))
        tensor([[0.6, 0.8]])
    """
    op = "normalize"
    if out is not None:
        raise invalid(op, "out", "None (convstack returns a new tensor)", out)
    input = _float(op, "input", input)
    p, eps = _check_p(op, p), _positive(op, "eps", eps)
    axis = _check_dim(op, dim, input.shape)
    if input.ndim == 0:
        return normalize(input.reshape(1), p, 0, eps).reshape(())
    norm = vector_norm(op, input, p, axis, keepdim=True)
    return input / norm.clamp(min=eps)


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``x1 . x2 / (max(||x1||, eps) max(||x2||, eps))`` along ``dim``.

    Args:
        x1, x2: float tensors that broadcast to one shape.
        dim: the dimension of the vectors compared.
        eps: the smallest norm, so that zero vectors give 0.

    Shape:
        - Input: x1 and x2 broadcasting to (*1, D, *2). Output: (*1, *2).

    Examples:
        >>> F.cosine_similarity(cs.tensor([[1.0, 0.0]]), cs.tensor([[1.0, 1.0]]))
        tensor([0.7071])
    """
    op = "cosine_similarity"
    x1, x2 = _float(op, "x1", x1), _float(op, "x2", x2)
    shape = _broadcast_shape(op, x1, x2)
    axis = _check_dim(op, dim, shape)
    eps = _positive(op, "eps", eps)
    if len(shape) == 0:
        return CosineSimilarity.apply(x1.reshape(1), x2.reshape(1), dim=0, eps=eps).reshape(())
    return CosineSimilarity.apply(x1, x2, dim=axis, eps=eps)


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """``||x1 - x2 + eps||_p`` along the last dimension (``eps`` keeps the norm differentiable at 0).

    Args:
        x1, x2: float tensors that broadcast to one shape, e.g. (N, D) and (N, D) or (D,).
        p: the norm's exponent (a real number, ``inf`` or ``-inf``).
        eps: added to every difference.
        keepdim: keep the last dimension (of size 1).

    Shape:
        - Input: (*, D). Output: (*), or (*, 1) with ``keepdim``; 0-D for 1-D or 0-D inputs.

    Examples:
        >>> F.pairwise_distance(cs.tensor([[0.0, 0.0]]), cs.tensor([[3.0, 4.0]]), eps=0.0)
        tensor([5.])
    """
    op = "pairwise_distance"
    x1, x2 = _float(op, "x1", x1), _float(op, "x2", x2)
    shape = _broadcast_shape(op, x1, x2)
    p, eps = _check_p(op, p), _positive(op, "eps", eps)
    if not isinstance(keepdim, bool):
        raise invalid(op, "keepdim", "True or False", keepdim)
    difference = x1 - x2 + eps
    return vector_norm(op, difference, p, max(len(shape), 1) - 1, keepdim)
