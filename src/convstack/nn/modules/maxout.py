"""``Maxout`` (Goodfellow et al. 2013) and its other name, ``CrossChannelPool``."""

from __future__ import annotations

from convstack.nn import functional as F
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.module import Module


class Maxout(Configurable, Module):
    """The maximum over each group of ``pool_size`` consecutive channels (cross-channel pooling).

    Put after a convolution or linear layer with ``k * units`` outputs, it makes a maxout
    unit: a learned piecewise-linear convex activation (Goodfellow et al. 2013).

    Args:
        pool_size: channels per group k; must divide the number of channels.
        dim: the channel dimension (default 1).

    Shape:
        Input (N, C, *), output (N, C / k, *).

    Examples:
        >>> import convstack as cs
        >>> cs.nn.Maxout(4)(cs.randn(2, 12, 5, 5)).shape
        (2, 3, 5, 5)
    """

    _config_keys = ("pool_size", "dim")

    def __init__(self, pool_size: int, dim: int = 1):
        super().__init__()
        check = ArgumentCheck(type(self).__name__)
        self.pool_size = check.positive_int("pool_size", pool_size)
        self.dim = check.integer("dim", dim)
        check.done()

    def forward(self, input):
        return F.maxout(input, self.pool_size, self.dim)

    def extra_repr(self) -> str:
        return f"pool_size={self.pool_size}" + ("" if self.dim == 1 else f", dim={self.dim}")


class CrossChannelPool(Maxout):
    """``Maxout`` under the name of Goodfellow et al. (Deep Learning §9.3): pooling over feature maps."""
