"""Metric-learning losses: ``triplet_margin_loss`` (Schroff et al. 2015, FaceNet; Balntas et al. 2016
for the distance swap) and ``margin_ranking_loss``, as ``torch.nn.functional``.

Both are hinges on distances or score differences, written with differentiable tensor ops
(``pairwise_distance``, subtraction, ``clamp``), so their gradients are those ops' own;
``reduction`` is applied as by the other losses (``'mean'`` of an empty batch is NaN).
"""

from __future__ import annotations

import numbers

import numpy

from convstack.functions import where
from convstack.nn.functional._reduction import apply_reduction, check_reduction
from convstack.nn.functional._utils import invalid, shape_context
from convstack.nn.functional.distance import pairwise_distance
from convstack.tensor import Tensor, as_tensor


def _same_rank(op: str, **tensors) -> None:
    """As PyTorch: the same number of dimensions, and shapes that broadcast together."""
    names = ", ".join(tensors)
    received = shape_context(**{name: t.shape for name, t in tensors.items()})
    if len({t.ndim for t in tensors.values()}) > 1:
        raise ValueError(f"{op}: expected {names} of the same number of dimensions, received {received}")
    try:
        numpy.broadcast_shapes(*(t.shape for t in tensors.values()))  # shape arithmetic only
    except ValueError:
        raise ValueError(f"{op}: expected {names} of shapes that broadcast together, received {received}") from None


def _float(op: str, name: str, value) -> Tensor:
    value = as_tensor(value)
    if value.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point {name}, received dtype {value.dtype}")
    return value


def _number(op: str, argument: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise invalid(op, argument, "a real number", value)
    return float(value)


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, reduction: str = "mean") -> Tensor:
    """``max(d(a, p) - d(a, n) + margin, 0)`` with ``d`` the ``pairwise_distance``: pull the anchor
    towards the positive and push it at least ``margin`` further from the negative.

    Args:
        anchor, positive, negative: (N, D) or (D,) float tensors of the same number of
            dimensions (broadcasting against each other).
        margin: the required gap, > 0.
        p: the norm of the distance; eps: added to the differences (see ``pairwise_distance``).
        swap: use ``min(d(a, n), d(p, n))`` as the negative distance (the harder one).
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.

    Shape:
        - Output: scalar, or (N,) with ``reduction='none'`` (``()`` for (D,) inputs).

    Examples:
        >>> a, p, n = cs.tensor([[0.0, 0.0]]), cs.tensor([[0.0, 1.0]]), cs.tensor([[0.0, 3.0]])
        >>> F.triplet_margin_loss(a, p, n, margin=2.5, eps=0.0)
        tensor(0.5)
    """
    op = "triplet_margin_loss"
    anchor, positive, negative = (_float(op, name, t) for name, t in
                                  (("anchor", anchor), ("positive", positive), ("negative", negative)))
    _same_rank(op, anchor=anchor, positive=positive, negative=negative)
    check_reduction(op, reduction)
    margin = _number(op, "margin", margin)
    if margin <= 0:
        raise invalid(op, "margin", "a number > 0", margin)
    if not isinstance(swap, bool):
        raise invalid(op, "swap", "True or False", swap)
    distance_positive = pairwise_distance(anchor, positive, p, eps)
    distance_negative = pairwise_distance(anchor, negative, p, eps)
    if swap:
        distance_swap = pairwise_distance(positive, negative, p, eps)
        distance_negative = where((distance_swap < distance_negative).data, distance_swap, distance_negative)
    return apply_reduction((distance_positive - distance_negative + margin).clamp(min=0), reduction)


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, reduction: str = "mean") -> Tensor:
    """``max(0, -y (x1 - x2) + margin)``: with y = 1, x1 should rank above x2 by ``margin``; with y = -1 below.

    Args:
        input1, input2: float scores of the same number of dimensions (any shape, 0-D included).
        target: labels (1 or -1) of that number of dimensions; integers are converted.
        margin: the required gap.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.

    Shape:
        - Input1, input2, target: (*), broadcasting together. Output: scalar, or (*) with ``'none'``.

    Examples:
        >>> F.margin_ranking_loss(cs.tensor([1.0, 2.0]), cs.tensor([2.0, 0.0]), cs.tensor([1.0, 1.0]))
        tensor(0.5)
    """
    op = "margin_ranking_loss"
    input1, input2 = _float(op, "input1", input1), _float(op, "input2", input2)
    target = as_tensor(target)
    if target.dtype.kind not in "fiu":
        raise TypeError(f"{op}: expected a numeric target (1 or -1), received dtype {target.dtype}")
    _same_rank(op, input1=input1, input2=input2, target=target)
    check_reduction(op, reduction)
    margin = _number(op, "margin", margin)
    if target.dtype != input1.dtype:
        target = target.to(input1.dtype)
    return apply_reduction((-target * (input1 - input2) + margin).clamp(min=0), reduction)
