"""ONNX nodes as convstack modules: the import context and the layers with parameters (convolution,
transposed convolution, batch norm, Gemm as ``nn.Linear``).

A builder takes one ONNX node and the ``ImportContext`` and returns the ``Step`` s that run
it: a module, the value names it reads at run time and those it writes. Layers list the
initializers they took over (``params``), which decides where ``import_onnx`` puts them.
The other builders live with their family: parameter-free layers in ``onnx_import_nn``,
arithmetic, reductions and reshaping in ``onnx_import_tensor``, the variadic and activation
operators in ``onnx_import_math``, ``ConstantOfShape``/``Tile``/``Split``... in
``onnx_import_shape``, ``LRN`` and instance norm in ``onnx_import_norm``, ``Upsample`` and
``Resize`` in ``onnx_import_resize``. ``BUILDERS`` gathers them all by operator name; a new
operator is one more entry in its family's table.
"""

from __future__ import annotations

import numpy

import convstack.nn.functional as F
from convstack import nn
from convstack.io.onnx_import_math import MATH_BUILDERS
from convstack.io.onnx_import_nn import LAYER_BUILDERS, spatial_options, symmetric_padding, with_pre_pad
from convstack.io.onnx_import_norm import NORM_BUILDERS, batch_norm_step
from convstack.io.onnx_import_resize import RESIZE_BUILDERS
from convstack.io.onnx_import_shape import SHAPE_BUILDERS
from convstack.io.onnx_import_tensor import TENSOR_BUILDERS, OnnxOp, Step, fill_layer


class ImportContext:
    """The graph's constants (initializers and ``Constant`` nodes), value ranks, attributes and use counts."""

    def __init__(self, graph, opset: int):
        from onnx import numpy_helper

        self.numpy_helper = numpy_helper
        self.opset = opset
        self.constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
        self.initializer_names = set(self.constants)
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

    _CONSTANT_DTYPES = {"value_float": numpy.float32, "value_floats": numpy.float32, "value_int": numpy.int64,
                        "value_ints": numpy.int64}

    def add_constant_node(self, node) -> None:
        """A ``Constant`` 's tensor (``value``) or number(s) (``value_float[s]``, ``value_int[s]``, opset 12)."""
        attributes = self.attributes(node)
        if "value" in attributes:
            value = attributes["value"]
        elif len(attributes) == 1 and next(iter(attributes)) in self._CONSTANT_DTYPES:
            ((name, number),) = attributes.items()
            value = numpy.asarray(number, dtype=self._CONSTANT_DTYPES[name])
        else:
            raise ValueError(f"import_onnx: operator 'Constant' in node '{node.name}': the `value`, `value_float(s)` "
                             f"and `value_int(s)` attributes are supported, received {sorted(attributes)}")
        self.constants[node.output[0]] = value
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
        """Whether input ``position`` is a constant that only this node reads and that can become a parameter:
        an initializer not marked constant by its exporter, or a float array the graph makes (a ``Constant``
        node, a ``ConstantOfShape``), which is a weight like the others once imported."""
        name = self.input(node, position)
        if not name or name not in self.constants or self.uses[name] != 1:
            return False
        if self.kinds.get(name) != "constant":
            return True
        array = self.constants[name]
        return name not in self.initializer_names and array.dtype.kind == "f" and array.ndim >= 1

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
    kernel = attributes.get("kernel_shape")
    if kernel is None and weight_name in ctx.constants:
        kernel = ctx.constants[weight_name].shape[2:]
    stride, pads, dilation = spatial_options(node, ctx, spatial, attributes, kernel)
    groups = attributes.get("group", 1)
    own = symmetric_padding(pads)
    padding = own if own is not None else (0,) * spatial
    has_bias = bool(ctx.input(node, 2))
    if ctx.is_layer_weight(node, 1) and (not has_bias or ctx.is_layer_weight(node, 2)):
        weight = ctx.constants[weight_name]
        layer = _CONV[spatial](weight.shape[1] * groups, weight.shape[0], weight.shape[2:], stride, padding, dilation,
                               groups, has_bias, dtype=weight.dtype)
        params = fill_layer(layer, {"weight": weight_name, "bias": ctx.input(node, 2)}, ctx)
        step = Step(node.name, layer, [node.input[0]], [node.output[0]], params)
    else:
        function = _CONV_FUNCTIONS[spatial]
        op = OnnxOp("Conv", lambda x, w, b=None: function(x, w, b, stride, padding, dilation, groups),
                    stride=stride, padding=padding, dilation=dilation, groups=groups)
        step = Step(node.name, op, list(node.input), [node.output[0]])
    return [step] if own is not None else with_pre_pad(node, ctx, step, pads, 0.0)


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
    stride, pads, dilation = spatial_options(node, ctx, spatial, attributes)
    before = symmetric_padding(pads)
    if before is None:
        raise ctx.fail(node, f"asymmetric pads {pads[0] + pads[1]} are not supported")
    groups = attributes.get("group", 1)
    output_padding = tuple(attributes.get("output_padding", [0] * spatial))
    has_bias = bool(ctx.input(node, 2))
    layer = _CONV_TRANSPOSE[spatial](weight.shape[0], weight.shape[1] * groups, weight.shape[2:], stride,
                                     tuple(before), output_padding, groups, has_bias, dilation, dtype=weight.dtype)
    params = fill_layer(layer, {"weight": node.input[1], "bias": ctx.input(node, 2)}, ctx)
    return [Step(node.name, layer, [node.input[0]], [node.output[0]], params)]


# -------------------------------------------------------------------------------- normalisation
_BATCH_NORM = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}


def _batch_norm(node, ctx):
    attributes = ctx.attributes(node)
    if attributes.get("training_mode", 0):
        raise ctx.fail(node, "training_mode=1 is not supported")
    names = dict(zip(("weight", "bias", "running_mean", "running_var"), node.input[1:5]))
    eps = attributes.get("epsilon", 1e-5)
    spatial = bool(attributes.get("spatial", 1)) if ctx.opset < 9 else True
    if not spatial or not all(name in ctx.constants and ctx.uses[name] == 1 for name in names.values()):
        return [batch_norm_step(node, ctx, eps, spatial)]  # statistics shared or computed: the formula, written out
    scale, bias = ctx.constants[names["weight"]], ctx.constants[names["bias"]]
    # An exporter's stand-in ones and zeros (a batch norm without affine parameters) stay out of the parameters.
    affine = not (ctx.kinds.get(names["weight"]) == ctx.kinds.get(names["bias"]) == "constant"
                  and (scale == 1).all() and (bias == 0).all())
    if not affine:
        del names["weight"], names["bias"]
    rank = ctx.ranks.get(node.input[0], 4)
    layer = _BATCH_NORM.get(rank, nn.BatchNorm2d)(scale.shape[0], eps=eps,
                                                  momentum=1 - attributes.get("momentum", 0.9), affine=affine,
                                                  dtype=scale.dtype)
    return [Step(node.name, layer, [node.input[0]], [node.output[0]], fill_layer(layer, names, ctx))]


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


def _gather_tables(*tables) -> dict:
    """One table of builders by operator name; an operator in two tables is a mistake, caught here."""
    builders = {}
    for table in tables:
        for op_type, builder in table.items():
            if op_type in builders:
                raise RuntimeError(f"ONNX operator {op_type!r} has two import builders")
            builders[op_type] = builder
    return builders


LAYER_WITH_PARAMETERS_BUILDERS = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "BatchNormalization": _batch_norm,
    "Gemm": _gemm,
}
BUILDERS = _gather_tables(LAYER_WITH_PARAMETERS_BUILDERS, LAYER_BUILDERS, TENSOR_BUILDERS, MATH_BUILDERS,
                          SHAPE_BUILDERS, NORM_BUILDERS, RESIZE_BUILDERS)
