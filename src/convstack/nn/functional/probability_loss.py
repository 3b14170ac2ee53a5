"""Losses on probabilities: binary cross-entropy (on probabilities, or on logits) and the KL divergence.

``binary_cross_entropy`` takes probabilities, as after a sigmoid; its logarithms are clamped
at -100 so that a saturated prediction gives a large but finite loss, as PyTorch's do.
``binary_cross_entropy_with_logits`` takes the scores before the sigmoid and never
overflows: prefer it for training. ``kl_div`` compares log-probabilities with a target
distribution (Kullback & Leibler 1951), as knowledge distillation does (Hinton et al. 2015).
"""

from __future__ import annotations

import warnings

import numpy

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._reduction import (
    apply_reduction,
    broadcast_option,
    check_reduction,
    check_same_shape,
    float_target,
)
from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor, as_tensor

_LOG_FLOOR = -100.0  # PyTorch's clamp of log(p) and log(1 - p) in binary_cross_entropy
# PyTorch's floor of p (1 - p) in binary_cross_entropy's input gradient: the float32 constant 1e-12
_EPSILON = float(numpy.float32(1e-12))


class BinaryCrossEntropy(Function):
    """``-w (t max(log p, -100) + (1 - t) max(log(1 - p), -100))`` for probabilities ``p``.

    Gradients, as PyTorch's: ``w (p - t) / max(p (1 - p), 1e-12)`` for ``p``, and
    ``w (log(1 - p) - log p)`` (unclamped) for ``t``.
    """

    def forward(self, p, target, *, weight):
        xp = get_array_module(p)
        with numpy.errstate(divide="ignore"):  # log(0) = -inf, clamped below
            self.log_p, self.log_q = xp.log(p), xp.log1p(-p)  # log p, log(1 - p)
        loss = -(target * xp.maximum(self.log_p, _LOG_FLOOR) + (1 - target) * xp.maximum(self.log_q, _LOG_FLOOR))
        self.p, self.target, self.weight = p, target, weight
        return loss if weight is None else loss * weight

    def backward(self, grad):
        xp = get_array_module(grad)
        if self.weight is not None:
            grad = grad * self.weight
        grad_p = grad_target = None
        if self.needs_input_grad[0]:
            grad_p = grad * (self.p - self.target) / xp.maximum(self.p * (1 - self.p), _EPSILON)
        if self.needs_input_grad[1]:
            grad_target = grad * (self.log_q - self.log_p)
        return grad_p, grad_target


class BinaryCrossEntropyWithLogits(Function):
    """``w * ((1 - t) x + (1 + (pos_weight - 1) t) log(1 + exp(-x)))``, with a stable softplus."""

    def forward(self, x, target, *, weight, pos_weight):
        xp = get_array_module(x)
        self.softplus_neg = xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0)  # log(1 + e^-x)
        self.log_weight = 1 if pos_weight is None else (pos_weight - 1) * target + 1
        self.x, self.target, self.weight, self.pos_weight = x, target, weight, pos_weight
        loss = (1 - target) * x + self.log_weight * self.softplus_neg
        return loss if weight is None else loss * weight

    def backward(self, grad):
        xp = get_array_module(grad)
        if self.weight is not None:
            grad = grad * self.weight
        grad_x = grad_target = None
        if self.needs_input_grad[0]:
            sigmoid_neg = xp.exp(-(self.x + self.softplus_neg))  # 1 - sigmoid(x) = exp(-softplus(x))
            grad_x = grad * ((1 - self.target) - self.log_weight * sigmoid_neg)
        if self.needs_input_grad[1]:
            dloss_dtarget = -self.x
            if self.pos_weight is not None:
                dloss_dtarget = dloss_dtarget + (self.pos_weight - 1) * self.softplus_neg
            grad_target = grad * dloss_dtarget
        return grad_x, grad_target


class KLDivergence(Function):
    """Per element ``t (log t - x)`` (0 where ``t = 0``), or ``exp(t) (t - x)`` with ``log_target``.

    ``x`` holds log-probabilities. Gradients: ``-t`` (``-exp(t)``) for ``x``; ``log t + 1 - x``
    (``exp(t) (t - x + 1)``) for the target.
    """

    def forward(self, x, target, *, log_target):
        xp = get_array_module(x)
        self.x, self.target, self.log_target = x, target, log_target
        if log_target:
            self.probability = xp.exp(target)
            return self.probability * (target - x)
        with numpy.errstate(divide="ignore", invalid="ignore"):
            self.log_t = xp.log(target)
            x_log_x = xp.where(target == 0, 0, target * self.log_t)  # xlogy(t, t): 0 at t = 0
        return (x_log_x - target * x).astype(x.dtype, copy=False)

    def backward(self, grad):
        grad_x = grad_target = None
        if self.needs_input_grad[0]:
            grad_x = -grad * (self.probability if self.log_target else self.target)
        if self.needs_input_grad[1]:
            if self.log_target:
                grad_target = grad * self.probability * (self.target - self.x + 1)
            else:
                grad_target = grad * (self.log_t + 1 - self.x)
        return grad_x, grad_target


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy between probabilities ``input`` and targets in [0, 1], as PyTorch.

    ``loss = -w [t log p + (1 - t) log(1 - p)]``, each logarithm clamped at -100 (so a
    confidently wrong prediction costs at most 100, not infinity).

    Args:
        input: probabilities in [0, 1] (after a sigmoid), any shape.
        target: probabilities of the same shape.
        weight: rescaling weight broadcastable to the input's shape.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.

    Shape:
        - Output: scalar, or the input's shape with ``reduction='none'``.

    Examples:
        >>> F.binary_cross_entropy(cs.tensor([0.5, 1.0]), cs.tensor([1.0, 0.0]), reduction="none")
        tensor([  0.6931, 100.    ])
    """
    op = "binary_cross_entropy"
    input = as_tensor(input)
    check_reduction(op, reduction)
    target = float_target(op, input, target)
    data = input.data
    outside = ~((data >= 0) & (data <= 1))  # NaN counts as outside
    if outside.any():
        raise ValueError(f"{op}: expected every element of input in [0, 1] (probabilities), received "
                         f"{float(data[outside].reshape(-1)[0])!r}; for scores use binary_cross_entropy_with_logits")
    loss = BinaryCrossEntropy.apply(input, target, weight=broadcast_option(op, "weight", weight, input))
    return apply_reduction(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean", pos_weight=None) -> Tensor:
    """Binary cross-entropy of ``sigmoid(input)`` against ``target`` in [0, 1], computed on the logits.

    ``loss = -w [pos_weight t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))]``, evaluated as
    ``(1 - t) x + (1 + (pos_weight - 1) t) softplus(-x)`` so that no exp overflows.

    Args:
        input: logits of any shape.
        target: probabilities of the same shape.
        weight: rescaling weight broadcastable to the input's shape.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.
        pos_weight: weight of positive examples, broadcastable to the input (e.g. (C,) for the last dim).

    Shape:
        - Output: scalar, or the input's shape with ``reduction='none'``.

    Examples:
        >>> F.binary_cross_entropy_with_logits(cs.zeros(2), cs.tensor([0.0, 1.0]))
        tensor(0.6931)
    """
    op = "binary_cross_entropy_with_logits"
    input, target = as_tensor(input), as_tensor(target)
    check_reduction(op, reduction)
    check_same_shape(op, input, target)
    if target.dtype != input.dtype:
        target = target.to(input.dtype)
    loss = BinaryCrossEntropyWithLogits.apply(
        input,
        target,
        weight=broadcast_option(op, "weight", weight, input),
        pos_weight=broadcast_option(op, "pos_weight", pos_weight, input),
    )
    return apply_reduction(loss, reduction)


def kl_div(input, target, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Kullback-Leibler divergence ``KL(target || exp(input))`` per element, as ``torch.nn.functional.kl_div``.

    ``input`` holds log-probabilities (a ``log_softmax``); ``target`` probabilities, or
    log-probabilities with ``log_target=True``. Per element: ``t (log t - input)``.

    Args:
        input: log-probabilities, any shape (N, *).
        target: the same shape.
        reduction: ``'batchmean'`` (the sum divided by N: the KL divergence per sample, what
            the mathematics means), ``'sum'``, ``'mean'`` (divided by the number of elements,
            with PyTorch's warning) or ``'none'``.
        log_target: the target is given as log-probabilities.

    Shape:
        - Output: scalar, or the input's shape with ``reduction='none'``.

    Examples:
        >>> p = cs.tensor([[0.25, 0.75]])
        >>> F.kl_div(cs.log(p), p, reduction="batchmean")
        tensor(0.)
    """
    op = "kl_div"
    input = as_tensor(input)
    check_reduction(op, reduction, ("batchmean", "mean", "sum", "none"))
    if not isinstance(log_target, bool):
        raise invalid(op, "log_target", "True or False", log_target)
    target = float_target(op, input, target)
    loss = KLDivergence.apply(input, target, log_target=log_target)
    if reduction == "mean":
        warnings.warn("kl_div: reduction='mean' divides the total by the number of elements, not by the batch "
                      "size; 'batchmean' gives the KL divergence per sample", UserWarning, stacklevel=2)
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim else total
    return apply_reduction(loss, reduction)
