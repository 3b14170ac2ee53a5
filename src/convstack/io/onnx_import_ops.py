"""ONNX nodes as convstack modules: the import context and the layers with parameters (convolution,
transposed convolution, batch norm, Gemm as ``nn.Linear``).

A builder takes one ONNX node and the ``ImportContext`` and returns the ``Step`` s that run
it: a module, the value names it reads at run time and those it writes. Layers list the
initializers they took over (``params``), which decides where ``import_onnx`` puts them.
Parameter-free layers are in ``onnx_import_nn``, element-wise and shape operators in
``onnx_import_tensor``; ``BUILDERS`` gathers them all by operator name.
"""

from __future__ import annotations

import numpy

import convstack.nn.functional as F
from convstack import nn
from convstack.io.onnx_import_nn import LAYER_BUILDERS, spatial_options, with_pre_pad
from convstack.io.onnx_import_tensor import TENSOR_BUILDERS, OnnxOp, Step


class ImportContext:
    """The graph's constants (initializers and ``Constant`` nodes), value ranks, attributes and use counts."""

    def __init__(self, graph, opset: int):
        from onnx import numpy_helper

        self.numpy_helper = numpy_helper
        self.opset = opset
        self.constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
        self.kinds = {init.name: init.doc_string for init in graph.initializer
                      if init.doc_string in ("parameter", "buffer", "buffer (not persistent)", "constant")}
        self.ranks = {}
        for value in list(graph.value_info) + list(graph.input) + list(graph.output):
            kind = value.type.WhichOneof("value")
            if kind == "tensor_type" and value.type.tensor_type.HasField("shape"):
                self.ranks[value.name] = len(value.type.tensor_type.shape.dim)
        self.uses = {}
        for node in graph.node:
            for name in node.input:
                self.uses[name] = self.uses.get(name, 0) + 1
        self.unsupported: dict = {}  # value name -> why it cannot be used

    def add_constant_node(self, node) -> None:
        attributes = self.attributes(node)
        if "value" not in attributes:
            raise ValueError(f"import_onnx: operator 'Constant' in node '{node.name}': only the `value` attribute is "
                             f"supported, received {sorted(attributes)}")
        self.constants[node.output[0]] = attributes["value"]
        self.kinds[node.output[0]] = "constant"

    def attributes(self, node) -> dict:
        from onnx import helper

        values = {}
        for attribute in node.attribute:
            value = helper.get_attribute_value(attribute)
            if attribute.type == attribute.TENSOR:
                value = self.numpy_helper.to_array(value)
            elif isinstance(value, bytes):
                value = value.decode()
            values[attribute.name] = value
        return values

    def input(self, node, position: int) -> str:
        return node.input[position] if position < len(node.input) else ""

    def constant(self, node, position: int, what: str):
        """The constant array at input ``position`` (None when absent); a computed one is an error."""
        name = self.input(node, position)
        if not name:
            return None
        if name not in self.constants:
            raise ValueError(f"import_onnx: operator '{node.op_type}' in node '{node.name}': the {what} input "
                             f"'{name}' must be a constant (an initializer or a Constant node)")
        return self.constants[name]

    def is_layer_weight(self, node, position: int) -> bool:
        """Whether input ``position`` is an initializer that only this node reads (it can become a parameter)."""
        name = self.input(node, position)
        return bool(name) and name in self.constants and self.kinds.get(name) != "constant" and self.uses[name] == 1

    def fail(self, node, message: str):
        return ValueError(f"import_onnx: operator '{node.op_type}' in node '{node.name}': {message}")


# ---------------------------------------------------------------------------------- convolution
_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_CONV_FUNCTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _conv(node, ctx):
    attributes = ctx.attributes(node)
    weight_name = ctx.input(node, 1)
    rank = ctx.ranks.get(weight_name) or (len(ctx.constants[weight_name].shape) if weight_name in ctx.constants
                                          else len(attributes.get("kernel_shape", [0, 0])) + 2)
    spatial = rank - 2
    if spatial not in _CONV:
        raise ctx.fail(node, f"{spatial}-D convolution is not supported (1-D, 2-D and 3-D are)")
    stride, before, after, dilation = spatial_options(node, ctx, spatial, attributes, "conv")
    groups = attributes.get("group", 1)
    symmetric = before == after
    padding = tuple(before) if symmetric else (0,) * spatial
    has_bias = bool(ctx.input(node, 2))
    if ctx.is_layer_weight(node, 1) and (not has_bias or ctx.is_layer_weight(node, 2)):
        weight = ctx.constants[weight_name]
        layer = _CONV[spatial](weight.shape[1] * groups, weight.shape[0], weight.shape[2:], stride, padding, dilation,
                               groups, has_bias, dtype=weight.dtype)
        params = _fill(layer, {"weight": weight_name, "bias": ctx.input(node, 2)}, ctx)
        step = Step(node.name, layer, [node.input[0]], [node.output[0]], params)
    else:
        function = _CONV_FUNCTIONS[spatial]
        op = OnnxOp("Conv", lambda x, w, b=None: function(x, w, b, stride, padding, dilation, groups),
                    stride=stride, padding=padding, dilation=dilation, groups=groups)
        step = Step(node.name, op, list(node.input), [node.output[0]])
    return [step] if symmetric else with_pre_pad(node, ctx, step, before, after, 0.0)


def _conv_transpose(node, ctx):
    attributes = ctx.attributes(node)
    if "output_shape" in attributes:
        raise ctx.fail(node, "the output_shape attribute is not supported; give pads and output_padding")
    if not ctx.is_layer_weight(node, 1) or (ctx.input(node, 2) and not ctx.is_layer_weight(node, 2)):
        raise ctx.fail(node, "the weight and bias must be initializers read by this node only")
    weight = ctx.constants[node.input[1]]
    spatial = weight.ndim - 2
    if spatial not in _CONV_TRANSPOSE:
        raise ctx.fail(node, f"{spatial}-D transposed convolution is not supported")
    stride, before, after, dilation = spatial_options(node, ctx, spatial, attributes, "conv_transpose")
    if before != after:
        raise ctx.fail(node, f"asymmetric pads {before + after} are not supported")
    groups = attributes.get("group", 1)
    output_padding = tuple(attributes.get("output_padding", [0] * spatial))
    has_bias = bool(ctx.input(node, 2))
    layer = _CONV_TRANSPOSE[spatial](weight.shape[0], weight.shape[1] * groups, weight.shape[2:], stride,
                                     tuple(before), output_padding, groups, has_bias, dilation, dtype=weight.dtype)
    params = _fill(layer, {"weight": node.input[1], "bias": ctx.input(node, 2)}, ctx)
    return [Step(node.name, layer, [node.input[0]], [node.output[0]], params)]


def _fill(layer, params: dict, ctx) -> dict:
    """Copy the initializers into ``layer`` 's parameters and buffers; return the ones used."""
    used = {}
    for attribute, name in params.items():
        if not name:
            continue
        array = ctx.constants[name]
        target = getattr(layer, attribute)
        if tuple(target.shape) != tuple(array.shape):
            raise ValueError(f"import_onnx: initializer '{name}' has shape {array.shape}, the layer expects "
                             f"{tuple(target.shape)}")
        target.data = numpy.array(array, dtype=target.dtype)
        used[attribute] = name
    return used


# -------------------------------------------------------------------------------- normalisation
_BATCH_NORM = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}


def _batch_norm(node, ctx):
    attributes = ctx.attributes(node)
    if attributes.get("training_mode", 0):
        raise ctx.fail(node, "training_mode=1 is not supported")
    names = dict(zip(("weight", "bias", "running_mean", "running_var"), node.input[1:5]))
    if not all(name in ctx.constants and ctx.uses[name] == 1 for name in names.values()):
        raise ctx.fail(node, "scale, bias, mean and variance must be initializers read by this node only")
    scale, bias = ctx.constants[names["weight"]], ctx.constants[names["bias"]]
    # An exporter's stand-in ones and zeros (a batch norm without affine parameters) stay out of the parameters.
    affine = not (ctx.kinds.get(names["weight"]) == ctx.kinds.get(names["bias"]) == "constant"
                  and (scale == 1).all() and (bias == 0).all())
    if not affine:
        del names["weight"], names["bias"]
    rank = ctx.ranks.get(node.input[0], 4)
    layer = _BATCH_NORM.get(rank, nn.BatchNorm2d)(scale.shape[0], eps=attributes.get("epsilon", 1e-5),
                                                  momentum=1 - attributes.get("momentum", 0.9), affine=affine,
                                                  dtype=scale.dtype)
    return [Step(node.name, layer, [node.input[0]], [node.output[0]], _fill(layer, names, ctx))]


# --------------------------------------------------------------------------------------- linear
def _gemm(node, ctx):
    attributes = ctx.attributes(node)
    alpha, beta = attributes.get("alpha", 1.0), attributes.get("beta", 1.0)
    trans_a, trans_b = attributes.get("transA", 0), attributes.get("transB", 0)
    bias_name = ctx.input(node, 2)
    bias_ok = not bias_name or (ctx.is_layer_weight(node, 2) and ctx.constants[bias_name].ndim == 1)
    if ctx.is_layer_weight(node, 1) and bias_ok and alpha == 1.0 and beta == 1.0 and not trans_a:
        weight = ctx.constants[node.input[1]]
        weight = weight if trans_b else weight.T  # Linear keeps (out_features, in_features)
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bool(bias_name), dtype=weight.dtype)
        layer.weight.data = numpy.array(weight, dtype=layer.weight.dtype)
        params = {"weight": node.input[1]}
        if bias_name:
            if ctx.constants[bias_name].shape != (weight.shape[0],):
                raise ctx.fail(node, f"bias of shape {ctx.constants[bias_name].shape} for {weight.shape[0]} outputs")
            layer.bias.data = numpy.array(ctx.constants[bias_name], dtype=layer.bias.dtype)
            params["bias"] = bias_name
        # A transposed copy is a new array: it keeps the name only when the layout is the Linear's.
        return [Step(node.name, layer, [node.input[0]], [node.output[0]], params if trans_b else {})]

    def gemm(a, b, c=None):
        out = (a.T if trans_a else a) @ (b.T if trans_b else b)
        out = out * alpha if alpha != 1.0 else out
        return out if c is None else out + (c * beta if beta != 1.0 else c)

    op = OnnxOp("Gemm", gemm, alpha=alpha, beta=beta, transA=trans_a, transB=trans_b)
    return [Step(node.name, op, list(node.input), [node.output[0]])]


BUILDERS = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "BatchNormalization": _batch_norm,
    "Gemm": _gemm,
    **LAYER_BUILDERS,
    **TENSOR_BUILDERS,
}
