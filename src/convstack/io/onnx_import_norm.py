"""ONNX normalisation operators beyond the batch-norm layer: ``LRN`` (any window size),
``InstanceNormalization``, and batch normalisation written out for the forms that are not an
``nn.BatchNorm`` layer (statistics computed in the graph or shared, opset 7's ``spatial=0``).

Import-side layers, built from convstack's tensor operations (gradients included):
``InstanceNormalization`` is an ``InstanceNorm`` module owning its scale and shift as
parameters when the file stores them as initializers, so it fine-tunes.
"""

from __future__ import annotations

import numpy

import convstack.nn.functional as F
from convstack import nn
from convstack.io.onnx_import_tensor import OnnxOp, Step, fill_layer
from convstack.nn.modules.module import Module
from convstack.nn.modules.parameter import Parameter


def _channel_shape(x) -> tuple:
    """The shape that lines a per-channel vector up with (N, C, *) ``x``: (1, C, 1, ...)."""
    return (1, -1) + (1,) * (x.ndim - 2)


def instance_norm(x, scale, bias, eps: float):
    """Each (sample, channel) plane of (N, C, *) ``x`` normalised over its positions (biased variance), then
    ``scale`` and ``bias`` (C,) per channel: ``y = scale * (x - mean) / sqrt(var + eps) + bias``."""
    dims = tuple(range(2, x.ndim))
    centred = x - x.mean(dims, keepdim=True)
    variance = (centred * centred).mean(dims, keepdim=True)
    shape = _channel_shape(x)
    return centred / (variance + eps).sqrt() * scale.reshape(shape) + bias.reshape(shape)


class InstanceNorm(Module):
    """ONNX's ``InstanceNormalization`` with its per-channel scale and shift as parameters.

    Args:
        num_features: C, the channels of the (N, C, *) input.
        eps: added to the variance before the square root.

    Shape:
        Input (N, C, *), output the same.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, dtype=numpy.float32):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = Parameter(numpy.ones(num_features, dtype=dtype))
        self.bias = Parameter(numpy.zeros(num_features, dtype=dtype))

    def forward(self, x):
        return instance_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def _instance_norm(node, ctx):
    eps = ctx.attributes(node).get("epsilon", 1e-5)
    if ctx.is_layer_weight(node, 1) and ctx.is_layer_weight(node, 2):
        scale = ctx.constants[node.input[1]]
        layer = InstanceNorm(scale.shape[0], eps, dtype=scale.dtype)
        params = fill_layer(layer, {"weight": node.input[1], "bias": node.input[2]}, ctx)
        return [Step(node.name, layer, [node.input[0]], [node.output[0]], params)]
    op = OnnxOp("InstanceNormalization", lambda x, scale, bias: instance_norm(x, scale, bias, eps), epsilon=eps)
    return [Step(node.name, op, list(node.input[:3]), [node.output[0]])]


def batch_norm_step(node, ctx, eps: float, spatial: bool) -> Step:
    """Inference batch norm as arithmetic on its five inputs, for statistics that are not one layer's own:
    ``y = scale * (x - mean) / sqrt(var + eps) + bias``, per channel (``spatial``) or, with opset 7's
    ``spatial=0``, per (channel, position): then the four inputs have the shape (C, D1, ...)."""
    for name in node.input[3:5]:  # statistics held by the graph are buffers, not parameters to train
        if name in ctx.constants and not ctx.kinds.get(name):
            ctx.kinds[name] = "buffer"

    def batch_norm(x, scale, bias, mean, variance):
        shape = _channel_shape(x) if spatial else (1,) + tuple(scale.shape)
        normalised = (x - mean.reshape(shape)) / (variance.reshape(shape) + eps).sqrt()
        return normalised * scale.reshape(shape) + bias.reshape(shape)

    op = OnnxOp("BatchNormalization", batch_norm, epsilon=eps, spatial=int(spatial))
    return Step(node.name, op, list(node.input[:5]), [node.output[0]])


def _lrn(node, ctx):
    """ONNX sums the squares over channels ``[c - (size - 1) // 2, c + size // 2]``; PyTorch's window (and
    ``nn.LocalResponseNorm`` 's) is the mirror image, ``[c - size // 2, c + (size - 1) // 2]``. The two agree
    for odd sizes; for even ones the channels are reversed around PyTorch's op, which mirrors its window."""
    attributes = ctx.attributes(node)
    size = attributes["size"]
    if size < 1:
        raise ctx.fail(node, f"size must be a positive integer, received {size}")
    alpha, beta, bias = attributes.get("alpha", 1e-4), attributes.get("beta", 0.75), attributes.get("bias", 1.0)
    if size % 2:
        layer = nn.LocalResponseNorm(size, alpha, beta, bias)
        return [Step(node.name, layer, [node.input[0]], [node.output[0]])]

    def mirrored(x):
        reverse = (slice(None), slice(None, None, -1))
        return F.local_response_norm(x[reverse], size, alpha, beta, bias)[reverse]

    op = OnnxOp("LRN", mirrored, size=size, alpha=alpha, beta=beta, bias=bias)
    return [Step(node.name, op, [node.input[0]], [node.output[0]])]


NORM_BUILDERS = {
    "LRN": _lrn,
    "InstanceNormalization": _instance_norm,
}
