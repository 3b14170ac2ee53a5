"""Normalisation with per-sample statistics: layer (Ba et al. 2016), group (Wu & He 2018) and instance
(Ulyanov et al. 2016) normalisation.

All three standardise blocks of one sample, so none depends on the batch size. One op serves
them all, on the input viewed as (A, G, Cg, L): each (a, g) block is standardised over its
(Cg, L) elements, then scaled and shifted by ``weight[g, c]`` and ``bias[g, c]``:

    layer_norm     (prod(leading), 1, prod(normalized_shape), 1)   parameters per element
    group_norm     (N, G, C / G, prod(spatial))                    parameters per channel
    instance_norm  (N, C, 1, prod(spatial))                        parameters per channel

``PerSampleNorm`` fuses the standardisation and the affine parameters in both passes (as
``batch_norm`` does): forward keeps the centred input and the inverse deviations, backward
forms the input gradient as ``a * g + b * centred + k`` from two per-block sums.
"""

from __future__ import annotations

import math
import numbers

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid, shape_context
from convstack.nn.functional.normalization import batch_norm
from convstack.tensor import Tensor, as_tensor


class PerSampleNorm(Function):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` with the statistics of each (a, g) block of the
    (A, G, Cg, L) view ``view``, and the parameters (when ``affine`` says so) viewed as (G, Cg).

    Returns the output and, as non-differentiable outputs, the blocks' means and biased
    variances (A * G,) (instance norm's running statistics use them). Backward, with
    ``gh = g * weight``, ``x_hat = centred * inv_std`` and means over the block:
    ``dx = inv_std * (gh - mean(gh) - x_hat * mean(gh * x_hat))``.
    """

    def forward(self, x, *params, view, eps, affine):
        xp = get_array_module(x)
        blocks, groups, per_group, length = view
        weight = params[0].reshape(groups, per_group) if affine[0] else None
        bias = params[-1].reshape(groups, per_group) if affine[1] else None
        x2 = x.reshape(blocks * groups, -1)  # (A * G, Cg * L)
        mean = x2.mean(axis=1, keepdims=True)
        centred = x2 - mean
        count = centred.shape[1]
        var = xp.matmul(centred[:, None, :], centred[:, :, None]).reshape(-1) / count  # row dots, no (A G, n) temp
        inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False).reshape(blocks, groups)
        centred = centred.reshape(view)  # (A, G, Cg, L)
        if weight is not None and length > 1:  # one pass: scale (A, G, Cg) = inv_std * weight
            out = centred * (inv_std[:, :, None] * weight)[..., None]
        else:
            out = centred * inv_std[:, :, None, None]
            if weight is not None:
                out *= weight[None, :, :, None]
        if bias is not None:
            out += bias[None, :, :, None]
        self.centred, self.inv_std, self.weight, self.affine = centred, inv_std, weight, affine
        self.param_shape = params[0].shape if params else None
        return out.reshape(x.shape), mean.reshape(-1), var

    def backward(self, grad):
        centred, inv_std, weight = self.centred, self.inv_std, self.weight
        if centred.shape[1] == 1 and centred.shape[3] == 1:  # (A, 1, K, 1): layer norm
            return self._backward_per_element(grad)
        xp = get_array_module(grad)
        blocks, groups, per_group, length = centred.shape
        g = grad.reshape(centred.shape)  # (A, G, Cg, L)
        needs = self.needs_input_grad
        sum_g = g.sum(axis=3)  # (A, G, Cg)
        sum_gc = xp.matmul(g[..., None, :], centred[..., :, None]).reshape(sum_g.shape)  # sum of g * centred
        grad_input = None
        if needs[0]:
            count = per_group * length
            w_sum_g = (sum_g if weight is None else sum_g * weight).sum(axis=2)  # (A, G): sum of gh
            w_sum_gc = (sum_gc if weight is None else sum_gc * weight).sum(axis=2)  # sum of gh * centred
            a = inv_std[:, :, None] if weight is None else inv_std[:, :, None] * weight  # (A, G, 1 or Cg)
            b = -(inv_std**3) * w_sum_gc / count  # (A, G): -inv_std * mean(gh * x_hat) * inv_std
            k = -inv_std * w_sum_g / count  # (A, G): -inv_std * mean(gh)
            grad_input = g * a[..., None]
            term = centred * b[:, :, None, None]
            term += k[:, :, None, None]
            grad_input += term
            grad_input = grad_input.reshape(grad.shape)
        return self._with_parameter_grads(grad_input, lambda: (sum_gc * inv_std[:, :, None]).sum(axis=0),
                                          lambda: sum_g.sum(axis=0))

    def _backward_per_element(self, grad):
        """Layer norm's case, parameters per element: (A, K) rows, reductions over A as GEMVs."""
        blocks, _, count, _ = self.centred.shape
        centred = self.centred.reshape(blocks, count)  # (A, K)
        g = grad.reshape(blocks, count)
        inv_std = self.inv_std.reshape(blocks)
        weight = None if self.weight is None else self.weight.reshape(count)
        g_centred = g * centred  # (A, K)
        grad_input = None
        if self.needs_input_grad[0]:
            gh = g * weight if weight is not None else g.copy()  # the gradient of x_hat; becomes dx
            sum_gh = gh.sum(axis=1)  # (A,)
            sum_gh_c = g_centred @ weight if weight is not None else g_centred.sum(axis=1)
            b = -(inv_std**3) * sum_gh_c / count
            k = -inv_std * sum_gh / count
            gh *= inv_std[:, None]
            term = centred * b[:, None]
            term += k[:, None]
            gh += term
            grad_input = gh.reshape(grad.shape)
        return self._with_parameter_grads(grad_input, lambda: inv_std @ g_centred, lambda: g.sum(axis=0))

    def _with_parameter_grads(self, grad_input, weight_grad, bias_grad) -> tuple:
        """``(grad_input, [weight grad], [bias grad])``, each parameter's computed only when needed."""
        grads = [grad_input]
        if self.affine[0]:
            grads.append(weight_grad().reshape(self.param_shape) if self.needs_input_grad[1] else None)
        if self.affine[1]:
            grads.append(bias_grad().reshape(self.param_shape) if self.needs_input_grad[-1] else None)
        return tuple(grads)


def _normalize(input, view, weight, bias, eps):
    """Apply ``PerSampleNorm`` with whichever of ``weight`` and ``bias`` are given."""
    params = [p for p in (weight, bias) if p is not None]
    return PerSampleNorm.apply(input, *params, view=view, eps=eps, affine=(weight is not None, bias is not None))


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
    view = (math.prod(input.shape[: input.ndim - len(shape)]), 1, math.prod(shape), 1)
    return _normalize(input, view, weight, bias, eps)[0]


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
    groups = int(num_groups)
    view = (input.shape[0], groups, channels // groups, math.prod(input.shape[2:]))
    return _normalize(input, view, weight, bias, eps)[0]


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
    out, mean, var = _normalize(input, (input.shape[0], channels, 1, positions), weight, bias, eps)
    unbiased = positions / max(positions - 1, 1)  # the running variance is the unbiased one, as PyTorch
    for running, planes in ((mean_array, mean.data), (var_array, var.data * unbiased)):
        if running is not None:
            running *= 1.0 - momentum
            running += momentum * planes.reshape(input.shape[0], channels).mean(axis=0).astype(running.dtype)
    return out
