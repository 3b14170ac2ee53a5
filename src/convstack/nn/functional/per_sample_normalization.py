"""Normalisation with per-sample statistics: layer (Ba et al. 2016), group (Wu & He 2018) and instance
(Ulyanov et al. 2016) normalisation.

All three standardise blocks of one sample, so none depends on the batch size:

    layer_norm     over the trailing ``normalized_shape`` dimensions    (R, L) = (N * ..., prod(normalized_shape))
    group_norm     over each group of C / G channels and all positions   (R, L) = (N * G, C / G * prod(spatial))
    instance_norm  over the positions of each channel                    (R, L) = (N * C, prod(spatial))

Each is the same op on a contiguous (R, L) view of the input: ``Standardize`` (mean and
biased variance over L, forward and closed-form backward), then the affine parameters as
ordinary broadcasting tensor ops (their gradients are sums the autograd already does).
"""

from __future__ import annotations

import math
import numbers

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid, shape_context
from convstack.nn.functional.normalization import batch_norm
from convstack.tensor import Tensor, as_tensor


class Standardize(Function):
    """``x_hat = (x - mean) / sqrt(var + eps)`` along the rows of an (R, L) view; also returns mean and var (R,).

    Backward, with ``g`` the gradient of ``x_hat`` and means over L:
    ``dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))``.
    """

    def forward(self, x, *, rows, eps):
        xp = get_array_module(x)
        x2 = x.reshape(rows, -1)  # (R, L)
        mean = x2.mean(axis=1, keepdims=True)
        centred = x2 - mean
        var = (centred * centred).mean(axis=1, keepdims=True)  # biased: the one that normalises
        inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
        centred *= inv_std  # x_hat, in place
        self.x_hat, self.inv_std = centred, inv_std
        return centred.reshape(x.shape), mean[:, 0], var[:, 0]

    def backward(self, grad):
        g = grad.reshape(self.x_hat.shape)  # (R, L)
        x_hat = self.x_hat
        dx = g - g.mean(axis=1, keepdims=True)
        dx -= x_hat * (g * x_hat).mean(axis=1, keepdims=True)
        dx *= self.inv_std
        return (dx.reshape(grad.shape),)


def _float_input(op: str, input, min_dims: int, layout: str) -> Tensor:
    input = as_tensor(input)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, received dtype {input.dtype}")
    if input.ndim < min_dims:
        raise ValueError(f"{op}: expected an input of at least {min_dims} dimensions {layout}, received shape "
                         f"{input.shape}")
    return input


def _check_eps(op: str, eps, context: str) -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps >= 0:
        raise invalid(op, "eps", "a non-negative number", eps, context)
    return float(eps)


def _affine_parameter(op: str, name: str, value, shape: tuple, input: Tensor, context: str):
    """``value`` as a tensor of ``shape`` and the input's dtype, or None."""
    if value is None:
        return None
    value = as_tensor(value)
    if value.shape != shape or value.dtype != input.dtype:
        raise invalid(op, name, f"a {input.dtype} tensor of shape {shape}", f"{value.dtype} of shape {value.shape}",
                      context)
    return value


def _affine(out: Tensor, weight, bias, shape: tuple) -> Tensor:
    """``out * weight + bias`` with the (C,) or ``normalized_shape`` parameters viewed as ``shape``."""
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the trailing dimensions ``normalized_shape``, as ``torch.nn.functional.layer_norm``.

    Each sample's last ``len(normalized_shape)`` dimensions are standardised with their own
    mean and biased variance: ``y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias``.

    Args:
        input: float tensor (*, *normalized_shape).
        normalized_shape: an int or a tuple of ints, the trailing sizes to normalise over.
        weight, bias: optional tensors of shape ``normalized_shape``.
        eps: added to the variance under the square root.

    Shape:
        Input (*, *normalized_shape), output the same.

    Examples:
        >>> F.layer_norm(cs.tensor([[1.0, 3.0], [2.0, 2.0]]), 2)
        tensor([[-1.,  1.],
                [ 0.,  0.]])
    """
    op = "layer_norm"
    input = _float_input(op, input, 1, "(*, *normalized_shape)")
    context = shape_context(input=input.shape)
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else normalized_shape
    try:
        shape = tuple(shape)
    except TypeError:
        shape = None
    valid = (shape is not None and 0 < len(shape) <= input.ndim
             and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shape))
    if not valid or tuple(input.shape[-len(shape):]) != tuple(int(s) for s in shape):
        trailing = "the input's trailing sizes, e.g. " + str(input.shape[-1:])
        raise invalid(op, "normalized_shape", trailing, normalized_shape, context)
    shape = tuple(int(s) for s in shape)
    eps = _check_eps(op, eps, context)
    weight = _affine_parameter(op, "weight", weight, shape, input, context)
    bias = _affine_parameter(op, "bias", bias, shape, input, context)
    rows = math.prod(input.shape[: input.ndim - len(shape)])
    out, _, _ = Standardize.apply(input, rows=rows, eps=eps)
    return _affine(out, weight, bias, shape)


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Group normalisation (Wu & He 2018), as ``torch.nn.functional.group_norm``.

    The C channels are split into ``num_groups`` groups of consecutive channels; each
    sample's group is standardised over its channels and positions, then each channel is
    scaled by ``weight[c]`` and shifted by ``bias[c]``. One group is layer norm over (C, *);
    C groups is instance norm.

    Args:
        input: float tensor (N, C, *).
        num_groups: number of groups, a divisor of C.
        weight, bias: optional per-channel (C,) tensors.
        eps: added to the variance under the square root.

    Shape:
        Input (N, C, *), output the same.

    Examples:
        >>> F.group_norm(cs.tensor([[[1.0], [3.0], [5.0], [5.0]]]), 2).reshape(4)
        tensor([-1.,  1.,  0.,  0.])
    """
    op = "group_norm"
    input = _float_input(op, input, 2, "(N, C, *)")
    context = shape_context(input=input.shape)
    channels = input.shape[1]
    if (isinstance(num_groups, bool) or not isinstance(num_groups, numbers.Integral) or num_groups < 1
            or channels % num_groups):
        raise invalid(op, "num_groups", f"a positive divisor of the {channels} channels", num_groups, context)
    eps = _check_eps(op, eps, context)
    weight = _affine_parameter(op, "weight", weight, (channels,), input, context)
    bias = _affine_parameter(op, "bias", bias, (channels,), input, context)
    out, _, _ = Standardize.apply(input, rows=input.shape[0] * int(num_groups), eps=eps)
    return _affine(out, weight, bias, (channels,) + (1,) * (input.ndim - 2))


def _running_stat(op, name, value, channels, context):
    if value is None:
        return None
    array = value.data if isinstance(value, Tensor) else value
    if not hasattr(array, "shape") or tuple(array.shape) != (channels,) or array.dtype.kind != "f":
        received = tuple(array.shape) if hasattr(array, "shape") else value
        raise invalid(op, name, f"a float tensor of shape ({channels},)", received, context)
    return array


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Instance normalisation (Ulyanov et al. 2016), as ``torch.nn.functional.instance_norm``.

    With ``use_input_stats`` each (sample, channel) plane is standardised with its own
    mean and biased variance, and the running statistics (when given) move towards the
    batch average of the planes' means and *unbiased* variances:
    ``running = (1 - momentum) * running + momentum * average``. Otherwise the running
    statistics normalise every plane (as ``batch_norm`` in eval mode).

    Args:
        input: float tensor (N, C, *) with at least one spatial dimension.
        running_mean, running_var: (C,) tensors or arrays (updated in place), or None.
        weight, bias: optional per-channel (C,) tensors.
        use_input_stats: normalise with each plane's statistics (else the running ones).
        momentum: weight of the new statistics in the running update.
        eps: added to the variance under the square root.

    Shape:
        Input (N, C, L), (N, C, H, W) or (N, C, D, H, W); output the same.

    Examples:
        >>> F.instance_norm(cs.tensor([[[1.0, 3.0], [2.0, 6.0]]]))
        tensor([[[-1.,  1.],
                 [-1.,  1.]]])
    """
    op = "instance_norm"
    input = _float_input(op, input, 3, "(N, C, *spatial)")
    context = shape_context(input=input.shape)
    channels = input.shape[1]
    eps = _check_eps(op, eps, context)
    mean_array = _running_stat(op, "running_mean", running_mean, channels, context)
    var_array = _running_stat(op, "running_var", running_var, channels, context)
    if not use_input_stats:
        if mean_array is None or var_array is None:
            raise invalid(op, "running_mean", "running statistics when use_input_stats=False", None, context)
        return batch_norm(input, running_mean, running_var, weight, bias, False, 0.0, eps)
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise invalid(op, "momentum", "a number", momentum, context)
    positions = input.numel() // max(input.shape[0] * channels, 1)
    if input.shape[0] * positions == 1:
        raise ValueError(f"{op}: expected more than 1 spatial element when training, received input shape "
                         f"{input.shape}")
    weight = _affine_parameter(op, "weight", weight, (channels,), input, context)
    bias = _affine_parameter(op, "bias", bias, (channels,), input, context)
    out, mean, var = Standardize.apply(input, rows=input.shape[0] * channels, eps=eps)
    unbiased = positions / max(positions - 1, 1)  # the running variance is the unbiased one, as PyTorch
    for running, planes in ((mean_array, mean.data), (var_array, var.data * unbiased)):
        if running is not None:
            running *= 1.0 - momentum
            running += momentum * planes.reshape(input.shape[0], channels).mean(axis=0).astype(running.dtype)
    return _affine(out, weight, bias, (channels,) + (1,) * (input.ndim - 2))
