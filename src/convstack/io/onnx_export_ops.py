"""ONNX conversions of the layer ops: convolution, pooling, normalisation, activations, linear, resize, pad.

Each converter receives the ``GraphBuilder`` and one recorded ``Call`` (the ``Function``, its
input and output value names, its options) and adds nodes whose final outputs are
``call.outputs``. Where ONNX and PyTorch disagree on an edge case the converter writes the
PyTorch semantics out in ONNX terms (noted at each place); ``CONVERTERS`` maps every
``Function`` class to its converter (the tensor ops' are in ``onnx_export_tensor``).
"""

from __future__ import annotations

import math

import numpy

from convstack.io.onnx_export_tensor import TENSOR_CONVERTERS, matrix_along, reduce
from convstack.nn.functional import activation, adaptive_pooling, conv, normalization, pooling
from convstack.nn.functional.dropout import Dropout
from convstack.nn.functional.linear import Linear
from convstack.nn.functional.maxout import Maxout
from convstack.nn.functional.padding import Pad
from convstack.nn.functional.upsample import Interpolate, linear_matrix
from convstack.nn.kernels.reference.pooling import adaptive_average_matrix, ceil_extra_padding


def _pairs(padding_option) -> list:
    """Per-dimension padding (ints or (before, after) pairs) as ONNX ``pads``: all befores, then all afters."""
    pairs = [(p, p) if isinstance(p, int) else tuple(p) for p in padding_option]
    return [b for b, _ in pairs] + [a for _, a in pairs]


def _check_batched(call, spatial: int) -> None:
    if len(call.tensors[0].shape) != spatial + 2:
        raise ValueError(f"export_onnx: {type(call.fn).__name__} in node {call.name!r} runs on an unbatched input of "
                         f"shape {call.tensors[0].shape}; export with a batch dimension")


# ---------------------------------------------------------------------------------- convolution
def _conv(g, call):
    options, weight = call.options, call.tensors[1]
    _check_batched(call, weight.ndim - 2)
    g.node("Conv", call.inputs, call.outputs, call, kernel_shape=list(weight.shape[2:]),
           strides=list(options["stride"]), pads=_pairs(options["padding"]), dilations=list(options["dilation"]),
           group=options["groups"])


def _conv_transpose(g, call):
    options, weight = call.options, call.tensors[1]
    _check_batched(call, weight.ndim - 2)
    g.node("ConvTranspose", call.inputs, call.outputs, call, kernel_shape=list(weight.shape[2:]),
           strides=list(options["stride"]), pads=_pairs(options["padding"]), dilations=list(options["dilation"]),
           output_padding=list(options["output_padding"]), group=options["groups"])


# -------------------------------------------------------------------------------------- pooling
def _max_pool(g, call):
    o = call.options
    _check_batched(call, len(o["kernel"]))
    # ceil_mode as explicit right padding: max pooling ignores padding, so this is exactly PyTorch's rule
    # (a last window must start inside the input or the left padding), whatever the runtime's ceil_mode does.
    extra = ceil_extra_padding(call.tensors[0].shape[2:], o["kernel"], o["stride"], o["padding"], o["dilation"],
                               o["out_sizes"])
    pads = list(o["padding"]) + [p + e for p, e in zip(o["padding"], extra)]
    g.node("MaxPool", call.inputs, call.outputs[:1], call, kernel_shape=list(o["kernel"]), strides=list(o["stride"]),
           pads=pads, dilations=list(o["dilation"]))
    if len(call.outputs) > 1:
        g.unsupported[call.outputs[1]] = f"max pooling indices (node {call.name!r}) have no ONNX equivalent"


def _avg_pool(g, call):
    o = call.options
    spatial = len(o["kernel"])
    _check_batched(call, spatial)
    ones = (1,) * spatial
    extra = ceil_extra_padding(call.tensors[0].shape[2:], o["kernel"], o["stride"], o["padding"], ones,
                               o["out_sizes"])
    attributes = dict(kernel_shape=list(o["kernel"]), strides=list(o["stride"]))
    source, padding = call.inputs[0], list(o["padding"])
    if o["divisor_override"] is not None:
        # Window sums (count_include_pad over zero padding, ceil overhang included) times k / divisor.
        average = g.node("AveragePool", [source], 1, call, pads=padding + [p + e for p, e in zip(padding, extra)],
                         count_include_pad=1, **attributes)[0]
        factor = g.scalar_like(math.prod(o["kernel"]) / o["divisor_override"], source, f"{call.name}/factor")
        g.node("Mul", [average, factor], call.outputs, call)
        return
    if not any(extra):
        g.node("AveragePool", [source], call.outputs, call, pads=padding + padding,
               count_include_pad=int(o["count_include_pad"]), **attributes)
        return
    if o["count_include_pad"] and any(padding):
        # PyTorch's divisor counts the zero padding but not ceil_mode's overhang: pad explicitly, then let
        # the pooling leave out only the overhang.
        pads = g.ints([0, 0] + padding + [0, 0] + padding, f"{call.name}/pads")
        source = g.node("Pad", [source, pads], 1, call, mode="constant")[0]
        padding = [0] * spatial
    g.node("AveragePool", [source], call.outputs, call, pads=padding + [p + e for p, e in zip(padding, extra)],
           count_include_pad=0, **attributes)


def _adaptive_avg_pool(g, call):
    sizes, out_sizes = call.tensors[0].shape[2:], call.options["out_sizes"]
    _check_batched(call, len(out_sizes))
    if all(o == 1 for o in out_sizes):
        g.node("GlobalAveragePool", call.inputs, call.outputs, call)
    elif all(n % o == 0 for n, o in zip(sizes, out_sizes)):
        kernel = [n // o for n, o in zip(sizes, out_sizes)]
        g.node("AveragePool", call.inputs, call.outputs, call, kernel_shape=kernel, strides=kernel)
    else:  # uneven windows: one averaging matrix per resized dimension
        value, ndim = call.inputs[0], len(call.tensors[0].shape)
        axes = [axis for axis, (n, o) in enumerate(zip(sizes, out_sizes), start=2) if n != o]
        for position, axis in enumerate(axes):
            matrix = adaptive_average_matrix(sizes[axis - 2], out_sizes[axis - 2], numpy, call.tensors[0].dtype)
            last = position == len(axes) - 1
            value = matrix_along(g, call, value, axis, ndim, matrix, call.outputs[0] if last else None)


def _adaptive_max_pool(g, call):
    sizes, out_sizes = call.tensors[0].shape[2:], call.options["out_sizes"]
    _check_batched(call, len(out_sizes))
    if all(o == 1 for o in out_sizes):
        g.node("GlobalMaxPool", call.inputs, call.outputs[:1], call)
    elif all(n % o == 0 for n, o in zip(sizes, out_sizes)):
        kernel = [n // o for n, o in zip(sizes, out_sizes)]
        g.node("MaxPool", call.inputs, call.outputs[:1], call, kernel_shape=kernel, strides=kernel)
    else:
        raise ValueError(f"export_onnx: adaptive max pooling from {sizes} to {out_sizes} (node {call.name!r}) has "
                         "uneven windows, which ONNX cannot express")
    if len(call.outputs) > 1:
        g.unsupported[call.outputs[1]] = f"max pooling indices (node {call.name!r}) have no ONNX equivalent"


# -------------------------------------------------------------------------------- normalisation
def _batch_norm(g, call):
    o, x = call.options, call.tensors[0]
    channels, dtype = x.shape[1], x.dtype
    params = list(call.inputs[1:])
    scale = params.pop(0) if o["affine"][0] else g.initializer(numpy.ones(channels, dtype), f"{call.name}/scale")
    bias = params.pop(0) if o["affine"][1] else g.initializer(numpy.zeros(channels, dtype), f"{call.name}/bias")
    outputs = 1 if o.get("relu") else call.outputs  # a fused batch norm + ReLU: the Relu node writes the output
    if not o["training"]:
        mean = g.array_value(o["running_mean"], f"{call.name}/running_mean")
        var = g.array_value(o["running_var"], f"{call.name}/running_var")
        normalised = g.node("BatchNormalization", [call.inputs[0], scale, bias, mean, var], outputs, call,
                            epsilon=o["eps"])
    else:
        # Batch statistics (a batch norm without running statistics): the formula, over (N, *spatial).
        axes = [0] + list(range(2, x.ndim))
        shape = g.ints([1, channels] + [1] * (x.ndim - 2), f"{call.name}/channel_shape")
        mean = reduce(g, call, "ReduceMean", call.inputs[0], axes, True)
        centred = g.node("Sub", [call.inputs[0], mean], 1, call)[0]
        square = g.node("Mul", [centred, centred], 1, call)[0]
        var = reduce(g, call, "ReduceMean", square, axes, True)
        eps = g.scalar_like(o["eps"], call.inputs[0], f"{call.name}/eps")
        std = g.node("Sqrt", [g.node("Add", [var, eps], 1, call)[0]], 1, call)[0]
        standardised = g.node("Div", [centred, std], 1, call)[0]
        scale = g.node("Reshape", [scale, shape], 1, call)[0]
        bias = g.node("Reshape", [bias, shape], 1, call)[0]
        normalised = g.node("Add", [g.node("Mul", [standardised, scale], 1, call)[0], bias], outputs, call)
    if o.get("relu"):
        g.node("Relu", normalised, call.outputs, call)


def _local_response_norm(g, call):
    o, x = call.options, call.tensors[0]
    size = o["size"]
    if size % 2 == 1:  # ONNX's window [c - (size - 1) // 2, c + size // 2] equals PyTorch's for odd sizes
        g.node("LRN", call.inputs, call.outputs, call, size=size, alpha=o["alpha"], beta=o["beta"], bias=o["k"])
        return
    # Even sizes: PyTorch's window [c - size // 2, c + (size - 1) // 2] as an average pool over channels
    # of the squares, (N, C, *S) -> (N, 1, C, *S) padded on C.
    square = g.node("Mul", [call.inputs[0], call.inputs[0]], 1, call)[0]
    stacked = g.node("Unsqueeze", [square, g.ints([1], f"{call.name}/axis")], 1, call)[0]
    rank = x.ndim + 1
    before, after = [0] * rank, [0] * rank
    before[2], after[2] = size // 2, (size - 1) // 2
    padded = g.node("Pad", [stacked, g.ints(before + after, f"{call.name}/pads")], 1, call, mode="constant")[0]
    window = g.node("AveragePool", [padded], 1, call, kernel_shape=[size] + [1] * (x.ndim - 2))[0]
    window = g.node("Squeeze", [window, g.ints([1], f"{call.name}/axis")], 1, call)[0]
    alpha = g.scalar_like(o["alpha"], call.inputs[0], f"{call.name}/alpha")
    k = g.scalar_like(o["k"], call.inputs[0], f"{call.name}/k")
    beta = g.scalar_like(o["beta"], call.inputs[0], f"{call.name}/beta")
    base = g.node("Add", [g.node("Mul", [window, alpha], 1, call)[0], k], 1, call)[0]
    g.node("Div", [call.inputs[0], g.node("Pow", [base, beta], 1, call)[0]], call.outputs, call)


# ---------------------------------------------------------------------------------- activations
def _simple(op_type, **fixed):
    def convert(g, call):
        attributes = {key: call.options[option] for key, option in fixed.items()}
        g.node(op_type, call.inputs, call.outputs, call, **attributes)

    return convert


def _gelu(g, call):
    approximate = call.options["approximate"]
    if g.opset >= 20:
        g.node("Gelu", call.inputs, call.outputs, call, approximate=approximate)
        return
    x = call.inputs[0]
    half = g.scalar_like(0.5, x, f"{call.name}/half")
    one = g.scalar_like(1.0, x, f"{call.name}/one")
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
        cube = g.node("Mul", [x, g.node("Mul", [x, x], 1, call)[0]], 1, call)[0]
        inner = g.node("Add", [x, g.node("Mul", [cube, g.scalar_like(0.044715, x, f"{call.name}/c")], 1, call)[0]],
                       1, call)[0]
        inner = g.node("Mul", [inner, g.scalar_like(math.sqrt(2 / math.pi), x, f"{call.name}/k")], 1, call)[0]
        curve = g.node("Tanh", [inner], 1, call)[0]
    else:  # 0.5 x (1 + erf(x / sqrt(2)))
        scaled = g.node("Mul", [x, g.scalar_like(1 / math.sqrt(2), x, f"{call.name}/k")], 1, call)[0]
        curve = g.node("Erf", [scaled], 1, call)[0]
    plus_one = g.node("Add", [curve, one], 1, call)[0]
    g.node("Mul", [g.node("Mul", [x, half], 1, call)[0], plus_one], call.outputs, call)


# --------------------------------------------------------------------------------------- linear
def _linear(g, call):
    x = call.tensors[0]
    if x.ndim == 2:
        g.node("Gemm", call.inputs, call.outputs, call, transB=1)
        return
    weight_t = g.node("Transpose", [call.inputs[1]], 1, call, perm=[1, 0])[0]
    if len(call.inputs) == 2:
        g.node("MatMul", [call.inputs[0], weight_t], call.outputs, call)
        return
    product = g.node("MatMul", [call.inputs[0], weight_t], 1, call)[0]
    g.node("Add", [product, call.inputs[2]], call.outputs, call)


def _dropout(g, call):
    g.node("Identity", call.inputs[:1], call.outputs, call)  # inference: dropout is the identity


def _maxout(g, call):
    o, x = call.options, call.tensors[0]
    dim, pool = o["dim"], o["pool_size"]
    grouped = list(x.shape[:dim]) + [x.shape[dim] // pool, pool] + list(x.shape[dim + 1:])
    grouped = [0 if axis < dim else size for axis, size in enumerate(grouped)]  # 0: copy the input's size
    value = g.node("Reshape", [call.inputs[0], g.ints(grouped, f"{call.name}/shape")], 1, call)[0]
    reduce(g, call, "ReduceMax", value, [dim + 1], False, call.outputs[0])


# --------------------------------------------------------------------------------------- resize
def _interpolate(g, call):
    """Resize: whole-factor nearest and PyTorch-exact linear as one ``Resize``; anything else per axis, exactly."""
    x = call.tensors[0]
    plans, sizes = call.options["plans"], x.shape[2:]
    out_sizes = call.results[0].shape[2:]
    active = [(axis, plan) for axis, plan in enumerate(plans) if plan is not None]
    scales = [1.0, 1.0] + [_scale(n, o) for n, o in zip(sizes, out_sizes)]
    if not active:
        g.node("Identity", call.inputs, call.outputs, call)
        return
    kinds = {_plan_kind(plan, sizes[axis], out_sizes[axis], x.dtype) for axis, plan in active}
    if len(kinds) == 1 and None not in kinds:
        (kind,) = kinds
        empty = ""
        scales_name = g.initializer(numpy.asarray(scales, dtype=numpy.float32), f"{call.name}/scales")
        if kind == "repeat":  # src = floor(dst / r): PyTorch's nearest for whole factors
            g.node("Resize", [call.inputs[0], empty, scales_name], call.outputs, call, mode="nearest",
                   coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        else:
            transform = "align_corners" if kind == "align_corners" else "pytorch_half_pixel"
            g.node("Resize", [call.inputs[0], empty, scales_name], call.outputs, call, mode="linear",
                   coordinate_transformation_mode=transform)
        return
    value, ndim = call.inputs[0], x.ndim
    for position, (axis, plan) in enumerate(active):
        target = call.outputs[0] if position == len(active) - 1 else None
        if plan[0] == "repeat":
            value = _gather(g, call, value, axis + 2, numpy.arange(out_sizes[axis]) // plan[1], target)
        elif plan[0] == "gather":
            value = _gather(g, call, value, axis + 2, numpy.asarray(plan[1]), target)
        else:
            value = matrix_along(g, call, value, axis + 2, ndim, numpy.asarray(plan[1]), target)


def _scale(in_size: int, out_size: int) -> float:
    """The float32 scale nearest ``out / in`` from above whose ``floor(in * scale)`` is ``out``, in float32 and float64
    (runtimes and shape inference compute the output size that way)."""
    scale = numpy.float32(out_size / in_size)
    while (math.floor(float(scale) * in_size) < out_size
           or math.floor(numpy.float32(scale) * numpy.float32(in_size)) < out_size):
        scale = numpy.nextafter(scale, numpy.float32(numpy.inf))
    return float(scale)


def _gather(g, call, value, axis, indices, target):
    index = g.initializer(numpy.asarray(indices, dtype=numpy.int64), f"{call.name}/indices")
    return g.node("Gather", [value, index], [target] if target else 1, call, axis=axis)[0]


def _plan_kind(plan, in_size, out_size, dtype):
    """``'repeat'``, ``'align_corners'``, ``'half_pixel'`` when ``plan`` is exactly that Resize along its axis."""
    if plan[0] == "repeat":
        return "repeat"
    if plan[0] != "matrix":
        return None
    matrix = numpy.asarray(plan[1])
    for kind, align in (("align_corners", True), ("half_pixel", False)):
        if numpy.array_equal(matrix, linear_matrix(in_size, out_size, None, align, dtype)):
            return kind
    return None


# ------------------------------------------------------------------------------------------ pad
_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pad(g, call):
    o = call.options
    if o["mode"] == "circular" and g.opset < 19:
        raise ValueError(f"export_onnx: circular padding (node {call.name!r}) needs opset 19 or newer, "
                         f"exporting to opset {g.opset}")
    pads = g.ints(_pairs(o["pads"]), f"{call.name}/pads")
    inputs = [call.inputs[0], pads]
    if o["mode"] == "constant":
        inputs.append(g.scalar_like(o["value"], call.inputs[0], f"{call.name}/value"))
    g.node("Pad", inputs, call.outputs, call, mode=_PAD_MODES[o["mode"]])


CONVERTERS = {
    conv.ConvNd: _conv,
    conv.ConvTransposeNd: _conv_transpose,
    pooling._MaxPoolNd: _max_pool,
    pooling._AvgPoolNd: _avg_pool,
    adaptive_pooling._AdaptiveAvgPoolNd: _adaptive_avg_pool,
    adaptive_pooling._AdaptiveMaxPoolNd: _adaptive_max_pool,
    normalization.BatchNorm: _batch_norm,
    normalization.LocalResponseNorm: _local_response_norm,
    activation.ReLU: _simple("Relu"),
    activation.LeakyReLU: _simple("LeakyRelu", alpha="negative_slope"),
    activation.ELU: _simple("Elu", alpha="alpha"),
    activation.GELU: _gelu,
    activation.Sigmoid: _simple("Sigmoid"),
    activation.Tanh: _simple("Tanh"),
    activation.Softmax: _simple("Softmax", axis="dim"),
    activation.LogSoftmax: _simple("LogSoftmax", axis="dim"),
    Linear: _linear,
    Dropout: _dropout,
    Maxout: _maxout,
    Interpolate: _interpolate,
    Pad: _pad,
    **TENSOR_CONVERTERS,
}
