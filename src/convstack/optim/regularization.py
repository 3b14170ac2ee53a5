"""Weight-decay parameter groups and explicit penalties to add to the loss.

``param_groups_weight_decay`` splits a model's parameters into a decayed group (weights:
``ndim >= 2``) and an undecayed one (biases, normalisation scales and shifts: ``ndim <= 1``,
plus anything named in ``skip_list``), the usual practice since decaying biases and
batch-norm parameters only hurts (Goyal et al. 2017; timm's helper of the same name).

The penalties return differentiable scalar tensors. Convention: ``l2_penalty`` is
``strength * 0.5 * sum(w ** 2)``, so its gradient is ``strength * w`` and adding it to the
loss is the same as SGD's ``weight_decay=strength``.
"""

from __future__ import annotations

import numpy

from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor


def param_groups_weight_decay(model, weight_decay: float = 1e-5, skip_list=()) -> list[dict]:
    """Two parameter groups for an optimizer: no decay for biases and norms, ``weight_decay`` for the rest.

    Args:
        model: anything with ``named_parameters()`` (a ``convstack.nn.Module``).
        weight_decay: the decay of the weight group (>= 0).
        skip_list: parameter names (dotted, as ``named_parameters()`` gives them) or module-name
            prefixes (``"head"`` skips ``"head.weight"``) that get no decay whatever their shape.

    Returns:
        ``[{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]``;
        parameters with ``requires_grad=False`` (frozen) are left out.

    Examples:
        >>> optimizer = SGD(param_groups_weight_decay(model, 5e-4), lr=0.1, momentum=0.9)
    """
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
        raise invalid("param_groups_weight_decay", "weight_decay", "a number >= 0", weight_decay)
    if isinstance(skip_list, str):
        skip_list = (skip_list,)
    skip = tuple(skip_list)
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        skipped = any(name == entry or name.startswith(entry + ".") for entry in skip)
        (no_decay if parameter.ndim <= 1 or skipped else decay).append(parameter)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def _parameter_list(parameters, op: str) -> list[Tensor]:
    if hasattr(parameters, "parameters") and callable(parameters.parameters):
        parameters = parameters.parameters()
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: expected tensors or a module, but one of the parameters is {type(p).__name__}")
    return parameters


def _check_strength(op: str, argument: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise invalid(op, argument, "a number >= 0", value)
    return value


def _total(terms: list[Tensor], like: list[Tensor]) -> Tensor:
    if not terms:
        dtype = like[0].dtype if like else numpy.float32
        return Tensor._make(numpy.zeros((), dtype=dtype))
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def l1_penalty(parameters, strength: float) -> Tensor:
    """``strength * sum(|w|)`` over ``parameters`` (tensors or a module), a differentiable scalar.

    Its gradient is ``strength * sign(w)`` (0 at 0); it drives weights to exactly zero (sparsity).
    """
    strength = _check_strength("l1_penalty", "strength", strength)
    parameters = _parameter_list(parameters, "l1_penalty")
    return _total([p.abs().sum() * strength for p in parameters], parameters)


def l2_penalty(parameters, strength: float) -> Tensor:
    """``strength * 0.5 * sum(w ** 2)`` over ``parameters`` (tensors or a module), a differentiable scalar.

    Its gradient is ``strength * w``: the same update as SGD's ``weight_decay=strength``.
    """
    strength = _check_strength("l2_penalty", "strength", strength)
    parameters = _parameter_list(parameters, "l2_penalty")
    return _total([(p * p).sum() * (0.5 * strength) for p in parameters], parameters)


def elastic_net_penalty(parameters, l1: float, l2: float) -> Tensor:
    """``l1 * sum(|w|) + l2 * 0.5 * sum(w ** 2)`` (Zou & Hastie 2005), a differentiable scalar."""
    _check_strength("elastic_net_penalty", "l1", l1)
    _check_strength("elastic_net_penalty", "l2", l2)
    parameters = _parameter_list(parameters, "elastic_net_penalty")
    return l1_penalty(parameters, l1) + l2_penalty(parameters, l2)
