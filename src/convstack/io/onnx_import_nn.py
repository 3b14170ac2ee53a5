"""ONNX nodes as convstack modules: the layers without parameters (pooling, pad, activations).

Builders as in ``onnx_import_ops``; the convolution and pooling options (``pads`` split into a
symmetric padding or an explicit pre-padding) are read here for both.
"""

from __future__ import annotations

import numpy

import convstack as cs
import convstack.nn.functional as F
from convstack import nn
from convstack.io.onnx_import_tensor import OnnxOp, Step, configured, ints, pads_to_torch


def spatial_options(node, ctx, spatial: int, attributes: dict, kind: str):
    """Stride, symmetric padding (or pre-padding pairs when asymmetric) and dilation of a conv or pool node."""
    if attributes.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise ctx.fail(node, f"auto_pad {attributes['auto_pad']!r} is not supported (only NOTSET and VALID)")
    pads = list(attributes.get("pads", [0] * (2 * spatial)))
    stride = tuple(attributes.get("strides", [1] * spatial))
    dilation = tuple(attributes.get("dilations", [1] * spatial))
    before, after = pads[:spatial], pads[spatial:]
    return stride, before, after, dilation


def with_pre_pad(node, ctx, step: Step, before, after, value: float) -> list:
    """``step`` preceded by an explicit ``F.pad`` of its data input (asymmetric or oversized padding)."""
    padded = f"{node.output[0]}/padded"
    pairs = list(zip(before, after))
    pad = OnnxOp("Pad", lambda x: F.pad(x, pads_to_torch([(0, 0), (0, 0)] + pairs), value=value),
                 pads=pairs, value=value)
    step.inputs = [padded] + step.inputs[1:]
    return [Step(f"{node.name}_pad", pad, [node.input[0]], [padded]), step]


# -------------------------------------------------------------------------------------- pooling
_MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}


def _pool(node, ctx):
    attributes = ctx.attributes(node)
    kernel = tuple(attributes["kernel_shape"])
    spatial = len(kernel)
    if spatial not in _MAX_POOL:
        raise ctx.fail(node, f"{spatial}-D pooling is not supported")
    stride, before, after, dilation = spatial_options(node, ctx, spatial, attributes, "pool")
    ceil_mode = bool(attributes.get("ceil_mode", 0))
    native = before == after and all(p <= k // 2 for p, k in zip(before, kernel))
    padding = tuple(before) if native else (0,) * spatial
    if node.op_type == "MaxPool":
        if len(node.output) > 1 and node.output[1]:
            ctx.unsupported[node.output[1]] = f"the Indices output of MaxPool node '{node.name}' is not supported"
        layer = _MAX_POOL[spatial](kernel, stride, padding, dilation, ceil_mode=ceil_mode)
        fill = -numpy.inf
    else:
        if any(d != 1 for d in dilation):
            raise ctx.fail(node, f"dilations {list(dilation)} are not supported in average pooling")
        include = bool(attributes.get("count_include_pad", 0))
        layer = _AVG_POOL[spatial](kernel, stride, padding, ceil_mode=ceil_mode, count_include_pad=include)
        if not native and not include:
            return [Step(node.name, _masked_average(layer, before, after), [node.input[0]], [node.output[0]])]
        fill = 0.0
    step = Step(node.name, layer, [node.input[0]], [node.output[0]])
    return [step] if native else with_pre_pad(node, ctx, step, before, after, fill)


def _masked_average(layer, before, after) -> OnnxOp:
    """Average pooling over explicit (asymmetric or wide) padding that the divisor leaves out:
    the pooled zero-padded input over the pooled zero-padded mask of ones (the count of real elements)."""
    pairs = pads_to_torch([(0, 0), (0, 0)] + list(zip(before, after)))

    def average(x):
        mask = cs.ones(1, 1, *x.shape[2:], dtype=x.dtype)
        return layer(F.pad(x, pairs)) / layer(F.pad(mask, pairs))

    return OnnxOp("AveragePool", average, pads=list(before) + list(after), count_include_pad=0)


def _global_pool(node, ctx):
    largest = node.op_type == "GlobalMaxPool"

    def pool(x):
        out = x
        for axis in range(x.ndim - 1, 1, -1):
            out = out.max(axis, keepdim=True).values if largest else out.mean(axis, keepdim=True)
        return out

    return [Step(node.name, OnnxOp(node.op_type, pool), [node.input[0]], [node.output[0]])]


# ------------------------------------------------------------------------------------------ pad
_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def _pad(node, ctx):
    """Pads as attributes (opsets 2-10) or inputs (11: pads, constant_value; 18: axes); negative pads crop."""
    attributes = ctx.attributes(node)
    mode = attributes.get("mode", "constant")
    if mode not in _PAD_MODES:
        raise ctx.fail(node, f"mode {mode!r} is not supported ({', '.join(_PAD_MODES)} are)")
    preset = {1: attributes.get("pads"), 2: attributes.get("value", 0.0), 3: None} if ctx.opset < 11 else None

    def make(values):
        if values[1] is None:
            raise ctx.fail(node, "the pads are missing")
        pads = ints(values[1])
        fill = values[2]
        value = 0.0 if fill is None or numpy.asarray(fill).size == 0 else numpy.asarray(fill).item()
        axes = None if values[3] is None else ints(values[3])

        def pad(x):
            chosen = list(range(x.ndim)) if axes is None else [a % x.ndim for a in axes]
            if len(pads) != 2 * len(chosen):
                raise ctx.fail(node, f"{len(pads)} pads for the {len(chosen)} padded axes of an input of shape "
                                     f"{x.shape}")
            pairs = [(0, 0)] * x.ndim
            for i, axis in enumerate(chosen):
                pairs[axis] = (pads[i], pads[i + len(chosen)])
            return F.pad(x, pads_to_torch(pairs), mode=_PAD_MODES[mode], value=value)

        return pad

    return [configured(node, ctx, {1: "pads", 2: "constant_value", 3: "axes"}, make, preset, mode=mode)]


def _activation(factory):
    def build(node, ctx):
        return [Step(node.name, factory(ctx.attributes(node)), [node.input[0]], [node.output[0]])]

    return build


def _softmax(layer, name):
    def build(node, ctx):
        axis = ctx.attributes(node).get("axis", -1 if ctx.opset >= 13 else 1)
        if ctx.opset >= 13:
            return [Step(node.name, layer(dim=axis), [node.input[0]], [node.output[0]])]
        function = F.softmax if name == "Softmax" else F.log_softmax

        def coerced(x):  # before opset 13: over the input flattened to 2-D at `axis`
            return function(x.reshape(int(numpy.prod(x.shape[:axis])), -1), 1).reshape(x.shape)

        return [Step(node.name, OnnxOp(name, coerced, axis=axis), [node.input[0]], [node.output[0]])]

    return build


LAYER_BUILDERS = {
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "Pad": _pad,
    "Relu": _activation(lambda a: nn.ReLU()),
    "LeakyRelu": _activation(lambda a: nn.LeakyReLU(a.get("alpha", 0.01))),
    "Elu": _activation(lambda a: nn.ELU(a.get("alpha", 1.0))),
    "Gelu": _activation(lambda a: nn.GELU(a.get("approximate", "none"))),
    "Sigmoid": _activation(lambda a: nn.Sigmoid()),
    "Tanh": _activation(lambda a: nn.Tanh()),
    "Softmax": _softmax(nn.Softmax, "Softmax"),
    "LogSoftmax": _softmax(nn.LogSoftmax, "LogSoftmax"),
}
