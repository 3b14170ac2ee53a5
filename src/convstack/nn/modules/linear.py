"""``Linear`` (fully connected), and the shape layers ``Identity``, ``Flatten``, ``Unflatten``."""

from __future__ import annotations

import numpy

from convstack.nn import functional as F
from convstack.nn import init
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.module import Module, check_input_dtype
from convstack.nn.modules.parameter import Parameter, empty_parameter


class Identity(Configurable, Module):
    """Returns its input; any constructor arguments are ignored (as PyTorch), handy to drop a layer."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Configurable, Module):
    """``y = x W^T + b``.

    Args:
        in_features: size of each input sample; out_features: size of each output sample.
        bias: learn an additive bias.
        dtype: float32 (default) or float64.

    Shape:
        ``(*, in_features) -> (*, out_features)``; ``weight`` is ``(out_features, in_features)``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.Linear(400, 120)(cs.randn(2, 400)).shape
        (2, 120)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        check = ArgumentCheck("Linear")
        self.in_features = check.positive_int("in_features", in_features)
        self.out_features = check.positive_int("out_features", out_features)
        check.boolean("bias", bias)
        dtype = check.float_dtype(dtype)
        check.done()
        sizes = f"in_features {in_features}, out_features {out_features}"
        self.weight = empty_parameter((out_features, in_features), dtype, "Linear", sizes)
        self.bias = Parameter(numpy.empty(out_features, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self, generator=None) -> None:
        """PyTorch's default: ``kaiming_uniform_(weight, a=sqrt(5))``, bias U(-1/sqrt(in), 1/sqrt(in))."""
        init.default_reset_(self.weight, self.bias, generator)

    def _check_input(self, input) -> None:
        """At least 1-D, ``in_features`` in the last dimension, the weight's dtype (run by ``Module.__call__``)."""
        shape = getattr(input, "shape", None)
        if shape is None:
            return
        if len(shape) == 0 or shape[-1] != self.in_features:
            received = f"{shape[-1]}" if len(shape) else "a 0-D input"
            raise ValueError(
                f"expected input with {self.in_features} features in its last dimension, got {received} "
                f"(input shape {tuple(shape)})"
            )
        check_input_dtype(input, self.weight.dtype)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def get_config(self) -> dict:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
            "dtype": str(self.weight.dtype),
        }

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Configurable, Module):
    """Merge dims ``start_dim..end_dim`` into one: ``(N, C, H, W) -> (N, C*H*W)`` by default.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.Flatten()(cs.zeros(2, 16, 5, 5)).shape
        (2, 400)
    """

    _config_keys = ("start_dim", "end_dim")

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        check = ArgumentCheck("Flatten")
        self.start_dim = check.integer("start_dim", start_dim)
        self.end_dim = check.integer("end_dim", end_dim)
        check.done()

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Configurable, Module):
    """Split dim ``dim`` into ``unflattened_size`` (one entry may be -1): ``(N, 400) -> (N, 16, 5, 5)``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.Unflatten(1, (16, 5, 5))(cs.zeros(2, 400)).shape
        (2, 16, 5, 5)
    """

    _config_keys = ("dim", "unflattened_size")

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        check = ArgumentCheck("Unflatten")
        self.dim = check.integer("dim", dim)
        sizes = tuple(unflattened_size) if isinstance(unflattened_size, (tuple, list)) else None
        if not sizes or not all(isinstance(s, int) and not isinstance(s, bool) and (s >= 1 or s == -1) for s in sizes):
            check.fail("unflattened_size", "a non-empty tuple of positive integers (one may be -1)", unflattened_size)
        elif sizes.count(-1) > 1:
            check.fail("unflattened_size", "at most one -1", unflattened_size)
        check.done()
        self.unflattened_size = sizes

    def forward(self, input):
        dim = self.dim % input.ndim
        return input.reshape(input.shape[:dim] + self.unflattened_size + input.shape[dim + 1 :])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
