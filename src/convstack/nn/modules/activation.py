"""Activation layers: each wraps one element-wise (or softmax) op of ``nn.functional``.

``ReLU(inplace=True)`` overwrites its input (``relu_``, with PyTorch's version checks);
the other layers accept ``inplace``, and show it in ``repr``, so that PyTorch model code
ports unchanged, but compute out of place (same values, same gradients).
"""

from __future__ import annotations

import numpy

from convstack.nn import functional as F
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.module import Module
from convstack.nn.modules.parameter import Parameter


class ReLU(Configurable, Module):
    """``max(0, x)``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.ReLU()(cs.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """

    _config_keys = ("inplace",)

    def __init__(self, inplace: bool = False):
        super().__init__()
        check = ArgumentCheck("ReLU")
        self.inplace = check.boolean("inplace", inplace)
        check.done()

    def forward(self, input):
        return F.relu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Configurable, Module):
    """``x`` for ``x >= 0``, ``negative_slope * x`` otherwise (Maas et al. 2013)."""

    _config_keys = ("negative_slope", "inplace")

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        check = ArgumentCheck("LeakyReLU")
        self.negative_slope = check.number("negative_slope", negative_slope)
        self.inplace = check.boolean("inplace", inplace)
        check.done()

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Configurable, Module):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise (Clevert et al. 2016)."""

    _config_keys = ("alpha", "inplace")

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        check = ArgumentCheck("ELU")
        self.alpha = check.number("alpha", alpha)
        self.inplace = check.boolean("inplace", inplace)
        check.done()

    def forward(self, input):
        return F.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Configurable, Module):
    """``x * Phi(x)`` (Hendrycks & Gimpel 2016); ``approximate='tanh'`` uses the tanh formula."""

    _config_keys = ("approximate",)

    def __init__(self, approximate: str = "none"):
        super().__init__()
        check = ArgumentCheck("GELU")
        self.approximate = check.choice("approximate", approximate, ("none", "tanh"))
        check.done()

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Sigmoid(Configurable, Module):
    """``1 / (1 + exp(-x))``."""

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Configurable, Module):
    """``tanh(x)``."""

    def forward(self, input):
        return F.tanh(input)


class _SoftmaxBase(Configurable, Module):
    _config_keys = ("dim",)

    def __init__(self, dim: int | None = None):
        super().__init__()
        check = ArgumentCheck(type(self).__name__)
        self.dim = None if dim is None else check.integer("dim", dim)
        check.done()

    def _dim(self, input) -> int:
        # dim=None: PyTorch's legacy choice, dim 0 for 0-, 1- and 3-D inputs, else dim 1.
        if self.dim is not None:
            return self.dim
        return 0 if input.ndim in (0, 1, 3) else 1

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim``: each slice sums to 1.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.Softmax(dim=1)(cs.zeros(1, 4))
        tensor([[0.25, 0.25, 0.25, 0.25]])
    """

    def forward(self, input):
        return F.softmax(input, self._dim(input))


class LogSoftmax(_SoftmaxBase):
    """``x_i - log(sum_j exp(x_j))`` along ``dim`` (pairs with ``NLLLoss``)."""

    def forward(self, input):
        return F.log_softmax(input, self._dim(input))


class _InplaceActivation(Configurable, Module):
    """An element-wise activation whose only argument is PyTorch's ``inplace`` (accepted, computed out of place)."""

    _config_keys = ("inplace",)
    _function = None  # the functional op, set by each subclass

    def __init__(self, inplace: bool = False):
        super().__init__()
        check = ArgumentCheck(type(self).__name__)
        self.inplace = check.boolean("inplace", inplace)
        check.done()

    def forward(self, input):
        return type(self)._function(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU6(_InplaceActivation):
    """``min(max(0, x), 6)`` (MobileNets).

    Examples:
        >>> import convstack as cs
        >>> cs.nn.ReLU6()(cs.tensor([-1.0, 3.0, 9.0]))
        tensor([0., 3., 6.])
    """

    _function = F.relu6


class Hardsigmoid(_InplaceActivation):
    """``relu6(x + 3) / 6``, the piecewise-linear sigmoid of MobileNetV3 (Howard et al. 2019)."""

    _function = F.hardsigmoid


class Hardswish(_InplaceActivation):
    """``x * relu6(x + 3) / 6``, the piecewise-linear SiLU of MobileNetV3 (Howard et al. 2019)."""

    _function = F.hardswish


class SiLU(_InplaceActivation):
    """``x * sigmoid(x)`` (Elfwing et al. 2018; "swish", Ramachandran et al. 2017)."""

    _function = F.silu


class Mish(_InplaceActivation):
    """``x * tanh(softplus(x))`` (Misra 2019)."""

    _function = F.mish


class Softplus(Configurable, Module):
    """``log(1 + exp(beta * x)) / beta``, a smooth ReLU; ``x`` where ``beta * x > threshold``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.Softplus(beta=2.0)(cs.tensor([0.0, 20.0]))
        tensor([ 0.3466, 20.    ])
    """

    _config_keys = ("beta", "threshold")

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        check = ArgumentCheck("Softplus")
        self.beta = check.number("beta", beta)
        if self.beta == 0:
            check.fail("beta", "a non-zero number", beta)
        self.threshold = check.number("threshold", threshold)
        check.done()

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class PReLU(Configurable, Module):
    """Parametric ReLU (He et al. 2015): ``x`` for x > 0, ``weight * x`` otherwise, the slope learned.

    Args:
        num_parameters: 1 (one slope shared by all channels) or C (one per channel, dim 1).
        init: the initial slope.
        dtype: of the weight (default float32).

    Shape:
        Input (N, C, *) (any shape with one parameter), output the same.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.PReLU()(cs.tensor([-2.0, 1.0]))
        tensor([-0.5,  1. ], grad_fn=<PReLU>)
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype=None):
        super().__init__()
        check = ArgumentCheck("PReLU")
        self.num_parameters = check.positive_int("num_parameters", num_parameters)
        self.init = check.number("init", init)
        dtype = check.float_dtype(dtype)
        check.done()
        self.weight = Parameter(numpy.full(num_parameters, init, dtype=dtype))

    def reset_parameters(self) -> None:
        self.weight.data[...] = self.init

    def forward(self, input):
        return F.prelu(input, self.weight)

    def get_config(self) -> dict:
        return {"num_parameters": self.num_parameters, "init": self.init, "dtype": str(self.weight.dtype)}

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"
