"""``TripletMarginLoss`` and ``MarginRankingLoss``: layers over the metric-learning losses.

As in PyTorch their ``repr`` shows no arguments; ``get_config`` holds them all.
"""

from __future__ import annotations

import math

from convstack.nn import functional as F
from convstack.nn.modules._args import ArgumentCheck
from convstack.nn.modules.loss import _Loss
from convstack.nn.modules.module import Module


class TripletMarginLoss(_Loss):
    """``max(d(a, p) - d(a, n) + margin, 0)`` over (anchor, positive, negative) triplets.

    Examples:
        >>> import convstack as cs
        >>> loss = cs.nn.TripletMarginLoss(margin=1.0)
        >>> loss(cs.randn(8, 16), cs.randn(8, 16), cs.randn(8, 16)).shape
        ()
    """

    _config_keys = ("margin", "p", "eps", "swap", "reduction")

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False,
                 reduction: str = "mean"):
        Module.__init__(self)
        check = ArgumentCheck("TripletMarginLoss")
        self.margin = check.number("margin", margin, 0.0, low_open=True, expected="a number > 0")
        self.p = check.number("p", p, -math.inf, math.inf, expected="a real number (or inf)")
        self.eps = check.number("eps", eps, 0.0, expected="a non-negative number")
        self.swap = check.boolean("swap", swap)
        self._setup(check, reduction)

    def forward(self, anchor, positive, negative):
        return F.triplet_margin_loss(anchor, positive, negative, self.margin, self.p, self.eps, self.swap,
                                     self.reduction)


class MarginRankingLoss(_Loss):
    """``max(0, -y (x1 - x2) + margin)`` for labels y in {1, -1}."""

    _config_keys = ("margin", "reduction")

    def __init__(self, margin: float = 0.0, reduction: str = "mean"):
        Module.__init__(self)
        check = ArgumentCheck("MarginRankingLoss")
        self.margin = check.number("margin", margin)
        self._setup(check, reduction)

    def forward(self, input1, input2, target):
        return F.margin_ranking_loss(input1, input2, target, self.margin, self.reduction)
