"""Loss modules: each holds its options (and weight tensors, as buffers) and calls one functional loss.

``reduction`` is ``'mean'`` (default), ``'sum'`` or ``'none'`` (per-element losses); ``KLDivLoss``
also takes ``'batchmean'``.
PyTorch's long-deprecated ``size_average``/``reduce`` arguments are not offered.
"""

from __future__ import annotations

from convstack.nn import functional as F
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.module import Module
from convstack.tensor import Tensor

_REDUCTIONS = ("none", "mean", "sum")


class _Loss(Configurable, Module):
    _config_keys = ("reduction",)

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self._setup(ArgumentCheck(type(self).__name__), reduction)

    _reductions = _REDUCTIONS

    def _setup(self, check: ArgumentCheck, reduction: str, **weights) -> None:
        """Check ``reduction`` and the weight tensors with the subclass's other arguments, then register."""
        self.reduction = check.choice("reduction", reduction, self._reductions)
        for name, value in weights.items():
            if value is not None and not isinstance(value, Tensor) and not hasattr(value, "shape"):
                check.fail(name, "a 1-D tensor or None", value)
        check.done()
        for name, value in weights.items():
            # Buffers, as in PyTorch: part of state_dict and converted by .to()/.double().
            self.register_buffer(name, value)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy between logits ``(N, C, *)`` and class indices ``(N, *)`` or class probabilities.

    Args:
        weight: per-class rescaling ``(C,)``; ignore_index: target value that contributes nothing;
        reduction: 'mean' | 'sum' | 'none'; label_smoothing: in [0, 1], mixes the target with uniform.

    Examples:
        >>> import convstack as cs
        >>> loss = cs.nn.CrossEntropyLoss()(cs.zeros(2, 4), cs.tensor([0, 3]))
        >>> round(loss.item(), 4)  # log(4)
        1.3863
    """

    _config_keys = ("weight", "ignore_index", "reduction", "label_smoothing")

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0):
        Module.__init__(self)
        check = ArgumentCheck("CrossEntropyLoss")
        self.ignore_index = check.integer("ignore_index", ignore_index)
        self.label_smoothing = check.number("label_smoothing", label_smoothing, 0.0, 1.0, expected="a number in [0, 1]")
        self._setup(check, reduction, weight=weight)

    def forward(self, input, target):
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of class indices given log-probabilities ``(N, C, *)`` (after ``LogSoftmax``)."""

    _config_keys = ("weight", "ignore_index", "reduction")

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean"):
        Module.__init__(self)
        check = ArgumentCheck("NLLLoss")
        self.ignore_index = check.integer("ignore_index", ignore_index)
        self._setup(check, reduction, weight=weight)

    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class MultiMarginLoss(_Loss):
    """Multi-class hinge loss ``sum_{i != y} max(0, margin - x_y + x_i)^p / C`` (the SVM loss of a CNN classifier)."""

    _config_keys = ("p", "margin", "weight", "reduction")

    def __init__(self, p: int = 1, margin: float = 1.0, weight=None, reduction: str = "mean"):
        Module.__init__(self)
        check = ArgumentCheck("MultiMarginLoss")
        if p not in (1, 2) or isinstance(p, bool):
            check.fail("p", "1 or 2", p)
        self.p = p
        self.margin = check.number("margin", margin)
        self._setup(check, reduction, weight=weight)

    def forward(self, input, target):
        return F.multi_margin_loss(input, target, p=self.p, margin=self.margin, weight=self.weight,
                                   reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error ``(x - y)^2``."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error ``|x - y|``."""

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits, computed stably in one op (no separate sigmoid).

    ``weight`` rescales each element; ``pos_weight`` (one per class) weighs positive examples.
    """

    _config_keys = ("weight", "reduction", "pos_weight")

    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None):
        Module.__init__(self)
        self._setup(ArgumentCheck("BCEWithLogitsLoss"), reduction, weight=weight, pos_weight=pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class BCELoss(_Loss):
    """Binary cross-entropy between probabilities (after a sigmoid) and targets in [0, 1].

    Each log is clamped at -100, as PyTorch's. ``BCEWithLogitsLoss`` is the stable choice for training.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.BCELoss()(cs.tensor([0.5, 0.5]), cs.tensor([1.0, 0.0]))
        tensor(0.6931)
    """

    _config_keys = ("weight", "reduction")

    def __init__(self, weight=None, reduction: str = "mean"):
        Module.__init__(self)
        self._setup(ArgumentCheck("BCELoss"), reduction, weight=weight)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class HuberLoss(_Loss):
    """Huber loss: ``0.5 d^2`` for ``|d| < delta``, ``delta (|d| - delta / 2)`` beyond (robust regression)."""

    _config_keys = ("reduction", "delta")

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        Module.__init__(self)
        check = ArgumentCheck("HuberLoss")
        self.delta = check.number("delta", delta, 0.0, low_open=True, expected="a positive number")
        self._setup(check, reduction)

    def forward(self, input, target):
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(_Loss):
    """Smooth L1 loss: ``0.5 d^2 / beta`` for ``|d| < beta``, ``|d| - beta / 2`` beyond (Fast R-CNN's box loss)."""

    _config_keys = ("reduction", "beta")

    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        Module.__init__(self)
        check = ArgumentCheck("SmoothL1Loss")
        self.beta = check.number("beta", beta, 0.0, expected="a non-negative number")
        self._setup(check, reduction)

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class KLDivLoss(_Loss):
    """KL divergence between a target distribution and the log-probabilities ``input`` (distillation's loss).

    ``reduction='batchmean'`` gives the divergence per sample; ``'mean'`` divides by every element.
    ``log_target``: the target is given as log-probabilities.

    Examples:
        >>> import convstack as cs
        >>> teacher = cs.tensor([[0.5, 0.5]])
        >>> cs.nn.KLDivLoss(reduction="batchmean")(cs.log(cs.tensor([[0.25, 0.75]])), teacher)
        tensor(0.1438)
    """

    _config_keys = ("reduction", "log_target")
    _reductions = ("none", "batchmean", "mean", "sum")

    def __init__(self, reduction: str = "mean", log_target: bool = False):
        Module.__init__(self)
        check = ArgumentCheck("KLDivLoss")
        self.log_target = check.boolean("log_target", log_target)
        self._setup(check, reduction)

    def forward(self, input, target):
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
