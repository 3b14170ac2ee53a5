"""ONNX element-wise, reduction and shape operators as convstack modules (``OnnxOp``), and the pieces
every builder shares (``Step``, ``OnnxOp``, ``configured``).

``OnnxOp`` wraps one tensor function with the operator's name and fixed attributes (shown
by ``repr``). Inputs that configure an op (a ``Pad`` 's pads, a ``Tile`` 's repeats, a
``Slice`` 's bounds) are read once, at import, when they are constants, and from their
tensors at every call when the graph computes them (``Shape`` -> ``Gather`` -> ``Concat``).
"""

from __future__ import annotations

import math
import operator

import numpy

import convstack as cs
from convstack.autograd import Function
from convstack.backend import get_array_module, to_numpy
from convstack.nn.functional.activation import erf
from convstack.nn.modules.module import Module

_INT64_MAX = 2**63 - 1


class Step:
    """One module of an imported graph: what it reads and writes, and which initializers it owns."""

    def __init__(self, name: str, module: Module, inputs, outputs, params: dict | None = None):
        self.name, self.module = name, module
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.params = params or {}


class OnnxOp(Module):
    """An ONNX operator without parameters: ``forward`` applies ``function`` to the node's inputs."""

    def __init__(self, op_type: str, function, **attributes):
        super().__init__()
        self.op_type, self.function, self.attributes = op_type, function, attributes

    def forward(self, *inputs):
        return self.function(*inputs)

    def extra_repr(self) -> str:
        return ", ".join([self.op_type] + [f"{key}={value!r}" for key, value in self.attributes.items()])


def configured(node, ctx, roles: dict, make, preset: dict | None = None, required=(), **shown) -> Step:
    """The step of a node whose inputs at the positions in ``roles`` configure it (``{1: "pads"}``).

    ``make(values)`` receives ``{position: array or None}`` and returns the function of the
    other (data) inputs. Constant settings are read here, once, so a bad value fails at
    import; computed ones are inputs of the step, read at every call. ``preset`` gives the
    values that older opsets carry as attributes instead of inputs; the positions in
    ``required`` must have a value.
    """
    data = [name for position, name in enumerate(node.input) if position not in roles]
    fixed, computed = {}, []
    for position in roles:
        name = ctx.input(node, position)
        if preset is not None and position in preset:
            fixed[position] = preset[position]
        elif name and name not in ctx.constants:
            computed.append(position)
        else:
            fixed[position] = ctx.constants[name] if name else None
        if position in required and position in fixed and fixed[position] is None:
            raise ctx.fail(node, f"the {roles[position]} {'attribute' if preset else 'input'} is missing")
    if not computed:
        function = make(fixed)
        shown.update({roles[p]: _shown(v) for p, v in fixed.items() if v is not None})
    else:
        def function(*tensors):
            values = dict(fixed)
            values.update((p, to_numpy(t.data)) for p, t in zip(computed, tensors[len(data):]))
            return make(values)(*tensors[:len(data)])

        shown.update({roles[p]: "computed" for p in computed})
    inputs = data + [node.input[p] for p in computed]
    return Step(node.name, OnnxOp(node.op_type, function, **shown), inputs, list(node.output))


def fill_layer(layer, params: dict, ctx) -> dict:
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


def _shown(value):
    array = numpy.asarray(value)
    return array.item() if array.ndim == 0 else array.tolist()


def ints(array) -> list:
    return [int(v) for v in numpy.asarray(array).reshape(-1)]


def pads_to_torch(pairs) -> tuple:
    """Per-dimension (before, after) pairs, first dimension first, as ``F.pad`` 's last-dimension-first tuple."""
    pairs = list(pairs)
    while pairs and pairs[0] == (0, 0):
        pairs.pop(0)
    return tuple(value for before, after in reversed(pairs) for value in (before, after))


class _Erf(Function):
    """The error function (for GELU written out at opsets below 20); d/dx erf(x) = 2 / sqrt(pi) exp(-x^2)."""

    def forward(self, x):
        self.x = x
        return erf(x).astype(x.dtype, copy=False)

    def backward(self, grad):
        xp = get_array_module(grad)
        return (grad * (2 / math.sqrt(math.pi)) * xp.exp(-self.x * self.x),)


def _single(op_type, function, **fixed):
    def build(node, ctx):
        return [Step(node.name, OnnxOp(op_type, function, **fixed), list(node.input), [node.output[0]])]

    return build


def _identity(node, ctx):
    for extra in node.output[1:]:
        if extra:
            ctx.unsupported[extra] = f"output '{extra}' of {node.op_type} node '{node.name}' is not supported"
    return [Step(node.name, OnnxOp(node.op_type, lambda x, *rest: x), [node.input[0]], [node.output[0]])]


def _cast(node, ctx):
    from onnx import helper

    dtype = numpy.dtype(helper.tensor_dtype_to_np_dtype(ctx.attributes(node)["to"]))
    return [Step(node.name, OnnxOp("Cast", lambda x: x.to(dtype), to=str(dtype)), [node.input[0]], [node.output[0]])]


def _axes(node, ctx, position: int, attribute_until: int):
    """An axes list from the attribute (opsets below ``attribute_until``) or from input ``position``."""
    if ctx.opset < attribute_until:
        axes = ctx.attributes(node).get("axes")
        return None if axes is None else list(axes)
    axes = ctx.constant(node, position, "axes")
    return None if axes is None else ints(axes)


def _squeeze(node, ctx):
    axes = _axes(node, ctx, 1, 13)

    def squeeze(x):
        chosen = range(x.ndim) if axes is None else [a % x.ndim for a in axes]
        return x.reshape(tuple(s for i, s in enumerate(x.shape) if not (i in chosen and s == 1)))

    return [Step(node.name, OnnxOp("Squeeze", squeeze, axes=axes), [node.input[0]], [node.output[0]])]


def _unsqueeze(node, ctx):
    axes = _axes(node, ctx, 1, 13)

    def unsqueeze(x):
        rank = x.ndim + len(axes)
        shape, rest = [], iter(x.shape)
        wanted = {a % rank for a in axes}
        for i in range(rank):
            shape.append(1 if i in wanted else next(rest))
        return x.reshape(tuple(shape))

    return [Step(node.name, OnnxOp("Unsqueeze", unsqueeze, axes=axes), [node.input[0]], [node.output[0]])]


def _flatten(node, ctx):
    axis = ctx.attributes(node).get("axis", 1)

    def flatten(x):
        cut = axis % x.ndim if x.ndim else 0
        return x.reshape(int(numpy.prod(x.shape[:cut], dtype=numpy.int64)), -1)

    return [Step(node.name, OnnxOp("Flatten", flatten, axis=axis), [node.input[0]], [node.output[0]])]


def _reshape(node, ctx):
    allow_zero = ctx.attributes(node).get("allowzero", 0)

    def make(values):
        target = ints(values[1])

        def reshape(x):
            return x.reshape(tuple(x.shape[i] if s == 0 and not allow_zero else s for i, s in enumerate(target)))

        return reshape

    return [configured(node, ctx, {1: "shape"}, make, required=(1,))]


def _shape(node, ctx):
    attributes = ctx.attributes(node)
    start, end = attributes.get("start", 0), attributes.get("end")

    def shape(x):
        return cs.tensor(numpy.asarray(x.shape[start:end], dtype=numpy.int64))

    return [Step(node.name, OnnxOp("Shape", shape, start=start, end=end), [node.input[0]], [node.output[0]])]


def _transpose(node, ctx):
    perm = ctx.attributes(node).get("perm")

    def transpose(x):
        return x.permute(*(perm if perm is not None else reversed(range(x.ndim))))

    return [Step(node.name, OnnxOp("Transpose", transpose, perm=perm), [node.input[0]], [node.output[0]])]


def _concat(node, ctx):
    axis = ctx.attributes(node)["axis"]
    return [Step(node.name, OnnxOp("Concat", lambda *xs: cs.cat(list(xs), dim=axis), axis=axis), list(node.input),
                 [node.output[0]])]


def _slice(node, ctx):
    preset = None
    if ctx.opset < 10:
        attributes = ctx.attributes(node)
        preset = {1: attributes.get("starts"), 2: attributes.get("ends"), 3: attributes.get("axes"), 4: None}

    def make(values):
        starts, ends = ints(values[1]), ints(values[2])
        axes = list(range(len(starts))) if values[3] is None else ints(values[3])
        steps = [1] * len(starts) if values[4] is None else ints(values[4])
        if 0 in steps:
            raise ctx.fail(node, f"steps {steps} contain 0")

        def slice_(x):
            index = [slice(None)] * x.ndim
            for axis, start, end, step in zip(axes, starts, ends, steps):
                end = None if (step < 0 and end < -x.shape[axis]) else min(end, _INT64_MAX)
                index[axis % x.ndim] = slice(start, end, step)
            return x[tuple(index)]

        return slice_

    return [configured(node, ctx, {1: "starts", 2: "ends", 3: "axes", 4: "steps"}, make, preset, required=(1, 2))]


def _reduce(kind):
    def build(node, ctx):
        attributes = ctx.attributes(node)
        axes = _axes(node, ctx, 1, 13 if kind == "ReduceSum" else 18)
        keep = bool(attributes.get("keepdims", 1))
        if not axes and attributes.get("noop_with_empty_axes", 0):
            return _identity(node, ctx)

        def reduce_(x):
            chosen = sorted({a % x.ndim for a in (axes or range(x.ndim))}, reverse=True)
            if kind == "ReduceSum":
                return x.sum(tuple(chosen), keepdim=keep)
            if kind == "ReduceMean":
                return x.mean(tuple(chosen), keepdim=keep)
            for axis in chosen:  # max and min reduce one dimension at a time
                x = (x.max(axis, keepdim=keep) if kind == "ReduceMax" else x.min(axis, keepdim=keep)).values
            return x

        return [Step(node.name, OnnxOp(kind, reduce_, axes=axes, keepdims=keep), [node.input[0]], [node.output[0]])]

    return build


def _arg(kind):
    def build(node, ctx):
        attributes = ctx.attributes(node)
        if attributes.get("select_last_index", 0):
            raise ctx.fail(node, "select_last_index=1 is not supported")
        axis, keep = attributes.get("axis", 0), bool(attributes.get("keepdims", 1))

        def arg(x):
            return x.argmax(axis, keep) if kind == "ArgMax" else x.argmin(axis, keep)

        return [Step(node.name, OnnxOp(kind, arg, axis=axis, keepdims=keep), [node.input[0]], [node.output[0]])]

    return build


TENSOR_BUILDERS = {
    "Add": _single("Add", operator.add),
    "Sub": _single("Sub", operator.sub),
    "Mul": _single("Mul", operator.mul),
    "Pow": _single("Pow", operator.pow),
    "MatMul": _single("MatMul", operator.matmul),
    "Neg": _single("Neg", operator.neg),
    "Exp": _single("Exp", lambda x: x.exp()),
    "Log": _single("Log", lambda x: x.log()),
    "Sqrt": _single("Sqrt", lambda x: x.sqrt()),
    "Abs": _single("Abs", lambda x: x.abs()),
    "Erf": _single("Erf", lambda x: _Erf.apply(x)),
    "Where": _single("Where", lambda condition, a, b: cs.where(condition, a, b)),
    "Identity": _identity,
    "Cast": _cast,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Shape": _shape,
    "Transpose": _transpose,
    "Concat": _concat,
    "Slice": _slice,
    "ReduceSum": _reduce("ReduceSum"),
    "ReduceMean": _reduce("ReduceMean"),
    "ReduceMax": _reduce("ReduceMax"),
    "ReduceMin": _reduce("ReduceMin"),
    "ArgMax": _arg("ArgMax"),
    "ArgMin": _arg("ArgMin"),
}
