"""Padding layers over 1, 2 or 3 trailing dimensions: zero, constant, reflection, replication, circular.

Each is ``F.pad`` with a fixed mode. ``padding`` is an int (the same on every side) or
``2 * dims`` ints in ``F.pad``'s order, last dimension first:
``(left, right, top, bottom, front, back)``. Names and ``repr`` follow PyTorch.
"""

from __future__ import annotations

import numbers

from convstack.nn import functional as F
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.module import Module


class _PadNd(Configurable, Module):
    _dims: int
    _mode: str
    _config_keys = ("padding",)

    def __init__(self, padding):
        super().__init__()
        check = ArgumentCheck(type(self).__name__)
        count = 2 * self._dims
        expected = f"an integer or a tuple of {count} integers"
        if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
            self.padding = (int(padding),) * count
        elif (isinstance(padding, (tuple, list)) and len(padding) == count
              and all(isinstance(p, numbers.Integral) and not isinstance(p, bool) for p in padding)):
            self.padding = tuple(int(p) for p in padding)
        else:
            check.fail("padding", expected, padding)
        check.done()

    def forward(self, input):
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    _mode = "constant"
    _config_keys = ("padding", "value")

    def __init__(self, padding, value: float):
        super().__init__(padding)
        check = ArgumentCheck(type(self).__name__)
        self.value = check.number("value", value)
        check.done()
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class _ZeroPadNd(_ConstantPadNd):
    _config_keys = ("padding",)

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad1d(_ZeroPadNd):
    """Pad the last dimension with zeros: ``(N, C, L) -> (N, C, L + left + right)``."""

    _dims = 1


class ZeroPad2d(_ZeroPadNd):
    """Pad (H, W) with zeros, ``padding = (left, right, top, bottom)``.

    Shape:
        ``(N, C, H, W) -> (N, C, H + top + bottom, W + left + right)``; negative amounts crop.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.ZeroPad2d((1, 1, 2, 0))(cs.ones(1, 1, 3, 3)).shape
        (1, 1, 5, 5)
    """

    _dims = 2


class ZeroPad3d(_ZeroPadNd):
    """Pad (D, H, W) with zeros, ``padding = (left, right, top, bottom, front, back)``."""

    _dims = 3


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dimension with ``value``."""

    _dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad (H, W) with ``value``, ``padding = (left, right, top, bottom)``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.ConstantPad2d(1, 3.5)(cs.zeros(1, 1, 1, 1)).reshape(9).tolist()[:4]
        [3.5, 3.5, 3.5, 3.5]
    """

    _dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad (D, H, W) with ``value``."""

    _dims = 3


class ReflectionPad1d(_PadNd):
    """Mirror the last dimension without repeating the edge; each amount smaller than the size."""

    _dims, _mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    """Mirror (H, W) without repeating the edge (``[a b c] -> [c b | a b c | b a]``), ``(left, right, top, bottom)``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.ReflectionPad2d((2, 1, 0, 0))(cs.tensor([[[[0.0, 1.0, 2.0]]]]))
        tensor([[[[2., 1., 0., 1., 2., 1.]]]])
    """

    _dims, _mode = 2, "reflect"


class ReflectionPad3d(_PadNd):
    """Mirror (D, H, W) without repeating the edge."""

    _dims, _mode = 3, "reflect"


class ReplicationPad1d(_PadNd):
    """Repeat the edge values of the last dimension."""

    _dims, _mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    """Repeat the edge values of (H, W) (``[a b c] -> [a a | a b c | c c]``), ``(left, right, top, bottom)``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.ReplicationPad2d((2, 1, 0, 0))(cs.tensor([[[[0.0, 1.0, 2.0]]]]))
        tensor([[[[0., 0., 0., 1., 2., 2.]]]])
    """

    _dims, _mode = 2, "replicate"


class ReplicationPad3d(_PadNd):
    """Repeat the edge values of (D, H, W)."""

    _dims, _mode = 3, "replicate"


class CircularPad1d(_PadNd):
    """Wrap the last dimension around (periodic boundary)."""

    _dims, _mode = 1, "circular"


class CircularPad2d(_PadNd):
    """Wrap (H, W) around (periodic boundary), ``(left, right, top, bottom)``."""

    _dims, _mode = 2, "circular"


class CircularPad3d(_PadNd):
    """Wrap (D, H, W) around (periodic boundary)."""

    _dims, _mode = 3, "circular"
