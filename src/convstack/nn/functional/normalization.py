"""Batch normalisation (Ioffe & Szegedy 2015) and local response normalisation (Krizhevsky et al. 2012).

Both act on (N, C, *) inputs with any number of trailing dimensions, as PyTorch's do.
``batch_norm`` is one fused op: its backward is the closed form of the gradient through
the batch statistics rather than a chain of small ops.
"""

from __future__ import annotations

import numbers

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid, shape_context
from convstack.nn.kernels import tiers
from convstack.nn.kernels.reference import normalization as kernels
from convstack.tensor import Tensor, as_tensor


class BatchNorm(Function):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` per channel, with batch or running statistics.

    Tensor inputs: ``x`` and, when present, ``weight`` then ``bias`` (``affine`` says which).
    ``running_mean`` / ``running_var`` are plain arrays updated in place when training.
    ``relu`` applies a rectifier to the output in the same op (``Sequential`` fuses a
    ``BatchNorm`` followed by a ``ReLU`` this way). The arithmetic is the kernels'
    (``batch_norm_forward`` / ``batch_norm_backward`` of the tier in use): the backward is
    the closed form of the gradient through the batch statistics.
    """

    def forward(self, x, *params, running_mean, running_var, training, momentum, eps, affine, relu=False):
        weight = params[0] if affine[0] else None
        bias = params[-1] if affine[1] else None
        needs = self.needs_input_grad
        self.needs = (needs[0], affine[0] and needs[1], affine[1] and needs[-1])
        self.affine = affine
        tier = tiers.tier_for(x)
        self.backward_kernel = tier.implementation(kernels.batch_norm_backward)
        out, self.saved = tier.implementation(kernels.batch_norm_forward)(
            x, weight, bias, running_mean, running_var, training, momentum, eps, self.needs, relu)
        return out

    def backward(self, grad):
        grad_input, grad_weight, grad_bias = self.backward_kernel(grad, self.saved, self.needs)
        grads = [grad_input]
        if self.affine[0]:
            grads.append(grad_weight)
        if self.affine[1]:
            grads.append(grad_bias)
        return tuple(grads)


def _stat_array(op, name, value, channels, context):
    """A running statistic as its array (updated in place), checked to be (C,)."""
    if value is None:
        return None
    array = value.data if isinstance(value, Tensor) else value
    if not hasattr(array, "shape") or tuple(array.shape) != (channels,) or array.dtype.kind != "f":
        received = tuple(array.shape) if hasattr(array, "shape") else value
        raise invalid(op, name, f"a float tensor of shape ({channels},)", received, context)
    return array


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation over the channel dimension, as ``torch.nn.functional.batch_norm``.

    In training the mean and the biased variance over (N, *) normalise the input, and the
    running statistics (when given) move towards the batch's:
    ``running = (1 - momentum) * running + momentum * batch``, with the *unbiased* batch
    variance, as PyTorch. Otherwise the running statistics normalise the input.

    Args:
        input: (N, C, *) float tensor.
        running_mean, running_var: (C,) tensors or arrays (updated in place when training), or None.
        weight, bias: optional (C,) affine parameters (gamma, beta).
        training: use batch statistics (and update the running ones).
        momentum: weight of the batch statistics in the running update.
        eps: added to the variance under the square root.

    Shape:
        Input (N, C, *), output the same.

    Examples:
        >>> x = cs.tensor([[1.0, 10.0], [3.0, 30.0]])
        >>> mean, var = cs.zeros(2), cs.ones(2)
        >>> F.batch_norm(x, mean, var, training=True, eps=0.0)
        tensor([[-1., -1.],
                [ 1.,  1.]])
        >>> mean
        tensor([0.2, 2. ])
    """
    return _batch_norm("batch_norm", input, running_mean, running_var, weight, bias, training, momentum, eps, False)


def batch_norm_relu(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
                    momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """``relu(batch_norm(...))`` as one op, equal to the two in values and gradients; arguments as ``batch_norm``.

    One pass over the output instead of three on the compiled tier. ``nn.Sequential`` runs a
    ``BatchNorm`` module directly followed by a ``ReLU`` module through it.

    Examples:
        >>> x = cs.tensor([[1.0, 10.0], [3.0, 30.0]])
        >>> batch_norm_relu(x, None, None, training=True, eps=0.0)
        tensor([[0., 0.],
                [1., 1.]])
    """
    return _batch_norm("batch_norm_relu", input, running_mean, running_var, weight, bias, training, momentum, eps,
                       True)


def _batch_norm(op, input, running_mean, running_var, weight, bias, training, momentum, eps, relu) -> Tensor:
    input = as_tensor(input)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, received dtype {input.dtype}")
    if input.ndim < 2:
        raise ValueError(f"{op}: expected an input of at least 2 dimensions (N, C, *), received shape {input.shape}")
    channels = input.shape[1]
    context = shape_context(input=input.shape)
    mean_array = _stat_array(op, "running_mean", running_mean, channels, context)
    var_array = _stat_array(op, "running_var", running_var, channels, context)
    if not training and (mean_array is None or var_array is None):
        raise invalid(op, "running_mean", "running statistics when training=False", None, context)
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise invalid(op, "momentum", "a number", momentum, context)
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or eps < 0:
        raise invalid(op, "eps", "a non-negative number", eps, context)
    if training and input.numel() // channels < 2:
        raise ValueError(
            f"{op}: expected more than 1 value per channel when training, received input shape {input.shape}"
        )
    params = []
    for name, param in (("weight", weight), ("bias", bias)):
        if param is None:
            continue
        param = as_tensor(param)
        if param.shape != (channels,) or param.dtype != input.dtype:
            raise invalid(op, name, f"a {input.dtype} tensor of shape ({channels},)",
                          f"{param.dtype} of shape {param.shape}", context)
        params.append(param)
    return BatchNorm.apply(input, *params, running_mean=mean_array, running_var=var_array, training=bool(training),
                           momentum=float(momentum), eps=float(eps), affine=(weight is not None, bias is not None),
                           relu=relu)


class LocalResponseNorm(Function):
    """``y_c = x_c / (k + alpha / size * sum_{c' in W(c)} x_{c'}^2) ** beta``.

    W(c) is the window of channels ``[c - size // 2, c + (size - 1) // 2]`` (zeros outside).
    """

    def forward(self, x, *, size, alpha, beta, k):
        xp = get_array_module(x)
        window = _channel_window_sum(xp, x * x, size, size // 2, (size - 1) // 2)  # (N, C, *)
        denominator = window
        denominator *= alpha / size
        denominator += k  # D = k + alpha / size * window
        factor = denominator ** -beta  # D^(-beta)
        self.x, self.denominator, self.factor = x, denominator, factor
        self.size, self.alpha, self.beta = size, alpha, beta
        return x * factor

    def backward(self, grad):
        xp = get_array_module(grad)
        # dx_j = g_j D_j^-beta - 2 alpha beta / size * x_j * sum_{c : j in W(c)} g_c x_c D_c^(-beta - 1);
        # j in W(c) exactly when c lies in the mirrored window [j - (size - 1) // 2, j + size // 2].
        term = grad * self.x
        term *= self.factor
        term /= self.denominator
        spread = _channel_window_sum(xp, term, self.size, (self.size - 1) // 2, self.size // 2)
        spread *= self.x
        spread *= -2.0 * self.alpha * self.beta / self.size
        spread += grad * self.factor
        return (spread,)


def _channel_window_sum(xp, values, size, before, after):
    """``out[:, c] = sum(values[:, c - before : c + after + 1])`` with zeros outside, one slice-add per offset."""
    channels = values.shape[1]
    pad = [(0, 0)] * values.ndim
    pad[1] = (before, after)
    padded = xp.pad(values, pad)  # (N, C + size - 1, *)
    out = padded[:, 0:channels].copy()
    for offset in range(1, size):
        out += padded[:, offset : offset + channels]
    return out


def local_response_norm(input, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """Local response normalisation across channels (AlexNet, Krizhevsky et al. 2012), as PyTorch.

    ``b_c = a_c / (k + alpha / size * sum_{c'} a_{c'}^2) ** beta`` where c' runs over the ``size``
    channels from ``c - size // 2`` to ``c + (size - 1) // 2`` (missing channels count as zero).
    Note that PyTorch, and so convstack, divides ``alpha`` by ``size``; the AlexNet paper does not.

    Args:
        input: (N, C, *) float tensor with at least one trailing dimension.
        size: number of neighbouring channels summed.
        alpha, beta, k: the constants of the formula above.

    Shape:
        Input (N, C, D1, ...), output the same.

    Examples:
        >>> F.local_response_norm(cs.ones(1, 3, 1), size=2, alpha=1.0, beta=1.0, k=1.0).reshape(3)
        tensor([0.6667, 0.5   , 0.5   ])
    """
    op = "local_response_norm"
    input = as_tensor(input)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, received dtype {input.dtype}")
    if input.ndim < 3:
        raise ValueError(f"{op}: expected an input of at least 3 dimensions (N, C, D1, ...), received shape "
                         f"{input.shape}")
    context = shape_context(input=input.shape)
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise invalid(op, "size", "a positive integer", size, context)
    for name, value in (("alpha", alpha), ("beta", beta), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise invalid(op, name, "a number", value, context)
    return LocalResponseNorm.apply(input, size=int(size), alpha=float(alpha), beta=float(beta), k=float(k))
