"""ONNX nodes as convstack modules: the layers without parameters (pooling, pad, activations).

Builders as in ``onnx_import_ops``; the convolution and pooling options (``pads`` split into a
symmetric padding or an explicit pre-padding, ``auto_pad`` SAME computed from the input's size)
are read here for both.
"""

from __future__ import annotations

import numpy

import convstack as cs
import convstack.nn.functional as F
from convstack import nn
from convstack.io.onnx_import_tensor import OnnxOp, Step, configured, ints, pads_to_torch


class SamePadding:
    """``auto_pad`` SAME_UPPER / SAME_LOWER: the padding that makes each output size ``ceil(input / stride)``,
    ``total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - input, 0)``, split in two halves with
    the odd element after (UPPER) or before (LOWER). It depends on the input's size, so it is computed
    at run time: ``pads(spatial_shape) -> (before, after)``."""

    def __init__(self, kernel, stride, dilation, upper: bool):
        self.kernel, self.stride, self.dilation, self.upper = tuple(kernel), stride, dilation, upper

    def __call__(self, spatial_shape) -> tuple:
        before, after = [], []
        for size, kernel, stride, dilation in zip(spatial_shape, self.kernel, self.stride, self.dilation):
            out = -(-size // stride)
            total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
            small, large = total // 2, total - total // 2
            before.append(small if self.upper else large)
            after.append(large if self.upper else small)
        return before, after

    def __repr__(self) -> str:
        return "SAME_UPPER" if self.upper else "SAME_LOWER"


def spatial_options(node, ctx, spatial: int, attributes: dict, kernel=None):
    """Stride, padding and dilation of a conv or pool node; the padding is a (before, after) pair of lists,
    or a ``SamePadding`` for ``auto_pad`` SAME_UPPER/SAME_LOWER (which needs the ``kernel`` size)."""
    auto_pad = attributes.get("auto_pad", "NOTSET")
    stride = tuple(attributes.get("strides", [1] * spatial))
    dilation = tuple(attributes.get("dilations", [1] * spatial))
    if auto_pad in ("SAME_UPPER", "SAME_LOWER") and kernel is not None:
        same = SamePadding(kernel, stride, dilation, auto_pad == "SAME_UPPER")
        # with stride 1 the output keeps the input's size and the pads do not depend on it: fixed at import
        return stride, same([1] * spatial) if all(s == 1 for s in stride) else same, dilation
    if auto_pad not in ("NOTSET", "VALID"):
        raise ctx.fail(node, f"auto_pad {auto_pad!r} is not supported here (NOTSET and VALID are)")
    pads = [0] * (2 * spatial) if auto_pad == "VALID" else list(attributes.get("pads", [0] * (2 * spatial)))
    return stride, (pads[:spatial], pads[spatial:]), dilation


def symmetric_padding(padding) -> tuple | None:
    """The per-dimension padding a layer applies itself (the same before and after), or None."""
    if isinstance(padding, SamePadding) or padding[0] != padding[1]:
        return None
    return tuple(padding[0])


def _pairs(padding, x) -> list:
    before, after = padding(x.shape[2:]) if isinstance(padding, SamePadding) else padding
    return pads_to_torch([(0, 0), (0, 0)] + list(zip(before, after)))


def with_pre_pad(node, ctx, step: Step, padding, value: float) -> list:
    """``step`` preceded by an explicit ``F.pad`` of its data input (asymmetric, oversized or SAME padding)."""
    padded = f"{node.output[0]}/padded"
    pad = OnnxOp("Pad", lambda x: F.pad(x, _pairs(padding, x), value=value), pads=padding, value=value)
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
    stride, padding, dilation = spatial_options(node, ctx, spatial, attributes, kernel)
    ceil_mode = bool(attributes.get("ceil_mode", 0))
    own = symmetric_padding(padding)
    native = own is not None and all(p <= k // 2 for p, k in zip(own, kernel))
    layer_padding = own if native else (0,) * spatial
    if node.op_type == "MaxPool":
        if len(node.output) > 1 and node.output[1]:
            ctx.unsupported[node.output[1]] = f"the Indices output of MaxPool node '{node.name}' is not supported"
        layer = _MAX_POOL[spatial](kernel, stride, layer_padding, dilation, ceil_mode=ceil_mode)
        fill = -numpy.inf
    else:
        if any(d != 1 for d in dilation):
            raise ctx.fail(node, f"dilations {list(dilation)} are not supported in average pooling")
        include = bool(attributes.get("count_include_pad", 0))
        layer = _AVG_POOL[spatial](kernel, stride, layer_padding, ceil_mode=ceil_mode, count_include_pad=include)
        if not native and not include:
            return [Step(node.name, _masked_average(layer, padding), [node.input[0]], [node.output[0]])]
        fill = 0.0
    step = Step(node.name, layer, [node.input[0]], [node.output[0]])
    return [step] if native else with_pre_pad(node, ctx, step, padding, fill)


def _masked_average(layer, padding) -> OnnxOp:
    """Average pooling over explicit (asymmetric, wide or SAME) padding that the divisor leaves out:
    the pooled zero-padded input over the pooled zero-padded mask of ones (the count of real elements)."""

    def average(x):
        pairs = _pairs(padding, x)
        mask = cs.ones(1, 1, *x.shape[2:], dtype=x.dtype)
        return layer(F.pad(x, pairs)) / layer(F.pad(mask, pairs))

    return OnnxOp("AveragePool", average, pads=padding, count_include_pad=0)


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

    return [configured(node, ctx, {1: "pads", 2: "constant_value", 3: "axes"}, make, preset, required=(1,),
                       mode=mode)]


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
