"""Inference fusions: a convolution, the batch norm after it and a ReLU run as one convolution.

In eval mode a batch norm is a fixed affine map per channel, ``y = x * scale + shift`` with
``scale = weight / sqrt(running_var + eps)`` and ``shift = bias - running_mean * scale``, so
it folds into the convolution before it (Jacob et al. 2018, section 3.2): the weights of
output channel o scaled by ``scale[o]``, the bias become ``bias * scale + shift``. A ReLU
after it is applied by the convolution as it writes its output (the compiled Winograd and
im2col kernels do it in their output pass). One pass over the activations instead of
three, for the same numbers up to rounding.

``conv_bn(conv, bn, x, relu)`` is how a model asks for it: it runs the fused convolution
when nothing can tell the difference (the batch norm in eval mode with running statistics,
no gradient being recorded, no hook on any of the modules, anomaly mode off), and the three
modules one after the other otherwise.
"""

from __future__ import annotations

from convstack import anomaly
from convstack.autograd import is_grad_enabled
from convstack.backend import get_array_module
from convstack.nn.functional.conv import _conv
from convstack.tensor import Tensor


def _hooked(module) -> bool:
    return bool(module._forward_pre_hooks or module._forward_hooks or module._backward_hooks)


def fusable(conv, bn, relu=None) -> bool:
    """Whether ``relu(bn(conv(x)))`` may run as one convolution now (see the module)."""
    if is_grad_enabled() or anomaly._enabled or bn.training or bn.running_mean is None:
        return False
    if type(conv).__name__ not in ("Conv1d", "Conv2d", "Conv3d") or conv.out_channels != bn.num_features:
        return False
    return not any(_hooked(module) for module in (conv, bn, relu) if module is not None)


def folded(conv, bn):
    """The convolution's (weight, bias) with ``bn``'s eval-mode affine map folded in, as arrays."""
    weight = conv.weight.data
    xp = get_array_module(weight)
    scale = 1.0 / xp.sqrt(bn.running_var.data.astype(weight.dtype) + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.data
    shift = -bn.running_mean.data.astype(weight.dtype) * scale
    if bn.bias is not None:
        shift = shift + bn.bias.data
    bias = shift if conv.bias is None else conv.bias.data * scale + shift
    scale = scale.astype(weight.dtype, copy=False)
    return weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1)), bias.astype(weight.dtype, copy=False)


def conv_bn(conv, bn, x, relu=None):
    """``relu(bn(conv(x)))`` (``relu`` a ReLU module, or None for ``bn(conv(x))``), as one convolution when it can be.

    Example:
        >>> out = fusion.conv_bn(self.conv1, self.bn1, x, self.relu)   # in a residual block's forward
    """
    if not fusable(conv, bn, relu):
        out = bn(conv(x))
        return out if relu is None else relu(out)
    if conv._check_input is not None:
        conv._checked(x)
    weight, bias = folded(conv, bn)
    dims = conv._spatial_dims
    return _conv(f"conv{dims}d", dims, conv._pad(x), Tensor._make(weight), Tensor._make(bias), conv.stride,
                 conv._conv_padding, conv.dilation, conv.groups, relu=relu is not None)
