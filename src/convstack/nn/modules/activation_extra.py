"""More activation layers, each wrapping one op of ``nn.functional`` (``activation_extra``, ``shrink``).

Numbers are kept as written (``Hardtanh(-2, 2)`` prints ``min_val=-2``), so that ``repr``
reads as PyTorch's; ``inplace`` is accepted and shown, and the ops compute out of place.
"""

from __future__ import annotations

import numbers

from convstack.nn import functional as F
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.activation import _SoftmaxBase
from convstack.nn.modules.module import Module


def _real(check: ArgumentCheck, argument: str, value):
    """``value`` unchanged if it is a real number (bools excluded), else recorded as an error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        check.fail(argument, "a real number", value)
    return value


def _inplace_repr(text: str, inplace: bool) -> str:
    return text + (", inplace=True" if text and inplace else "inplace=True" if inplace else "")


class Hardtanh(Configurable, Module):
    """``x`` clipped to ``[min_val, max_val]``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.Hardtanh()(cs.tensor([-2.0, 0.5]))
        tensor([-1. ,  0.5])
    """

    _config_keys = ("min_val", "max_val", "inplace")

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        check = ArgumentCheck(type(self).__name__)
        self.min_val, self.max_val = _real(check, "min_val", min_val), _real(check, "max_val", max_val)
        if not check.errors and min_val > max_val:
            check.fail("max_val", f"a number >= min_val ({min_val})", max_val)
        self.inplace = check.boolean("inplace", inplace)
        check.done()

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return _inplace_repr(f"min_val={self.min_val}, max_val={self.max_val}", self.inplace)


class Threshold(Configurable, Module):
    """``x`` where ``x > threshold``, ``value`` elsewhere."""

    _config_keys = ("threshold", "value", "inplace")

    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__()
        check = ArgumentCheck("Threshold")
        self.threshold, self.value = _real(check, "threshold", threshold), _real(check, "value", value)
        self.inplace = check.boolean("inplace", inplace)
        check.done()

    def forward(self, input):
        return F.threshold(input, self.threshold, self.value)

    def extra_repr(self) -> str:
        return _inplace_repr(f"threshold={self.threshold}, value={self.value}", self.inplace)


class CELU(Configurable, Module):
    """``max(0, x) + min(0, alpha (exp(x / alpha) - 1))`` (Barron 2017)."""

    _config_keys = ("alpha", "inplace")

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        check = ArgumentCheck("CELU")
        self.alpha = _real(check, "alpha", alpha)
        if not check.errors and alpha == 0:
            check.fail("alpha", "a non-zero number", alpha)
        self.inplace = check.boolean("inplace", inplace)
        check.done()

    def forward(self, input):
        return F.celu(input, self.alpha)

    def extra_repr(self) -> str:
        return _inplace_repr(f"alpha={self.alpha}", self.inplace)


class SELU(Configurable, Module):
    """Scaled ELU with the self-normalising constants of Klambauer et al. (2017)."""

    _config_keys = ("inplace",)

    def __init__(self, inplace: bool = False):
        super().__init__()
        check = ArgumentCheck("SELU")
        self.inplace = check.boolean("inplace", inplace)
        check.done()

    def forward(self, input):
        return F.selu(input)

    def extra_repr(self) -> str:
        return _inplace_repr("", self.inplace)


class GLU(Configurable, Module):
    """Gated linear unit: ``a * sigmoid(b)`` with (a, b) the halves of ``dim`` (default the last)."""

    _config_keys = ("dim",)

    def __init__(self, dim: int = -1):
        super().__init__()
        check = ArgumentCheck("GLU")
        self.dim = check.integer("dim", dim)
        check.done()

    def forward(self, input):
        return F.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmin(_SoftmaxBase):
    """``exp(-x_i) / sum_j exp(-x_j)`` along ``dim`` (PyTorch's legacy choice of dim when None)."""

    def forward(self, input):
        return F.softmin(input, self._dim(input))


class LogSigmoid(Configurable, Module):
    """``log(sigmoid(x))``, finite for every x."""

    def forward(self, input):
        return F.logsigmoid(input)


class Softsign(Configurable, Module):
    """``x / (1 + |x|)``."""

    def forward(self, input):
        return F.softsign(input)


class Tanhshrink(Configurable, Module):
    """``x - tanh(x)``."""

    def forward(self, input):
        return F.tanhshrink(input)


class _Shrink(Configurable, Module):
    _config_keys = ("lambd",)
    _minimum = None

    def __init__(self, lambd: float = 0.5):
        super().__init__()
        check = ArgumentCheck(type(self).__name__)
        self.lambd = _real(check, "lambd", lambd)
        if not check.errors and self._minimum is not None and lambd < self._minimum:
            check.fail("lambd", f"a number >= {self._minimum}", lambd)
        check.done()

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Hardshrink(_Shrink):
    """``x`` where ``|x| > lambd``, 0 elsewhere."""

    def forward(self, input):
        return F.hardshrink(input, self.lambd)


class Softshrink(_Shrink):
    """``x`` moved ``lambd`` towards 0, and 0 within ``[-lambd, lambd]`` (soft thresholding)."""

    _minimum = 0

    def forward(self, input):
        return F.softshrink(input, self.lambd)
