"""Dropout layers: active when ``module.training`` is True, the identity in eval mode."""

from __future__ import annotations

from convstack.nn import functional as F
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.module import Module


class _DropoutNd(Configurable, Module):
    _config_keys = ("p", "inplace")

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        check = ArgumentCheck(type(self).__name__)
        self.p = check.number("p", p, 0.0, 1.0, expected="a probability in [0, 1]")
        self.inplace = check.boolean("inplace", inplace)
        check.done()

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)`` (Srivastava et al. 2014).

    In eval mode (``module.eval()``) the input passes through unchanged.

    Examples:
        >>> import convstack as cs
        >>> layer = cs.nn.Dropout(0.5).eval()
        >>> layer(cs.ones(3))
        tensor([1., 1., 1.])
    """

    def forward(self, input):
        return F.dropout(input, self.p, self.training)


class Dropout2d(_DropoutNd):
    """Zero whole channels of ``(N, C, H, W)`` with probability ``p`` (Tompson et al. 2015)."""

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training)


class Dropout3d(_DropoutNd):
    """Zero whole channels of ``(N, C, D, H, W)`` with probability ``p``."""

    def forward(self, input):
        return F.dropout3d(input, self.p, self.training)
