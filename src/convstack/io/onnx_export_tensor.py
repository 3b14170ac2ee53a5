"""ONNX conversions of the tensor ops: arithmetic, element-wise maths, reductions, shapes, indexing.

These are the glue a model's ``forward`` writes between its layers (``out + identity``,
``cs.cat``, ``x.flatten(1)``, ``x[:, :, ::2, ::2]``). Shapes and indices are constants of
the traced graph; where one would fix the batch size, the converter says so (``g.static``)
or writes the batch dimension as "copy the input's" (a 0 in a ``Reshape``, a 1 in an ``Expand``).
"""

from __future__ import annotations

import numpy

from convstack.nn.modules.hooks import _HookIdentity
from convstack.ops import arithmetic, elementwise, indexing, reduction, shape
from convstack.tensor import _CastFn, _CloneFn

_INT64_MAX, _INT64_MIN = 2**63 - 1, -(2**63)


def reduce(g, call, op_type: str, value: str, axes, keepdims: bool, output: str | None = None) -> str:
    """``op_type`` (ReduceMean, ReduceMax ...) over ``axes``: an input from opset 18 on (13 for ReduceSum)."""
    outputs = [output] if output else 1
    if op_type == "ReduceSum" or g.opset >= 18:
        axes_name = g.ints(axes, f"{call.name}/axes")
        return g.node(op_type, [value, axes_name], outputs, call, keepdims=int(keepdims))[0]
    return g.node(op_type, [value], outputs, call, axes=list(axes), keepdims=int(keepdims))[0]


def matrix_along(g, call, value: str, axis: int, ndim: int, matrix, output: str | None = None) -> str:
    """Apply an (out, in) ``matrix`` along ``axis``: swap the axis last, ``MatMul`` by its transpose, swap back."""
    outputs = [output] if output else 1
    weight = g.initializer(numpy.ascontiguousarray(numpy.asarray(matrix).T), f"{call.name}/matrix")
    if axis == ndim - 1:
        return g.node("MatMul", [value, weight], outputs, call)[0]
    perm = list(range(ndim))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    moved = g.node("Transpose", [value], 1, call, perm=perm)[0]
    product = g.node("MatMul", [moved, weight], 1, call)[0]
    return g.node("Transpose", [product], outputs, call, perm=perm)[0]


def _simple(op_type):
    def convert(g, call):
        g.node(op_type, call.inputs, call.outputs, call)

    return convert


def _clamp(g, call):
    bounds = [("" if call.options[key] is None else g.scalar_like(call.options[key], call.inputs[0],
                                                                   f"{call.name}/{key}")) for key in ("min", "max")]
    g.node("Clip", [call.inputs[0], *bounds], call.outputs, call)


def _where(g, call):
    condition = numpy.asarray(call.options["condition"], dtype=bool)
    if g.is_derived(call) and condition.ndim == len(call.results[0].shape) and condition.shape[0] == g.batch > 1:
        g.static(f"a condition of the batch's size in {call.name}")
    g.node("Where", [g.initializer(condition, f"{call.name}/condition"), *call.inputs], call.outputs, call)


# ----------------------------------------------------------------------------------- reductions
def _sum_mean(op_type):
    def convert(g, call):
        axes = list(call.options["axes"])
        if not axes:
            g.node("Identity", call.inputs, call.outputs, call)
            return
        reduce(g, call, op_type, call.inputs[0], axes, call.options["keepdim"], call.outputs[0])

    return convert


def _var(g, call):
    o, x = call.options, call.inputs[0]
    count = int(numpy.prod([call.tensors[0].shape[a] for a in o["axes"]]))
    mean = reduce(g, call, "ReduceMean", x, o["axes"], True)
    centred = g.node("Sub", [x, mean], 1, call)[0]
    total = reduce(g, call, "ReduceSum", g.node("Mul", [centred, centred], 1, call)[0], o["axes"], o["keepdim"])
    divisor = g.scalar_like(max(count - o["correction"], 0), x, f"{call.name}/divisor")
    g.node("Div", [total, divisor], call.outputs, call)


def _max_min(g, call):
    o = call.options
    largest = o["largest"]
    if o["dim"] is None:
        axes = list(range(len(call.tensors[0].shape)))
        reduce(g, call, "ReduceMax" if largest else "ReduceMin", call.inputs[0], axes, False, call.outputs[0])
        return
    reduce(g, call, "ReduceMax" if largest else "ReduceMin", call.inputs[0], [o["dim"]], o["keepdim"],
           call.outputs[0])
    g.node("ArgMax" if largest else "ArgMin", call.inputs[:1], call.outputs[1:], call, axis=o["dim"],
           keepdims=int(o["keepdim"]))


# ---------------------------------------------------------------------------------------- shape
def _reshape(g, call):
    source, target = call.tensors[0].shape, list(call.options["shape"])
    if g.is_derived(call) and source and target:
        if target[0] == source[0]:
            target[0] = 0  # ONNX: copy the input's size (the batch stays free)
        else:
            g.static(f"{call.name} reshapes {tuple(source)} to {tuple(call.options['shape'])} across the batch")
    g.node("Reshape", [call.inputs[0], g.ints(target, f"{call.name}/shape")], call.outputs, call)


def _permute(g, call):
    dims = list(call.options["dims"])
    if g.is_derived(call) and dims and dims[0] != 0:
        g.static(f"{call.name} moves the batch dimension")
    g.node("Transpose", call.inputs, call.outputs, call, perm=dims)


def _expand(g, call):
    source, target = call.tensors[0].shape, list(call.options["shape"])
    if g.is_derived(call):
        if len(target) == len(source) and target and target[0] == source[0]:
            target[0] = 1  # broadcasting keeps the input's (batch) size
        else:
            g.static(f"{call.name} expands to a fixed shape {tuple(target)}")
    g.node("Expand", [call.inputs[0], g.ints(target, f"{call.name}/shape")], call.outputs, call)


def _cat(g, call):
    g.node("Concat", call.inputs, call.outputs, call, axis=call.options["dim"])


def _stack(g, call):
    axes = g.ints([call.options["dim"]], f"{call.name}/axes")
    parts = [g.node("Unsqueeze", [value, axes], 1, call)[0] for value in call.inputs]
    g.node("Concat", parts, call.outputs, call, axis=call.options["dim"])


def _cast(g, call):
    from onnx import helper

    g.node("Cast", call.inputs, call.outputs, call, to=helper.np_dtype_to_tensor_dtype(numpy.dtype(
        call.options["dtype"])))


# ------------------------------------------------------------------------------------- indexing
def _basic_items(index, ndim: int) -> list:
    """``index`` (ints, slices, None, one Ellipsis) as one item per input axis plus the ``None`` s, in order."""
    items = list(index) if isinstance(index, tuple) else [index]
    consuming = sum(1 for item in items if item is not None and item is not Ellipsis)
    expanded = []
    for item in items:
        expanded.extend([slice(None)] * (ndim - consuming) if item is Ellipsis else [item])
    if Ellipsis not in items:
        expanded.extend([slice(None)] * (ndim - consuming))
    return expanded


def _get_item(g, call):
    index, in_shape = call.options["index"], call.tensors[0].shape
    if indexing._is_basic(index):
        _slice(g, call, _basic_items(index, len(in_shape)), in_shape)
        return
    items = index if isinstance(index, tuple) else (index,)
    arrays = [(axis, item) for axis, item in enumerate(items) if not isinstance(item, slice)]
    if (len(arrays) == 1 and all(item == slice(None) for item in items if isinstance(item, slice))
            and numpy.asarray(arrays[0][1]).dtype.kind in "iu"):
        axis, indices = arrays[0]
        if axis == 0 and g.is_derived(call):
            g.static(f"{call.name} picks batch entries")
        sizes = numpy.asarray(indices, dtype=numpy.int64) % in_shape[axis]
        g.node("Gather", [call.inputs[0], g.initializer(sizes, f"{call.name}/indices")], call.outputs, call, axis=axis)
        return
    raise ValueError(f"export_onnx: indexing with {index!r} (node {call.name!r}) has no ONNX conversion; "
                     "use slices, integers, None or one integer array along one axis")


def _slice(g, call, items, in_shape):
    """Basic indexing as ``Slice`` (slices and integers), then ``Squeeze`` (integers), then ``Unsqueeze`` (None)."""
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    axis, out_position = 0, 0
    for item in items:
        if item is None:
            unsqueeze.append(out_position)
            out_position += 1
            continue
        size = in_shape[axis]
        if isinstance(item, slice):
            start, stop, step = item.indices(size)
            out_position += 1
            if (start, stop, step) == (0, size, 1):
                axis += 1
                continue
            stop = _INT64_MIN if stop < 0 else stop  # a negative step running past the first element
        else:
            start, stop, step = item % size, item % size + 1, 1
            squeeze.append(axis)
        starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
        if axis == 0 and g.is_derived(call):
            g.static(f"{call.name} indexes the batch dimension")
        axis += 1
    stages = []
    if axes:
        stages.append(("Slice", [g.ints(v, f"{call.name}/{n}") for v, n in
                                 ((starts, "starts"), (ends, "ends"), (axes, "axes"), (steps, "steps"))]))
    if squeeze:
        stages.append(("Squeeze", [g.ints(squeeze, f"{call.name}/squeeze")]))
    if unsqueeze:
        stages.append(("Unsqueeze", [g.ints(unsqueeze, f"{call.name}/unsqueeze")]))
    if not stages:
        stages.append(("Identity", []))
    value = call.inputs[0]
    for position, (op_type, extra) in enumerate(stages):
        last = position == len(stages) - 1
        value = g.node(op_type, [value, *extra], call.outputs if last else 1, call)[0]


TENSOR_CONVERTERS = {
    arithmetic.Add: _simple("Add"),
    arithmetic.Sub: _simple("Sub"),
    arithmetic.Mul: _simple("Mul"),
    arithmetic.Div: _simple("Div"),
    arithmetic.Pow: _simple("Pow"),
    arithmetic.Neg: _simple("Neg"),
    arithmetic.MatMul: _simple("MatMul"),
    elementwise.Exp: _simple("Exp"),
    elementwise.Log: _simple("Log"),
    elementwise.Sqrt: _simple("Sqrt"),
    elementwise.Abs: _simple("Abs"),
    elementwise.Clamp: _clamp,
    elementwise.Where: _where,
    reduction.Sum: _sum_mean("ReduceSum"),
    reduction.Mean: _sum_mean("ReduceMean"),
    reduction.Var: _var,
    reduction.MaxMin: _max_min,
    shape.Reshape: _reshape,
    shape.Permute: _permute,
    shape.Expand: _expand,
    shape.Cat: _cat,
    shape.Stack: _stack,
    indexing.GetItem: _get_item,
    _CastFn: _cast,
    _CloneFn: _simple("Identity"),
    _HookIdentity: _simple("Identity"),
}
