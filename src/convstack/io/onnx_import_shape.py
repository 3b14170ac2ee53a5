"""ONNX operators that make, repeat, cut and pick tensors: ``ConstantOfShape``, ``Expand``, ``Tile``,
``Split`` and ``Gather``.

Exporters build weights and shapes with them (``ConstantOfShape`` of a constant shape is a
constant, folded at import like every node whose inputs are all constants); where a shape,
a repeat count or an index is computed from the input (``Shape`` -> ``Gather`` -> ``Concat``),
the op reads it at run time.
"""

from __future__ import annotations

import numpy

from convstack.backend import get_array_module, to_numpy
from convstack.io.onnx_import_tensor import OnnxOp, Step, configured, ints
from convstack.tensor import Tensor


def _constant_of_shape(node, ctx):
    fill = ctx.attributes(node).get("value")
    fill = numpy.zeros(1, numpy.float32) if fill is None else numpy.asarray(fill)
    if fill.size != 1:
        raise ctx.fail(node, f"the value attribute must hold one element, received shape {fill.shape}")

    def constant_of_shape(shape):
        dims = ints(to_numpy(shape.data))
        if any(d < 0 for d in dims):
            raise ctx.fail(node, f"the shape {dims} has a negative dimension")
        return Tensor(numpy.full(tuple(dims), fill.reshape(()), dtype=fill.dtype))

    op = OnnxOp("ConstantOfShape", constant_of_shape, value=fill.reshape(()).item())
    return [Step(node.name, op, [node.input[0]], [node.output[0]])]


def _expand(node, ctx):
    def make(values):
        shape = tuple(ints(values[1]))

        def expand(x):
            return x.expand(*numpy.broadcast_shapes(tuple(x.shape), shape))

        return expand

    return [configured(node, ctx, {1: "shape"}, make, required=(1,))]


def _tile(node, ctx):
    def make(values):
        repeats = ints(values[1])
        if any(r < 0 for r in repeats):
            raise ctx.fail(node, f"repeats {repeats} must not be negative")

        def tile(x):
            if len(repeats) != x.ndim:
                raise ctx.fail(node, f"{len(repeats)} repeats for an input of shape {x.shape}")
            # (S0, S1, ...) -> (1, S0, 1, S1, ...) broadcast to (R0, S0, R1, S1, ...) -> (R0 * S0, R1 * S1, ...);
            # the broadcast's backward sums the copies
            spread = x.reshape(tuple(v for size in x.shape for v in (1, size)))
            copies = spread.expand(*(v for r, size in zip(repeats, x.shape) for v in (r, size)))
            return copies.reshape(tuple(r * size for r, size in zip(repeats, x.shape)))

        return tile

    return [configured(node, ctx, {1: "repeats"}, make, required=(1,))]


def _split(node, ctx):
    attributes = ctx.attributes(node)
    axis, parts = attributes.get("axis", 0), len(node.output)
    preset = {1: attributes.get("split")} if ctx.opset < 13 else None
    if ctx.opset >= 18 and "num_outputs" in attributes and attributes["num_outputs"] != parts:
        raise ctx.fail(node, f"num_outputs {attributes['num_outputs']} for {parts} outputs")

    def make(values):
        sizes = None if values.get(1) is None else ints(values[1])
        if sizes is not None and len(sizes) != parts:
            raise ctx.fail(node, f"{len(sizes)} split sizes for {parts} outputs")

        def split(x):
            position = axis % x.ndim
            length = x.shape[position]
            if sizes is not None:
                chosen = sizes
            elif ctx.opset >= 18:  # num_outputs: pieces of ceil(length / parts), the last one shorter
                piece = -(-length // parts)
                chosen = [max(0, min(piece, length - i * piece)) for i in range(parts)]
            else:
                if length % parts:
                    raise ctx.fail(node, f"dimension {position} of length {length} does not split in {parts} parts")
                chosen = [length // parts] * parts
            if sum(chosen) != length:
                raise ctx.fail(node, f"split sizes {chosen} do not add up to dimension {position}'s {length}")
            bounds = numpy.cumsum([0] + list(chosen))
            lead = (slice(None),) * position
            pieces = tuple(x[lead + (slice(int(a), int(b)),)] for a, b in zip(bounds[:-1], bounds[1:]))
            return pieces if parts > 1 else pieces[0]

        return split

    return [configured(node, ctx, {1: "split"}, make, preset, axis=axis)]


def _gather(node, ctx):
    axis = ctx.attributes(node).get("axis", 0)

    def make(values):
        indices = numpy.asarray(values[1], dtype=numpy.int64)

        def gather(x):
            position = axis % x.ndim
            length = x.shape[position]
            if indices.size and not (-length <= indices.min() and indices.max() < length):
                raise ctx.fail(node, f"indices {indices.tolist()} out of range for dimension {position} of length "
                                     f"{length}")
            chosen = int(indices) if indices.ndim == 0 else get_array_module(x.data).asarray(indices % length)
            return x[(slice(None),) * position + (chosen,)]

        return gather

    return [configured(node, ctx, {1: "indices"}, make, required=(1,), axis=axis)]


SHAPE_BUILDERS = {
    "ConstantOfShape": _constant_of_shape,
    "Expand": _expand,
    "Tile": _tile,
    "Split": _split,
    "Gather": _gather,
}
