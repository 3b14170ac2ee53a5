"""Classification losses: cross-entropy (class indices or probabilities, label smoothing), NLL, multi-class hinge.

Each op computes the unreduced, per-element loss (a ``Function`` where the gradient has a
closed form worth writing, tensor ops otherwise) and ``apply_reduction`` applies ``reduction``.
Class-index losses take input (N, C, d1, ...) with target (N, d1, ...), or input (C,)
with a scalar target. Regression losses live in ``regression_loss``, losses on
probabilities (binary cross-entropy, KL divergence) in ``probability_loss``.
"""

from __future__ import annotations

import numbers

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._reduction import apply_reduction, check_reduction, check_same_shape
from convstack.nn.functional._utils import invalid, shape_context
from convstack.nn.functional.activation import log_softmax
from convstack.nn.kernels import tiers
from convstack.nn.kernels.reference import loss as loss_kernels
from convstack.tensor import Tensor, as_tensor


# ---------------------------------------------------------------------------- argument checks
def _batched_classes(op: str, input: Tensor, target: Tensor, ignore_index):
    """Input as (N, C, *spatial) and target as (N, *spatial) index arrays, checked; ``unbatched`` flag."""
    if input.ndim == 0:
        raise ValueError(f"{op}: expected an input with a class dimension, received a 0-D input")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected integer class indices as target, received dtype {target.dtype}")
    expected = () if input.ndim == 1 else (input.shape[0],) + input.shape[2:]
    if target.shape != expected:
        raise ValueError(
            f"{op}: expected target of shape {expected} (input without its class dimension), received "
            f"{shape_context(input=input.shape, target=target.shape)}"
        )
    unbatched = input.ndim == 1
    if unbatched:
        input, target = input.reshape(1, input.shape[0]), target.reshape(1)
    classes = input.shape[1]
    indices = target.data
    bad = (indices < 0) | (indices >= classes)
    if ignore_index is not None:
        bad &= indices != ignore_index
    if bad.any():
        value = int(indices[bad].reshape(-1)[0])
        also = "" if ignore_index is None else f" or ignore_index {ignore_index}"
        raise ValueError(f"{op}: target {value} is out of bounds: expected class indices in [0, {classes}){also}")
    return input, indices, unbatched


def _class_weight(op: str, weight, classes: int, input: Tensor):
    """``weight`` as an array of shape (C,) in the input's dtype, or None."""
    if weight is None:
        return None
    weight = as_tensor(weight).data
    if tuple(weight.shape) != (classes,):
        raise ValueError(
            f"{op}: expected weight of shape ({classes},) (one per class), received "
            f"{shape_context(input=input.shape, weight=weight.shape)}"
        )
    return weight.astype(input.dtype, copy=False)


def _target_weights(indices, weight, ignore_index, dtype):
    """(indices with ignored entries set to class 0, per-element weight: weight[target], 0 where ignored)."""
    xp = get_array_module(indices)
    kept = indices != ignore_index
    safe = xp.where(kept, indices, 0)
    weights = kept.astype(dtype) if weight is None else xp.where(kept, weight[safe], 0).astype(dtype, copy=False)
    return safe, weights


# ------------------------------------------------------------------------------------ Functions
class NLLLoss(Function):
    """Per-element ``-weight[t] * logp[n, t, ...]`` for (N, C, *spatial) log-probabilities."""

    def forward(self, logp, *, target, target_weight):
        xp = get_array_module(logp)
        picked = xp.take_along_axis(logp, target[:, None], axis=1)[:, 0]  # (N, *spatial)
        self.target, self.target_weight, self.shape = target, target_weight, logp.shape
        return -target_weight * picked

    def backward(self, grad):
        xp = get_array_module(grad)
        classes = xp.arange(self.shape[1]).reshape((1, -1) + (1,) * (len(self.shape) - 2))  # (1, C, 1, ...)
        one_hot = self.target[:, None] == classes  # (N, C, *spatial)
        return (one_hot * (-grad * self.target_weight)[:, None],)


class CrossEntropy(Function):
    """Reduced class-index cross-entropy as one op: ``-sum(w[t] log softmax(x)[t]) / denominator``.

    Log-softmax, pick, weight and reduction in one forward, ``(softmax - onehot) * w[t] * g /
    denominator`` backward: four ops and their temporaries fewer than ``log_softmax`` +
    ``NLLLoss`` + ``sum`` + ``div`` on the training path. The arithmetic is the kernels'
    (``cross_entropy_forward`` / ``cross_entropy_backward`` of the tier in use).
    """

    def forward(self, x, *, target, target_weight, denominator):
        tier = tiers.tier_for(x)
        self.backward_kernel = tier.implementation(loss_kernels.cross_entropy_backward)
        loss, self.saved = tier.implementation(loss_kernels.cross_entropy_forward)(x, target, target_weight,
                                                                                   denominator)
        return loss

    def backward(self, grad):
        return (self.backward_kernel(grad, self.saved),)


class MultiMarginLoss(Function):
    """Per-sample ``weight[y] / C * sum_{j != y} max(0, margin - x[y] + x[j]) ** p`` for (N, C) input."""

    def forward(self, x, *, target, p, margin, target_weight):
        xp = get_array_module(x)
        classes = xp.arange(x.shape[1])[None, :]
        self.one_hot = target[:, None] == classes  # (N, C)
        picked = xp.take_along_axis(x, target[:, None], axis=1)  # (N, 1)
        self.hinge = xp.maximum(margin - picked + x, 0) * ~self.one_hot  # (N, C), 0 at j == y
        self.scale, self.p = target_weight / x.shape[1], p
        powered = self.hinge if p == 1 else self.hinge * self.hinge
        return powered.sum(axis=1) * self.scale

    def backward(self, grad):
        slope = (self.hinge > 0) if self.p == 1 else 2 * self.hinge  # d hinge^p / d hinge, 0 at j == y
        grad_others = slope * (grad * self.scale)[:, None]  # (N, C)
        # x[y] enters every term with the opposite sign
        return (grad_others - self.one_hot * grad_others.sum(axis=1, keepdims=True),)


# ------------------------------------------------------------------------------- public ops
def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices given log-probabilities.

    Args:
        input: log-probabilities (N, C, d1, ...) or (C,).
        target: class indices (N, d1, ...) in [0, C), or a scalar for a (C,) input.
        weight: per-class weights (C,), or None.
        ignore_index: target value that contributes neither loss nor gradient.
        reduction: ``'mean'`` (divided by the summed weights of the non-ignored targets),
            ``'sum'`` or ``'none'``.

    Shape:
        - Output: scalar, or (N, d1, ...) (``()`` for a (C,) input) with ``reduction='none'``.

    Examples:
        >>> F.nll_loss(cs.tensor([[-0.5, -1.0]]), cs.tensor([1]))
        tensor(1.)
    """
    input, target = as_tensor(input), as_tensor(target)
    check_reduction("nll_loss", reduction)
    batched, indices, unbatched = _batched_classes("nll_loss", input, target, ignore_index)
    weight = _class_weight("nll_loss", weight, batched.shape[1], input)
    safe, target_weight = _target_weights(indices, weight, ignore_index, input.dtype)
    loss = NLLLoss.apply(batched, target=safe, target_weight=target_weight)
    if unbatched:
        loss = loss.reshape(())
    return apply_reduction(loss, reduction, target_weight.sum())


def cross_entropy(
    input, target, weight=None, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0
) -> Tensor:
    """Cross-entropy between softmax(input) over the class dimension and the target.

    Computed from ``log_softmax`` (log-sum-exp, never overflowing). With class-index targets,
    ``label_smoothing`` ε mixes the one-hot target with the uniform distribution:
    ``loss = (1 - ε) nll + ε / C * sum_c -weight[c] log p_c`` per element, both terms reduced
    alike (``'mean'`` divides by the summed weights of the non-ignored targets), as PyTorch does.

    Args:
        input: unnormalised scores (N, C, d1, ...) or (C,).
        target: class indices (N, d1, ...) (a scalar for a (C,) input), or class probabilities
            of the input's shape and float dtype.
        weight: per-class weights (C,), or None.
        ignore_index: class-index target value that contributes neither loss nor gradient.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``. With probability targets ``'mean'``
            divides by the number of elements N * d1 * ...
        label_smoothing: ε in [0, 1].

    Shape:
        - Output: scalar, or (N, d1, ...) with ``reduction='none'``.

    Examples:
        >>> F.cross_entropy(cs.zeros(2, 4), cs.tensor([0, 3]))
        tensor(1.3863)
    """
    input, target = as_tensor(input), as_tensor(target)
    check_reduction("cross_entropy", reduction)
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real) or not (
        0.0 <= label_smoothing <= 1.0
    ):
        raise invalid("cross_entropy", "label_smoothing", "a float in [0, 1]", label_smoothing)
    if input.ndim == 0:
        raise ValueError("cross_entropy: expected an input with a class dimension, received a 0-D input")
    class_dim = 0 if input.ndim == 1 else 1
    classes = input.shape[class_dim]
    weight = _class_weight("cross_entropy", weight, classes, input)
    if target.dtype.kind == "f":
        return _cross_entropy_probabilities(input, target, weight, class_dim, reduction, label_smoothing)
    batched, indices, unbatched = _batched_classes("cross_entropy", input, target, ignore_index)
    safe, target_weight = _target_weights(indices, weight, ignore_index, input.dtype)
    if label_smoothing == 0 and reduction != "none":
        denominator = target_weight.sum() if reduction == "mean" else 1
        return CrossEntropy.apply(batched, target=safe, target_weight=target_weight, denominator=denominator)
    logp = log_softmax(batched, 1)
    loss = NLLLoss.apply(logp, target=safe, target_weight=target_weight)
    if label_smoothing > 0:
        weighted = logp if weight is None else logp * Tensor._make(weight.reshape((1, -1) + (1,) * (logp.ndim - 2)))
        kept = Tensor._make((indices != ignore_index).astype(input.dtype))
        smooth = -weighted.sum(1) * kept  # (N, *spatial)
        loss = loss * (1 - label_smoothing) + smooth * (label_smoothing / classes)
    if unbatched:
        loss = loss.reshape(())
    return apply_reduction(loss, reduction, target_weight.sum())


def _cross_entropy_probabilities(input, target, weight, class_dim, reduction, label_smoothing) -> Tensor:
    check_same_shape("cross_entropy", input, target)
    classes = input.shape[class_dim]
    if target.dtype != input.dtype:
        target = target.to(input.dtype)
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    terms = log_softmax(input, class_dim) * target
    if weight is not None:
        terms = terms * Tensor._make(weight.reshape((-1,) + (1,) * (input.ndim - class_dim - 1)))
    return apply_reduction(-terms.sum(class_dim), reduction)


def multi_margin_loss(input, target, p: int = 1, margin: float = 1.0, weight=None, reduction: str = "mean") -> Tensor:
    """Multi-class hinge (SVM) loss: ``sum_{j != y} max(0, margin - x[y] + x[j]) ** p / C`` per sample.

    Args:
        input: scores (N, C) or (C,).
        target: class indices (N,) in [0, C), or a scalar for a (C,) input.
        p: 1 (hinge) or 2 (squared hinge).
        margin: the required gap between the target score and every other score.
        weight: per-class weights (C,) scaling each sample by the weight of its target class.
        reduction: ``'mean'`` (over samples), ``'sum'`` or ``'none'``.

    Shape:
        - Output: scalar, or (N,) (``()`` for a (C,) input) with ``reduction='none'``.

    Examples:
        >>> F.multi_margin_loss(cs.tensor([[0.1, 0.2, 0.4, 0.8]]), cs.tensor([3]))
        tensor(0.325)
    """
    input, target = as_tensor(input), as_tensor(target)
    check_reduction("multi_margin_loss", reduction)
    if p not in (1, 2) or isinstance(p, bool):
        raise invalid("multi_margin_loss", "p", "1 or 2", p)
    if input.ndim not in (1, 2):
        raise ValueError(
            f"multi_margin_loss: expected a 1-D (C,) or 2-D (N, C) input, received input shape {input.shape}"
        )
    batched, indices, unbatched = _batched_classes("multi_margin_loss", input, target, None)
    weight = _class_weight("multi_margin_loss", weight, batched.shape[1], input)
    _, target_weight = _target_weights(indices, weight, None, input.dtype)
    loss = MultiMarginLoss.apply(batched, target=indices, p=p, margin=float(margin), target_weight=target_weight)
    if unbatched:
        loss = loss.reshape(())
    return apply_reduction(loss, reduction)
