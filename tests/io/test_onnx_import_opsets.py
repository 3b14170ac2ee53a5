"""Every operator the classic CNN zoo's files use, in each form it takes from opset 7 to opset 21, imported
and compared with onnxruntime on the same file (1e-4 relative): settings given as attributes (old
opsets) or inputs (new ones), constant (folded at import) or computed from the input's shape (run at
run time). Then gradients through the import-side ops, against PyTorch where it has the op.
"""

import numpy as np
import pytest

import convstack as cs
from convstack import nn
from convstack.io import import_onnx

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from tests.helpers import check_against_torch, check_gradients  # noqa: E402
from tests.io.onnx_graphs import compare_with_onnxruntime, model_at, step_types  # noqa: E402

F32, I64 = np.float32, np.int64


def node(op, inputs, outputs, **attributes):
    return helper.make_node(op, inputs, outputs if isinstance(outputs, list) else [outputs], name=f"{op}_{outputs}",
                            **attributes)


def axes_form(opset, op, inputs, output, axes, until=13, **attributes):
    """``op`` with ``axes`` as an attribute (opsets below ``until``) or an extra input (named ``<output>_axes``)."""
    if opset < until:
        return [node(op, inputs, output, axes=axes, **attributes)], {}
    return [node(op, inputs + [f"{output}_axes"], output, **attributes)], {f"{output}_axes": np.array(axes, I64)}


def constant(name, array):
    return helper.make_node("Constant", [], [name], name=f"Constant_{name}", value=numpy_helper.from_array(array))


# ------------------------------------------------------------------------------------------ cases
# Each case returns (nodes, inputs, outputs, initializers) at an opset of its range.
CASES = {}


def opsets(first=7, last=21):
    """Register a case for the opsets from ``first`` to ``last`` (the operator's life in the standard)."""

    def register(function):
        CASES[function.__name__[5:]] = (function, range(first, last + 1))
        return function

    return register


@opsets(9)
def case_constant_of_shape(opset, rng):
    x = rng.normal(size=(2, 3, 4, 5)).astype(F32)
    nodes = [node("Shape", ["x"], "shape"),
             node("ConstantOfShape", ["shape"], "halves", value=numpy_helper.from_array(np.array([0.5], F32))),
             node("Add", ["x", "halves"], "y"),
             constant("bias_shape", np.array([3, 1, 1], I64)),  # a weight made by the graph: folded at import
             node("ConstantOfShape", ["bias_shape"], "bias", value=numpy_helper.from_array(np.array([0.25], F32))),
             node("Mul", ["y", "bias"], "z"),
             node("ConstantOfShape", ["shape"], "zeros")]  # the default value: float zeros
    return nodes, {"x": x}, ["z", "zeros"], {}


@opsets()
def case_shape_arithmetic(opset, rng):
    """``x.reshape(N, C, H * W // 2, 2)`` with the sizes read from ``Shape`` at run time, as torch.onnx writes it."""
    x = rng.normal(size=(2, 3, 4, 6)).astype(F32)
    nodes = [node("Shape", ["x"], "shape")]
    initializers = {}
    for i in range(4):
        nodes.append(node("Gather", ["shape", f"i{i}"], f"d{i}", axis=0))
        initializers[f"i{i}"] = np.array(i, I64)
    nodes += [node("Mul", ["d2", "d3"], "area"),
              node("Cast", ["area"], "area_f", to=TensorProto.FLOAT),
              node("Div", ["area_f", "two_f"], "half_f"),
              node("Floor", ["half_f"], "half_floor"),
              node("Cast", ["half_floor"], "half", to=TensorProto.INT64),
              node("Div", ["area", "two"], "half_int")]  # integer division
    initializers.update(two_f=np.array(2, F32), two=np.array(2, I64), last=np.array([2], I64))
    for name in ("d0", "d1", "half"):
        more, extra = axes_form(opset, "Unsqueeze", [name], f"{name}_1", [0])
        nodes += more
        initializers.update(extra)
    nodes += [node("Concat", ["d0_1", "d1_1", "half_1", "last"], "target", axis=0),
              node("Reshape", ["x", "target"], "y"),
              node("Sub", ["half_int", "half"], "zero")]
    return nodes, {"x": x}, ["y", "zero"], initializers


@opsets()
def case_split(opset, rng):
    x = rng.normal(size=(2, 7, 3, 4)).astype(F32)
    initializers = {}
    if opset < 13:
        nodes = [node("Split", ["x"], ["a", "b", "c"], axis=1, split=[1, 2, 4])]
    else:
        nodes = [node("Split", ["x", "sizes"], ["a", "b", "c"], axis=1)]
        initializers["sizes"] = np.array([1, 2, 4], I64)
    if opset < 18:  # equal parts
        nodes.append(node("Split", ["x"], ["even0", "even1"], axis=-1 if opset >= 11 else 3))
        outputs = ["even0", "even1"]
    else:  # num_outputs: parts of ceil(7 / 4), the last one shorter
        outputs = [f"part{i}" for i in range(4)]
        nodes.append(node("Split", ["x"], outputs, axis=1, num_outputs=4))
    return nodes, {"x": x}, ["a", "b", "c"] + outputs, initializers


@opsets()
def case_tile(opset, rng):
    x = rng.normal(size=(2, 3, 2, 2)).astype(F32)
    nodes = [node("Tile", ["x", "repeats"], "fixed"),
             node("Shape", ["x"], "shape"),  # computed repeats: shape / shape * (1, 2, 1, 3) at run time
             node("Div", ["shape", "shape"], "ones"),
             node("Mul", ["ones", "repeats"], "computed"),
             node("Tile", ["x", "computed"], "tiled")]
    return nodes, {"x": x}, ["fixed", "tiled"], {"repeats": np.array([1, 2, 1, 3], I64)}


@opsets(8)
def case_expand(opset, rng):
    x = rng.normal(size=(3, 1, 1)).astype(F32)
    y = rng.normal(size=(2, 3, 4, 5)).astype(F32)
    nodes = [node("Expand", ["x", "fixed_shape"], "fixed"),
             node("Shape", ["y"], "shape"),
             node("Expand", ["x", "shape"], "computed"),
             node("Add", ["computed", "y"], "sum")]
    return nodes, {"x": x, "y": y}, ["fixed", "sum"], {"fixed_shape": np.array([2, 1, 1, 4], I64)}


@opsets()
def case_variadic(opset, rng):
    shapes = ((2, 3, 4, 5),) * 3 if opset < 8 else ((2, 3, 4, 5), (3, 1, 1), (1,))  # broadcasting from opset 8
    inputs = {name: rng.normal(size=shape).astype(F32) for name, shape in zip("abc", shapes)}
    nodes = [node(op, ["a", "b", "c"], op.lower()) for op in ("Max", "Min", "Sum", "Mean")]
    nodes += [node("Max", ["a"], "single"), node("Sum", ["a", "b"], "pair")]
    return nodes, inputs, ["max", "min", "sum", "mean", "single", "pair"], {}


@opsets()
def case_activations(opset, rng):
    x = (rng.normal(size=(2, 4, 3, 3)) * 3).astype(F32)
    nodes = [node("PRelu", ["x", "slope"], "prelu"),
             node("Selu", ["x"], "selu"),
             node("Selu", ["x"], "selu2", alpha=1.5, gamma=0.9),
             node("Elu", ["x"], "elu", alpha=0.7),
             node("Softplus", ["x"], "softplus"),
             node("Softsign", ["x"], "softsign"),
             node("HardSigmoid", ["x"], "hard_sigmoid"),
             node("HardSigmoid", ["x"], "hard_sigmoid2", alpha=0.3, beta=0.4)]
    outputs = ["prelu", "selu", "selu2", "elu", "softplus", "softsign", "hard_sigmoid", "hard_sigmoid2"]
    if opset >= 14:
        nodes.append(node("HardSwish", ["x"], "hard_swish"))
        outputs.append("hard_swish")
    return nodes, {"x": x}, outputs, {"slope": rng.uniform(0.05, 0.5, size=(4, 1, 1)).astype(F32)}


@opsets()
def case_lrn(opset, rng):
    x = rng.normal(size=(2, 7, 3, 3)).astype(F32)
    nodes = [node("LRN", ["x"], "odd", size=5, alpha=0.5, beta=0.75, bias=2.0),
             node("LRN", ["x"], "default", size=3)]  # onnxruntime runs odd sizes only: even ones are tested below
    return nodes, {"x": x}, ["odd", "default"], {}


@opsets()
def case_instance_norm(opset, rng):
    x = (rng.normal(size=(2, 3, 5, 4)) * 2 + 1).astype(F32)
    nodes = [node("InstanceNormalization", ["x", "norm.weight", "norm.bias"], "y", epsilon=1e-3),
             node("InstanceNormalization", ["y", "shared", "shared"], "z")]  # one initializer twice: run as arithmetic
    initializers = {"norm.weight": rng.uniform(0.5, 1.5, 3).astype(F32), "norm.bias": rng.normal(size=3).astype(F32),
                    "shared": rng.normal(size=3).astype(F32)}
    return nodes, {"x": x}, ["z"], initializers


@opsets()
def case_dropout(opset, rng):
    x = rng.normal(size=(2, 3, 4)).astype(F32)
    if opset < 12:
        nodes = [node("Dropout", ["x"], ["y", "mask"], ratio=0.3)]
        return nodes, {"x": x}, ["y", "mask"], {}
    nodes = [node("Dropout", ["x", "ratio", "training"], ["y", "mask"]), node("Dropout", ["y"], "z")]
    return nodes, {"x": x}, ["z", "mask"], {"ratio": np.array(0.3, F32), "training": np.array(False)}


@opsets()
def case_clip(opset, rng):
    x = (rng.normal(size=(2, 3, 4)) * 4).astype(F32)
    if opset < 11:
        nodes = [node("Clip", ["x"], "relu6", min=0.0, max=6.0), node("Clip", ["x"], "low", min=-1.0),
                 node("Clip", ["x"], "none")]
        return nodes, {"x": x}, ["relu6", "low", "none"], {}
    nodes = [node("Clip", ["x", "zero", "six"], "relu6"), node("Clip", ["x", "", "six"], "high"),
             node("Clip", ["x"], "none"),
             node("ReduceMean", ["x"], "mean", keepdims=0),  # a computed bound: read at run time
             node("Clip", ["x", "mean"], "computed")]
    return nodes, {"x": x}, ["relu6", "high", "none", "computed"], {"zero": np.array(0, F32), "six": np.array(6, F32)}


@opsets()
def case_pad(opset, rng):
    x = rng.normal(size=(2, 3, 4, 5)).astype(F32)
    pads = [0, 0, 1, 2, 0, 0, 2, 1]
    if opset < 11:
        nodes = [node("Pad", ["x"], "constant", pads=pads, value=1.5),
                 node("Pad", ["x"], "reflect", pads=pads, mode="reflect"),
                 node("Pad", ["x"], "edge", pads=pads, mode="edge"),
                 node("Pad", ["x"], "crop", pads=[0, 0, -1, 1, 0, 0, 0, -2])]
        return nodes, {"x": x}, ["constant", "reflect", "edge", "crop"], {}
    nodes = [node("Pad", ["x", "pads", "value"], "constant"),
             node("Pad", ["x", "pads"], "reflect", mode="reflect"),
             node("Pad", ["x", "pads"], "edge", mode="edge"),
             node("Pad", ["x", "crop_pads"], "crop"),
             node("Shape", ["x"], "shape"),  # pads computed at run time: (shape / shape) * pads
             node("Div", ["shape", "shape"], "ones"),
             node("Concat", ["ones", "ones"], "ones8", axis=0),
             node("Mul", ["ones8", "pads"], "computed_pads"),
             node("Pad", ["x", "computed_pads"], "computed")]
    outputs = ["constant", "reflect", "edge", "crop", "computed"]
    initializers = {"pads": np.array(pads, I64), "value": np.array(1.5, F32),
                    "crop_pads": np.array([0, 0, -1, 1, 0, 0, 0, -2], I64)}
    if opset >= 18:
        nodes.append(node("Pad", ["x", "axis_pads", "", "axes"], "some_axes"))
        outputs.append("some_axes")
        initializers.update(axis_pads=np.array([1, 2, 3, 0], I64), axes=np.array([-1, 1], I64))
    if opset >= 19:
        nodes.append(node("Pad", ["x", "pads"], "wrap", mode="wrap"))
        outputs.append("wrap")
    return nodes, {"x": x}, outputs, initializers


@opsets(7, 9)
def case_upsample(opset, rng):
    x = rng.normal(size=(1, 2, 3, 4)).astype(F32)
    if opset < 9:
        nodes = [node("Upsample", ["x"], "nearest", scales=[1.0, 1.0, 2.0, 1.5]),
                 node("Upsample", ["x"], "linear", scales=[1.0, 1.0, 2.5, 2.0], mode="linear")]
        return nodes, {"x": x}, ["nearest", "linear"], {}
    nodes = [node("Upsample", ["x", "s1"], "nearest"), node("Upsample", ["x", "s2"], "linear", mode="linear")]
    return nodes, {"x": x}, ["nearest", "linear"], {"s1": np.array([1, 1, 2, 1.5], F32),
                                                    "s2": np.array([1, 1, 2.5, 2], F32)}


RESIZE_FORMS = [  # (mode, coordinate_transformation_mode, nearest_mode, more attributes)
    ("nearest", "asymmetric", "floor", {}), ("nearest", "half_pixel", "round_prefer_floor", {}),
    ("nearest", "tf_half_pixel_for_nn", "round_prefer_ceil", {}), ("nearest", "align_corners", "ceil", {}),
    ("linear", "half_pixel", None, {}), ("linear", "pytorch_half_pixel", None, {}),
    ("linear", "align_corners", None, {}), ("linear", "asymmetric", None, {}),
    ("cubic", "half_pixel", None, {}), ("cubic", "align_corners", None, {"cubic_coeff_a": -0.5}),
    ("cubic", "asymmetric", None, {"exclude_outside": 1}),
]


@opsets(10)
def case_resize(opset, rng):
    x = rng.normal(size=(2, 3, 5, 6)).astype(F32)
    if opset == 10:  # scales only; onnxruntime's rule before nearest_mode existed (and downsampling)
        nodes = [node("Resize", ["x", "up"], "nearest"), node("Resize", ["x", "down"], "smaller"),
                 node("Resize", ["x", "up"], "linear", mode="linear")]
        initializers = {"up": np.array([1, 1, 2, 1.5], F32), "down": np.array([1, 1, 0.6, 0.5], F32)}
        return nodes, {"x": x}, ["nearest", "smaller", "linear"], initializers
    empty = "" if opset >= 13 else "roi"
    nodes, outputs = [], []
    for i, (mode, transform, nearest, more) in enumerate(RESIZE_FORMS):
        extra = dict(more, **({"nearest_mode": nearest} if nearest else {}))
        nodes.append(node("Resize", ["x", empty, "up"], f"up{i}", mode=mode, coordinate_transformation_mode=transform,
                          **extra))
        nodes.append(node("Resize", ["x", empty, "", "sizes"] if opset >= 13 else ["x", empty, "no_scales", "sizes"],
                          f"sized{i}", mode=mode, coordinate_transformation_mode=transform, **extra))
        outputs += [f"up{i}", f"sized{i}"]
        if mode == "nearest":  # halving puts half_pixel's source coordinates on exact halves: the rounding rule shows
            nodes.append(node("Resize", ["x", empty, "half"], f"half{i}", mode=mode,
                              coordinate_transformation_mode=transform, **extra))
            outputs.append(f"half{i}")
    initializers = {"up": np.array([1, 1, 1.6, 2], F32), "half": np.array([1, 1, 0.5, 0.5], F32),
                    "sizes": np.array([2, 3, 3, 8], I64),
                    "roi": np.array([], F32), "no_scales": np.array([], F32)}
    if opset >= 18:
        nodes.append(node("Resize", ["x", "", "", "axis_sizes"], "aspect", mode="linear", axes=[3, 2],
                          keep_aspect_ratio_policy="not_larger"))
        outputs.append("aspect")
        initializers["axis_sizes"] = np.array([9, 12], I64)
    if opset >= 19:
        nodes.append(node("Resize", ["x", "", "up"], "symmetric", mode="linear",
                          coordinate_transformation_mode="half_pixel_symmetric"))
        outputs.append("symmetric")
    nodes += [node("Shape", ["x"], "shape"),  # sizes computed at run time: twice the input's
              node("Mul", ["shape", "twice"], "doubled"),
              node("Slice", ["doubled", "from", "to"], "doubled_hw"),
              node("Concat", ["batch_channels", "doubled_hw"], "computed_sizes", axis=0),
              node("Resize", ["x", empty, "" if opset >= 13 else "no_scales", "computed_sizes"], "computed",
                   mode="nearest")]
    outputs.append("computed")
    initializers.update(twice=np.array([1, 1, 2, 2], I64), batch_channels=np.array([2, 3], I64),
                        **{"from": np.array([2], I64), "to": np.array([4], I64)})
    return nodes, {"x": x}, outputs, initializers


@opsets()
def case_auto_pad(opset, rng):
    """``auto_pad`` SAME (output size ceil(input / stride), the odd pad after or before) and VALID, as Keras and
    TensorFlow converters and CNTK (the zoo's MNIST) write convolutions and pools."""
    x = rng.normal(size=(2, 3, 7, 8)).astype(F32)
    nodes = [node("Conv", ["x", "w"], "upper", auto_pad="SAME_UPPER", strides=[2, 2]),
             node("Conv", ["x", "w"], "lower", auto_pad="SAME_LOWER", kernel_shape=[3, 4]),
             node("Conv", ["x", "w"], "valid", auto_pad="VALID"),
             node("MaxPool", ["x"], "max", auto_pad="SAME_UPPER", kernel_shape=[3, 3], strides=[2, 2]),
             node("AveragePool", ["x"], "avg", auto_pad="SAME_LOWER", kernel_shape=[2, 3], strides=[1, 2]),
             node("AveragePool", ["x"], "avg_pad", auto_pad="SAME_UPPER", kernel_shape=[3, 3], count_include_pad=1)]
    return nodes, {"x": x}, ["upper", "lower", "valid", "max", "avg", "avg_pad"], {
        "w": rng.normal(size=(4, 3, 3, 4)).astype(F32)}


@opsets()
def case_slice_squeeze(opset, rng):
    x = rng.normal(size=(2, 3, 5, 6)).astype(F32)
    initializers = {}
    if opset < 10:  # starts, ends and axes as attributes, no steps
        nodes = [node("Slice", ["x"], "s", starts=[1, 1], ends=[3, 100], axes=[1, 3])]
    else:
        nodes = [node("Slice", ["x", "starts", "ends", "axes", "steps"], "s"),
                 node("Shape", ["x"], "shape"),  # an end computed at run time: x.size(2) - 1
                 node("Gather", ["shape", "two"], "height", axis=0),
                 node("Sub", ["height", "one"], "end"),
                 node("Unsqueeze", ["end"] + (["zero"] if opset >= 13 else []), "end1",
                      **({} if opset >= 13 else {"axes": [0]})),
                 node("Slice", ["x", "zero1", "end1", "two1"], "computed")]
        initializers.update(starts=np.array([1, -1], I64), ends=np.array([3, -7], I64), axes=np.array([1, 3], I64),
                            steps=np.array([1, -2], I64), two=np.array(2, I64), one=np.array(1, I64),
                            zero=np.array([0], I64), zero1=np.array([0], I64), two1=np.array([2], I64))
    more, extra = axes_form(opset, "Squeeze", ["s_first"], "squeezed", [0])
    nodes += [node("Slice", ["x"], "s_first", starts=[0], ends=[1], axes=[0]) if opset < 10 else
              node("Slice", ["x", "zero", "one1"], "s_first")] + more
    initializers.update(extra, **({"one1": np.array([1], I64)} if opset >= 10 else {}))
    outputs = ["s", "squeezed"] + (["computed"] if opset >= 10 else [])
    return nodes, {"x": x}, outputs, initializers


@opsets()
def case_reductions(opset, rng):
    x = rng.normal(size=(2, 3, 4, 5)).astype(F32)
    nodes, initializers = [], {}
    for op, until in (("ReduceSum", 13), ("ReduceMean", 18), ("ReduceMax", 18), ("ReduceMin", 18)):
        more, extra = axes_form(opset, op, ["x"], op.lower(), [1, -1], until, keepdims=0)
        nodes += more
        initializers.update(extra)
    nodes += [node("ArgMax", ["x"], "argmax", axis=2), node("ArgMin", ["x"], "argmin", axis=-1, keepdims=0),
              node("GlobalMaxPool", ["x"], "global_max"), node("GlobalAveragePool", ["x"], "global_avg"),
              node("Flatten", ["x"], "flat", axis=2)]
    return nodes, {"x": x}, ["reducesum", "reducemean", "reducemax", "reducemin", "argmax", "argmin", "global_max",
                             "global_avg", "flat"], initializers


@opsets()
def case_elementwise(opset, rng):
    x = rng.normal(size=(2, 3, 4)).astype(F32)
    positive = rng.uniform(0.5, 2, size=(2, 3, 4)).astype(F32)
    nodes = [node("Sigmoid", ["x"], "sigmoid"), node("Tanh", ["x"], "tanh"), node("LeakyRelu", ["x"], "leaky",
                                                                                   alpha=0.2),
             node("Exp", ["x"], "exp"), node("Log", ["p"], "log"), node("Sqrt", ["p"], "sqrt"),
             node("Abs", ["x"], "abs"), node("Neg", ["x"], "neg"), node("Pow", ["p", "x"], "pow"),
             node("Reciprocal", ["p"], "reciprocal"), node("Ceil", ["x"], "ceil"),
             node("Sub", ["x", "p"], "sub"), node("Identity", ["x"], "identity"),
             node("MatMul", ["x", "m"], "matmul"),
             node("Softmax", ["x"], "softmax", axis=1), node("LogSoftmax", ["x"], "log_softmax", axis=1)]
    outputs = ["sigmoid", "tanh", "leaky", "exp", "log", "sqrt", "abs", "neg", "pow", "reciprocal", "ceil", "sub",
               "identity", "matmul", "softmax", "log_softmax"]
    if opset >= 9:
        nodes += [node("Erf", ["x"], "erf"), node("Where", ["mask", "x", "p"], "where")]
        outputs += ["erf", "where"]
    if opset >= 20:
        nodes.append(node("Gelu", ["x"], "gelu", approximate="tanh"))
        outputs.append("gelu")
    initializers = {"m": rng.normal(size=(4, 2)).astype(F32), "mask": rng.random((3, 4)) > 0.5}
    return nodes, {"x": x, "p": positive}, outputs, initializers


@opsets()
def case_layers(opset, rng):
    """Convolutions, pools and Gemm in their other forms: asymmetric pads, dilations, groups, a transposed
    convolution, ceil mode (opset 10), alpha/beta/transA."""
    x = rng.normal(size=(2, 4, 7, 6)).astype(F32)
    nodes = [node("Conv", ["x", "w"], "asymmetric", pads=[0, 1, 2, 1], dilations=[1, 2], group=2),
             node("ConvTranspose", ["x", "wt", "bt"], "transposed", strides=[2, 2], pads=[1, 1, 1, 1],
                  output_padding=[1, 0]),
             node("MaxPool", ["x"], "max", kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1]),
             node("AveragePool", ["x"], "avg", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             node("GlobalAveragePool", ["x"], "pooled"), node("Flatten", ["pooled"], "features"),
             node("Gemm", ["features", "gw", "gb"], "gemm", alpha=0.5, beta=2.0, transB=1),
             node("Gemm", ["features", "gw_t", "c"], "gemm_t", transA=0, transB=0, beta=0.5)]
    outputs = ["asymmetric", "transposed", "max", "avg", "gemm", "gemm_t"]
    if opset >= 10:
        nodes += [node("MaxPool", ["x"], "max_ceil", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
                  node("AveragePool", ["x"], "avg_ceil", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
                  node("MaxPool", ["x"], "max_dilated", kernel_shape=[2, 2], dilations=[2, 2])]
        outputs += ["max_ceil", "avg_ceil", "max_dilated"]
    initializers = {"w": rng.normal(size=(6, 2, 3, 2)).astype(F32), "wt": rng.normal(size=(4, 3, 3, 3)).astype(F32),
                    "bt": rng.normal(size=3).astype(F32), "gw": rng.normal(size=(5, 4)).astype(F32),
                    "gb": rng.normal(size=5).astype(F32), "gw_t": rng.normal(size=(4, 5)).astype(F32),
                    "c": rng.normal(size=(1,)).astype(F32)}
    return nodes, {"x": x}, outputs, initializers


@opsets()
def case_channel_shuffle(opset, rng):
    """ShuffleNet's channel shuffle: (N, g * c, H, W) -> (N, g, c, H, W) -> swap g and c -> (N, c * g, H, W)."""
    x = rng.normal(size=(2, 6, 3, 3)).astype(F32)
    nodes = [node("Reshape", ["x", "grouped"], "g"), node("Transpose", ["g"], "t", perm=[0, 2, 1, 3, 4]),
             node("Reshape", ["t", "flat"], "y")]
    return nodes, {"x": x}, ["y"], {"grouped": np.array([0, 3, 2, 3, 3], I64), "flat": np.array([0, -1, 3, 3], I64)}


@opsets()
def case_batch_norm(opset, rng):
    x = rng.normal(size=(2, 3, 4, 4)).astype(F32)
    stats = {"scale": rng.uniform(0.5, 1.5, 3), "bias": rng.normal(size=3), "mean": rng.normal(size=3) * 0.1,
             "var": rng.uniform(0.5, 1.5, 3)}
    initializers = {k: v.astype(F32) for k, v in stats.items()}
    extra = {"spatial": 1} if opset < 9 else ({"training_mode": 0} if opset >= 14 else {})
    nodes = [node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], "y", epsilon=1e-3, **extra),
             node("BatchNormalization", ["y", "scale", "bias", "mean", "var"], "shared")]  # statistics used twice
    outputs = ["shared"]
    if opset < 9:  # opset 7's per-activation statistics
        per_position = {f"p{k}": np.broadcast_to(v[:, None, None], (3, 4, 4)).astype(F32) * F32(rng.uniform(0.9, 1.1))
                        for k, v in initializers.items()}
        initializers.update(per_position)
        nodes.append(node("BatchNormalization", ["x", "pscale", "pbias", "pmean", "pvar"], "per_position", spatial=0))
        outputs.append("per_position")
    return nodes, {"x": x}, outputs, initializers


@opsets(12)
def case_constant_forms(opset, rng):
    x = rng.normal(size=(2, 3)).astype(F32)
    nodes = [helper.make_node("Constant", [], ["f"], value_float=2.5),
             helper.make_node("Constant", [], ["fs"], value_floats=[1.0, 2.0, 3.0]),
             helper.make_node("Constant", [], ["shape"], value_ints=[3, 2]),
             node("Mul", ["x", "f"], "a"), node("Add", ["a", "fs"], "b"), node("Reshape", ["b", "shape"], "y")]
    return nodes, {"x": x}, ["y"], {}


@opsets()
def case_computed_gather(opset, rng):
    x = rng.normal(size=(5,)).astype(F32)
    table = rng.normal(size=(5, 3)).astype(F32)
    nodes = [node("ArgMax", ["x"], "best", axis=0, keepdims=0), node("Gather", ["table", "best"], "row", axis=0),
             node("Gather", ["table", "cols"], "cols_out", axis=1)]
    cols = np.array([[2, 0], [-1, 1] if opset >= 11 else [2, 1]], I64)  # negative indices from opset 11
    return nodes, {"x": x, "table": table}, ["row", "cols_out"], {"cols": cols}


@pytest.mark.parametrize("case, opset", [(case, opset) for case, (_, span) in CASES.items() for opset in span])
def test_operator_form_matches_onnxruntime(case, opset, tmp_path):
    nodes, inputs, outputs, initializers = CASES[case][0](opset, np.random.default_rng(opset))
    model = model_at(opset, nodes, inputs, outputs, initializers)
    compare_with_onnxruntime(model, inputs, tmp_path)


def test_lrn_of_even_size_follows_the_onnx_definition():
    """square_sum[c] sums the squares over channels [c - floor((size - 1) / 2), c + ceil((size - 1) / 2)]."""
    x = np.random.default_rng(0).normal(size=(2, 6, 3, 3)).astype(F32)
    size, alpha, beta, bias = 4, 0.8, 0.6, 1.5
    model = model_at(13, [node("LRN", ["x"], "y", size=size, alpha=alpha, beta=beta, bias=bias)], {"x": x}, ["y"])
    squares = np.pad(x.astype(np.float64) ** 2, [(0, 0), ((size - 1) // 2, size // 2), (0, 0), (0, 0)])
    square_sum = sum(squares[:, offset:offset + 6] for offset in range(size))
    expected = x / (bias + alpha / size * square_sum) ** beta
    np.testing.assert_allclose(import_onnx(model)(cs.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_constants_fold_at_import_and_computed_settings_run(tmp_path):
    nodes, inputs, outputs, initializers = case_constant_of_shape(13, np.random.default_rng(0))
    imported = compare_with_onnxruntime(model_at(13, nodes, inputs, outputs, initializers), inputs, tmp_path)
    # The bias from a constant shape is folded into a constant; the ones from Shape(x) run at every call.
    assert step_types(imported) == ["Shape", "ConstantOfShape", "Add", "Mul", "ConstantOfShape"]
    assert "bias" in imported.constants
    nodes, inputs, outputs, initializers = case_tile(13, np.random.default_rng(0))
    imported = compare_with_onnxruntime(model_at(13, nodes, inputs, outputs, initializers), inputs, tmp_path)
    tiles = [imported.get_submodule(path) for path, _, _ in imported.steps if "Tile" in path]
    assert [t.attributes["repeats"] for t in tiles] == [[1, 2, 1, 3], "computed"]
    bigger = np.random.default_rng(1).normal(size=(3, 2, 1, 2)).astype(F32)  # computed repeats follow the input
    assert imported(cs.tensor(bigger))[1].shape == (3, 4, 1, 6)


def test_weights_made_by_the_graph_are_parameters(tmp_path):
    """A convolution whose weight a ConstantOfShape makes (and bias a Constant node) is an nn.Conv2d that trains."""
    nodes = [constant("w_shape", np.array([4, 3, 3, 3], I64)),
             node("ConstantOfShape", ["w_shape"], "conv.weight", value=numpy_helper.from_array(np.array([0.05], F32))),
             constant("conv.bias", np.arange(4, dtype=F32) / 10),
             node("Conv", ["x", "conv.weight", "conv.bias"], "y", pads=[1, 1, 1, 1])]
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 5)).astype(F32)
    imported = compare_with_onnxruntime(model_at(11, nodes, {"x": x}, ["y"]), {"x": x}, tmp_path)
    assert isinstance(imported.conv, nn.Conv2d)
    assert sorted(dict(imported.named_parameters())) == ["conv.bias", "conv.weight"]


# ------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("op, attributes, torch_function", [
    ("Selu", {}, lambda t, x: t.nn.functional.selu(x)),
    ("Softplus", {}, lambda t, x: t.nn.functional.softplus(x)),
    ("Softsign", {}, lambda t, x: t.nn.functional.softsign(x)),
    ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}, lambda t, x: t.nn.functional.hardsigmoid(x)),
    ("HardSwish", {}, lambda t, x: t.nn.functional.hardswish(x)),
    ("LRN", {"size": 3, "alpha": 0.4}, lambda t, x: t.nn.functional.local_response_norm(x, 3, 0.4)),
    ("LRN", {"size": 4, "alpha": 0.4}, lambda t, x: t.nn.functional.local_response_norm(x.flip(1), 4, 0.4).flip(1)),
    ("Resize", {"mode": "cubic"}, lambda t, x: t.nn.functional.interpolate(x, scale_factor=2, mode="bicubic")),
    ("Resize", {"mode": "linear"}, lambda t, x: t.nn.functional.interpolate(x, scale_factor=2, mode="bilinear")),
])
def test_import_side_ops_match_pytorch_in_value_and_gradient(op, attributes, torch_function, tmp_path):
    torch = pytest.importorskip("torch")
    x = (np.random.default_rng(0).normal(size=(2, 5, 4, 4)) * 2).astype(F32)
    scales = {"scales": np.array([1, 1, 2, 2], F32)} if op == "Resize" else {}
    inputs = ["x", "", "scales"] if op == "Resize" else ["x"]
    model = model_at(17, [helper.make_node(op, inputs, ["y"], name="op", **attributes)], {"x": x}, ["y"], scales)
    imported = import_onnx(model)
    check_against_torch(lambda t: imported(t), lambda t: torch_function(torch, t), [x])


def test_import_side_ops_gradients_by_finite_differences(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 3, 3)).astype(F32)
    nodes = [node("PRelu", ["x", "slope"], "p"), node("Max", ["p", "m"], "mx"), node("Tile", ["mx", "reps"], "t"),
             node("InstanceNormalization", ["t", "norm.weight", "norm.bias"], "n"), node("Split", ["n"], ["a", "b"],
                                                                                        axis=3, split=[2, 4]),
             node("Mean", ["a", "a"], "y")]
    initializers = {"slope": np.full((3, 1, 1), 0.2, F32), "m": rng.normal(size=(3, 1)).astype(F32),
                    "reps": np.array([1, 1, 1, 2], I64), "norm.weight": rng.uniform(0.5, 1.5, 3).astype(F32),
                    "norm.bias": rng.normal(size=3).astype(F32)}
    imported = compare_with_onnxruntime(model_at(12, nodes, {"x": x}, ["y"], initializers), {"x": x}, tmp_path)
    imported.double()
    check_gradients(lambda t: imported(t), [x.astype(np.float64)], rtol=1e-4, atol=1e-6)
    # and the import-side parameters learn: PRelu's slope, the instance norm's scale and shift
    out = imported(cs.tensor(x.astype(np.float64)))
    (out * out).sum().backward()
    parameters = dict(imported.named_parameters())
    assert all(parameters[name].grad is not None for name in ("slope", "norm.weight", "norm.bias"))
