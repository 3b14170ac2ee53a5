"""``CosineSimilarity`` and ``PairwiseDistance``: layers over the functional distances.

As in PyTorch their ``repr`` shows no arguments; ``get_config`` holds them all.
"""

from __future__ import annotations

import math

from convstack.nn import functional as F
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.module import Module


class CosineSimilarity(Configurable, Module):
    """``x1 . x2 / (max(||x1||, eps) max(||x2||, eps))`` along ``dim``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.CosineSimilarity(dim=1)(cs.randn(4, 8), cs.randn(4, 8)).shape
        (4,)
    """

    _config_keys = ("dim", "eps")

    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        check = ArgumentCheck("CosineSimilarity")
        self.dim = check.integer("dim", dim)
        self.eps = check.number("eps", eps, 0.0, expected="a non-negative number")
        check.done()

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Configurable, Module):
    """``||x1 - x2 + eps||_p`` along the last dimension."""

    _config_keys = ("p", "eps", "keepdim")

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
        super().__init__()
        check = ArgumentCheck("PairwiseDistance")
        self.p = check.number("p", p, -math.inf, math.inf, expected="a real number (or inf)")
        self.eps = check.number("eps", eps, 0.0, expected="a non-negative number")
        self.keepdim = check.boolean("keepdim", keepdim)
        check.done()

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.p, self.eps, self.keepdim)
