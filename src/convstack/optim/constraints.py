"""Max-norm constraint (Srivastava et al. 2014): after each update, rescale every unit's incoming
weight vector whose norm exceeds ``c`` back onto the ball of radius ``c``.

A unit is one index along ``dim`` (0 by default: a row of a ``Linear`` weight
``(out_features, in_features)``, one output filter of a ``Conv`` weight ``(C_out, C_in, *k)``;
use ``dim=1`` for a transposed convolution's ``(C_in, C_out, *k)``). The norm is taken over
all the other dimensions. Rows inside the ball are left exactly as they are; the scaling
is ``torch.renorm``'s: ``c / (norm + 1e-7)``.

Apply it after every step, either explicitly or through the optimizer's post hook:

    >>> constraint = MaxNorm(3.0)
    >>> handle = constraint.attach(optimizer)       # runs after every optimizer.step()
    >>> # or, by hand:  optimizer.step(); apply_max_norm_(model, 3.0)
"""

from __future__ import annotations

from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor

_RENORM_EPS = 1e-7  # torch.renorm's guard against dividing by a zero norm


def _weights(parameters) -> list[Tensor]:
    """The constrained tensors: a module's (or a list's) parameters with ``ndim >= 2`` (biases are left alone)."""
    if hasattr(parameters, "parameters") and callable(parameters.parameters):
        parameters = parameters.parameters()
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"apply_max_norm_: expected tensors or a module, but got {type(p).__name__}")
    return [p for p in parameters if p.ndim >= 2]


def apply_max_norm_(parameters, max_norm: float, dim: int = 0, norm_type: float = 2.0) -> None:
    """Rescale, in place, every slice ``w[i]`` along ``dim`` whose ``norm_type``-norm exceeds ``max_norm``.

    Args:
        parameters: tensors or a module; only tensors with ``ndim >= 2`` are constrained.
        max_norm: the radius ``c`` (> 0).
        dim: the dimension that indexes units (0 for ``Linear`` and ``Conv`` weights).
        norm_type: the norm (2 by default; ``inf`` for the largest magnitude).

    Shape:
        ``w``: ``(..., units, ...)`` with ``units`` at ``dim``; each ``w.select(dim, i)`` ends with norm <= c.
    """
    MaxNorm(max_norm, dim, norm_type)(parameters)


class MaxNorm:
    """The max-norm constraint as an object: ``MaxNorm(c)(model)`` applies it once, ``attach`` every step.

    Args:
        max_norm: the radius ``c`` (> 0); 3 to 4 in Srivastava et al. 2014.
        dim: the dimension that indexes units.
        norm_type: the norm (p > 0, or ``inf``).
    """

    def __init__(self, max_norm: float, dim: int = 0, norm_type: float = 2.0):
        for argument, value in (("max_norm", max_norm), ("norm_type", norm_type)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise invalid("MaxNorm", argument, "a number > 0", value)
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise invalid("MaxNorm", "dim", "an integer", dim)
        self.max_norm, self.dim, self.norm_type = float(max_norm), dim, float(norm_type)

    def __repr__(self) -> str:
        return f"MaxNorm(max_norm={self.max_norm}, dim={self.dim}, norm_type={self.norm_type})"

    def __call__(self, parameters) -> None:
        for p in _weights(parameters):
            if not -p.ndim <= self.dim < p.ndim:
                raise invalid("MaxNorm", "dim", f"a dimension of the {p.ndim}-D weight", self.dim,
                              f"weight shape {p.shape}")
            self._renorm_(p.data)

    def _renorm_(self, weight) -> None:
        xp = get_array_module(weight)
        dim = self.dim % weight.ndim
        others = tuple(axis for axis in range(weight.ndim) if axis != dim)
        magnitude = xp.abs(weight)
        if self.norm_type == float("inf"):
            norms = magnitude.max(axis=others, keepdims=True)  # (1, ..., units, ..., 1)
        else:
            norms = (magnitude**self.norm_type).sum(axis=others, keepdims=True) ** (1.0 / self.norm_type)
        scale = xp.where(norms > self.max_norm, self.max_norm / (norms + _RENORM_EPS), 1.0).astype(weight.dtype)
        weight *= scale

    def attach(self, optimizer, parameters=None):
        """Apply the constraint after every ``optimizer.step()``; returns the hook's handle (``.remove()``).

        ``parameters`` defaults to every parameter of the optimizer (weights only: ``ndim >= 2``).
        """
        if parameters is None:
            targets = [p for group in optimizer.param_groups for p in group["params"]]
        else:
            targets = _weights(parameters)

        def hook(optimizer, args, kwargs):
            self(targets)

        return optimizer.register_step_post_hook(hook)
