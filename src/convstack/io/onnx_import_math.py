"""ONNX element-wise operators beyond the arithmetic: the variadic ``Max``/``Min``/``Sum``/``Mean``,
the activations older exporters write (``PRelu``, ``Selu``, ``Softplus``, ``Softsign``,
``HardSigmoid``, ``HardSwish``), ``Clip`` in both opset forms, ``Dropout`` at inference,
integer-aware ``Div`` and the rounding that shape arithmetic uses.

Each is written with convstack's tensor operations, so gradients flow through them and an
imported model fine-tunes; the formulas are the ONNX operator definitions.
"""

from __future__ import annotations

import numpy

import convstack as cs
from convstack.backend import get_array_module
from convstack.io.onnx_import_tensor import OnnxOp, Step, configured
from convstack.tensor import Tensor


def _elementwise(function, **fixed):
    """A builder for an operator of one input whose attributes (with ONNX's defaults ``fixed``) shape ``function``."""

    def build(node, ctx):
        attributes = {**fixed, **{k: v for k, v in ctx.attributes(node).items() if k in fixed}}
        op = OnnxOp(node.op_type, lambda x: function(x, **attributes), **attributes)
        return [Step(node.name, op, [node.input[0]], [node.output[0]])]

    return build


# ------------------------------------------------------------------------------------- variadic
def _larger(a, b):
    return cs.where(a >= b, a, b)


def _smaller(a, b):
    return cs.where(a <= b, a, b)


def _variadic(combine, divide: bool = False):
    """``Max``/``Min``/``Sum`` (and ``Mean``: the sum over the count) of any number of broadcast inputs."""

    def build(node, ctx):
        def reduce_(*xs):
            out = xs[0]
            for x in xs[1:]:
                out = combine(out, x)
            return out / len(xs) if divide and len(xs) > 1 else out

        return [Step(node.name, OnnxOp(node.op_type, reduce_), list(node.input), [node.output[0]])]

    return build


# ----------------------------------------------------------------------------------- activations
def _prelu(x, slope):
    """``x`` where ``x >= 0``, ``slope * x`` elsewhere; ``slope`` broadcasts to ``x`` (shape (C, 1, 1) in images)."""
    return cs.where(x >= 0, x, x * slope)


def _selu(x, alpha, gamma):
    # exp only of the non-positive part: the branch where() drops must not overflow (inf * 0 in backward)
    return cs.where(x > 0, x, (x.clamp(max=0).exp() - 1) * alpha) * gamma


def _softplus(x):
    """``log(1 + exp(x))`` as ``max(x, 0) + log(1 + exp(-|x|))``, which overflows for no x."""
    return x.clamp(min=0) + ((-x.abs()).exp() + 1).log()


def _softsign(x):
    return x / (x.abs() + 1)


def _hard_sigmoid(x, alpha, beta):
    return (x * alpha + beta).clamp(0, 1)


def _hard_swish(x):
    return x * (x * (1 / 6) + 0.5).clamp(0, 1)


# ------------------------------------------------------------------------------------------ clip
def _clip(node, ctx):
    preset = None
    if ctx.opset < 11:
        attributes = ctx.attributes(node)
        preset = {1: attributes.get("min"), 2: attributes.get("max")}

    def make(values):
        low, high = (None if values[p] is None else numpy.asarray(values[p]).item() for p in (1, 2))

        def clip(x):
            return x if low is None and high is None else x.clamp(low, high)

        return clip

    return [configured(node, ctx, {1: "min", 2: "max"}, make, preset)]


# --------------------------------------------------------------------------------------- dropout
def _dropout(node, ctx):
    """Dropout at inference: the identity, and the mask where the graph asks for it.

    The mask is all true from opset 12 (true marks a kept element); before, onnxruntime fills it with
    zeros (its type is the input's until opset 10, then bool), and the import does the same.
    """
    training = ctx.constant(node, 2, "training_mode") if ctx.opset >= 12 else None
    if training is not None and bool(training):
        raise ctx.fail(node, "training_mode=1 is not supported (imported graphs run dropout at inference)")
    wants_mask = len(node.output) > 1 and bool(node.output[1])
    mask_dtype = numpy.bool_ if ctx.opset >= 10 else None
    kept = ctx.opset >= 12

    def dropout(x):
        if not wants_mask:
            return x
        xp = get_array_module(x.data)
        return x, Tensor((xp.ones if kept else xp.zeros)(x.shape, dtype=mask_dtype or x.dtype))

    op = OnnxOp("Dropout", dropout)
    return [Step(node.name, op, [node.input[0]], list(node.output) if wants_mask else [node.output[0]])]


# ------------------------------------------------------------------------------ shape arithmetic
def _divide(a, b):
    """``a / b``; between integers (shape arithmetic) C's division, truncating towards zero, as ONNX's."""
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        xp = get_array_module(a.data, b.data)
        quotient = xp.abs(a.data) // xp.abs(b.data) * xp.sign(a.data) * xp.sign(b.data)
        return Tensor(quotient.astype(xp.result_type(a.data, b.data), copy=False))
    return a / b


def _rounding(name):
    """``Floor``/``Ceil``: piecewise constant, so without gradient (zero almost everywhere)."""
    def rounded(x):
        xp = get_array_module(x.data)
        return Tensor((xp.floor if name == "Floor" else xp.ceil)(x.data))

    def build(node, ctx):
        op = OnnxOp(name, rounded)
        return [Step(node.name, op, [node.input[0]], [node.output[0]])]

    return build


def _single(function):
    def build(node, ctx):
        return [Step(node.name, OnnxOp(node.op_type, function), list(node.input), [node.output[0]])]

    return build


MATH_BUILDERS = {
    "Max": _variadic(_larger),
    "Min": _variadic(_smaller),
    "Sum": _variadic(lambda a, b: a + b),
    "Mean": _variadic(lambda a, b: a + b, divide=True),
    "PRelu": _single(_prelu),
    "Selu": _elementwise(_selu, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875),
    "Softplus": _elementwise(_softplus),
    "Softsign": _elementwise(_softsign),
    "HardSigmoid": _elementwise(_hard_sigmoid, alpha=0.2, beta=0.5),
    "HardSwish": _elementwise(_hard_swish),
    "Reciprocal": _elementwise(lambda x: 1 / x),
    "Clip": _clip,
    "Dropout": _dropout,
    "Div": _single(_divide),
    "Floor": _rounding("Floor"),
    "Ceil": _rounding("Ceil"),
}
