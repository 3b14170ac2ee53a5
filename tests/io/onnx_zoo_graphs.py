"""The classic CNN zoo written as ONNX files the way other tools exported them: the ONNX model zoo's
Caffe2 conversions (names like ``conv1_w``, ``Sum`` for residual additions, flattening by ``Reshape``
to a constant shape, ceil-mode pooling as asymmetric pads before opset 10), MXNet's (``Flatten``,
``vgg0_conv0_weight``) and torch.onnx's (``features.0.weight``, the flattened size computed by
``Shape`` -> ``Gather`` -> ``Unsqueeze`` -> ``Concat``, a free batch size).

Architectures are the real ones (every layer, block and branch of AlexNet ... MobileNetV2), at small
widths and input sizes so that a test runs in a second. Every operator is written in the form of
the file's opset: ``Clip``, ``Pad``, ``Split``, ``Unsqueeze``, ``Dropout``, ``ReduceMean`` take their
settings as attributes in old opsets and as inputs in new ones. Some biases are made by
``ConstantOfShape`` (opset 9 on) or ``Constant`` nodes, as some exporters write weights.
"""

from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper
from tests.io.onnx_graphs import model_at

F32, I64 = np.float32, np.int64


class ZooGraph:
    """An ONNX graph under construction, at ``opset``, in an exporter's ``style`` ('caffe2', 'mxnet', 'torch').

    Every method adds the nodes of one layer and returns the name of its output; ``shapes`` holds
    each value's (C, H, W), without the batch.
    """

    def __init__(self, opset: int, style: str, rng, size: int, channels: int = 3, classes: int = 10):
        self.opset, self.style, self.rng, self.classes = opset, style, rng, classes
        self.nodes, self.initializers = [], {}
        self.input = {"caffe2": "data_0", "mxnet": "data", "torch": "input"}[style]
        self.shapes = {self.input: (channels, size, size)}
        self.counts = {}
        self.biases = 0

    # ------------------------------------------------------------------------------ bookkeeping
    def fresh(self, kind: str) -> str:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return f"{kind}{self.counts[kind]}"

    def param_name(self, layer: str, what: str) -> str:
        """``conv1_w`` (Caffe2), ``conv1_weight`` (MXNet), ``conv1.weight`` (torch.onnx)."""
        short = {"weight": "w", "bias": "b", "scale": "s", "mean": "rm", "var": "riv"}
        return {"caffe2": f"{layer}_{short[what]}", "mxnet": f"{layer}_{what}", "torch": f"{layer}.{what}"}[self.style]

    def op(self, op_type: str, inputs, shape, outputs=None, **attributes) -> str:
        outputs = outputs or [self.fresh(op_type.lower() + "_")]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=f"{op_type}_{outputs[0]}", **attributes))
        for output in outputs:
            self.shapes[output] = shape
        return outputs[0]

    def constant(self, name: str, array) -> str:
        self.initializers[name] = np.asarray(array)
        return name

    def constant_node(self, name: str, array) -> str:
        self.nodes.append(helper.make_node("Constant", [], [name], name=f"Constant_{name}",
                                           value=numpy_helper.from_array(np.asarray(array))))
        return name

    def bias(self, name: str, channels: int) -> str:
        """A bias: an initializer, or every third one made in the graph (ConstantOfShape from opset 9, else a
        Constant node) with one value, as exporters that write weights as graph constants do."""
        self.biases += 1
        value = F32(self.rng.normal() * 0.1)
        if self.biases % 3:
            return self.constant(name, (self.rng.normal(size=channels) * 0.1).astype(F32))
        if self.opset >= 9:
            shape = self.constant_node(f"{name}_shape", np.array([channels], I64))
            self.nodes.append(helper.make_node("ConstantOfShape", [shape], [name], name=f"ConstantOfShape_{name}",
                                               value=numpy_helper.from_array(np.array([value], F32))))
            return name
        return self.constant_node(name, np.full(channels, value, F32))

    # ----------------------------------------------------------------------------------- layers
    def conv(self, x, out: int, kernel: int, stride: int = 1, pad: int = 0, group: int = 1, bias: bool = True,
             name: str | None = None) -> str:
        name = name or self.fresh("conv")
        channels, height, width = self.shapes[x]
        fan_in = channels // group * kernel * kernel
        weight = (self.rng.normal(size=(out, channels // group, kernel, kernel)) * np.sqrt(2 / fan_in)).astype(F32)
        inputs = [x, self.constant(self.param_name(name, "weight"), weight)]
        if bias:
            inputs.append(self.bias(self.param_name(name, "bias"), out))
        size = ((height + 2 * pad - kernel) // stride + 1, (width + 2 * pad - kernel) // stride + 1)
        return self.op("Conv", inputs, (out, *size), kernel_shape=[kernel, kernel], strides=[stride, stride],
                       pads=[pad] * 4, group=group)

    def bn(self, x, name: str | None = None) -> str:
        name = name or self.fresh("bn")
        channels = self.shapes[x][0]
        stats = {"scale": self.rng.uniform(0.5, 1.5, channels), "bias": self.rng.normal(size=channels) * 0.1,
                 "mean": self.rng.normal(size=channels) * 0.1, "var": self.rng.uniform(0.5, 1.5, channels)}
        inputs = [x] + [self.constant(self.param_name(name, k), v.astype(F32)) for k, v in stats.items()]
        extra = {"spatial": 1} if self.opset < 9 else {}
        return self.op("BatchNormalization", inputs, self.shapes[x], epsilon=1e-5, momentum=0.9, **extra)

    def relu(self, x) -> str:
        return self.op("Relu", [x], self.shapes[x])

    def relu6(self, x) -> str:
        """ReLU6 as ``Clip``: bounds as attributes before opset 11, as inputs after."""
        if self.opset < 11:
            return self.op("Clip", [x], self.shapes[x], min=0.0, max=6.0)
        low = self.constant_node(self.fresh("clip_min"), np.array(0, F32))
        high = self.constant_node(self.fresh("clip_max"), np.array(6, F32))
        return self.op("Clip", [x, low, high], self.shapes[x])

    def conv_bn_relu(self, x, out: int, kernel: int, stride: int = 1, pad: int = 0, group: int = 1,
                     relu: str | None = "relu") -> str:
        y = self.bn(self.conv(x, out, kernel, stride, pad, group, bias=False))
        return y if relu is None else getattr(self, relu)(y)

    def _pool(self, op_type, x, kernel, stride, pad, ceil, **extra) -> str:
        channels, height, width = self.shapes[x]

        def out(n, rounding):
            return rounding(n + 2 * pad - kernel, stride) + 1

        size = (out(height, _ceil_div if ceil else _floor_div), out(width, _ceil_div if ceil else _floor_div))
        pads = [pad] * 4
        if ceil and self.opset >= 10:
            extra["ceil_mode"] = 1
        elif ceil:  # before opset 10 converters widened the far pads to reach the ceil-mode size
            pads = [pad, pad] + [(s - 1) * stride + kernel - n - pad for s, n in zip(size, (height, width))]
        return self.op(op_type, [x], (channels, *size), kernel_shape=[kernel, kernel], strides=[stride, stride],
                       pads=pads, **extra)

    def max_pool(self, x, kernel: int, stride: int, pad: int = 0, ceil: bool = False) -> str:
        return self._pool("MaxPool", x, kernel, stride, pad, ceil)

    def avg_pool(self, x, kernel: int, stride: int, pad: int = 0, ceil: bool = False) -> str:
        return self._pool("AveragePool", x, kernel, stride, pad, ceil)

    def global_avg(self, x) -> str:
        if self.style == "torch" and self.opset >= 11:  # torch.onnx writes adaptive_avg_pool2d((1, 1)) as a mean
            return self._axes_op("ReduceMean", x, [2, 3], 18, (self.shapes[x][0], 1, 1), keepdims=1)
        return self.op("GlobalAveragePool", [x], (self.shapes[x][0], 1, 1))

    def lrn(self, x, size: int = 5) -> str:
        return self.op("LRN", [x], self.shapes[x], size=size, alpha=1e-4, beta=0.75, bias=1.0)

    def concat(self, xs) -> str:
        channels = sum(self.shapes[x][0] for x in xs)
        return self.op("Concat", list(xs), (channels, *self.shapes[xs[0]][1:]), axis=1)

    def add(self, a, b) -> str:
        return self.op("Sum" if self.style == "caffe2" else "Add", [a, b], self.shapes[a])

    def dropout(self, x, ratio: float = 0.5) -> str:
        if self.opset < 12:
            return self.op("Dropout", [x], self.shapes[x], ratio=ratio)
        return self.op("Dropout", [x, self.constant(self.fresh("ratio"), np.array(ratio, F32))], self.shapes[x])

    def _axes_op(self, op_type, x, axes, until, shape, **attributes) -> str:
        """An op with ``axes`` as an attribute (opsets below ``until``) or a constant input."""
        if self.opset < until:
            return self.op(op_type, [x], shape, axes=axes, **attributes)
        return self.op(op_type, [x, self.constant(self.fresh("axes"), np.array(axes, I64))], shape, **attributes)

    def flatten(self, x) -> str:
        """Caffe2: ``Reshape`` to a constant (0, -1); MXNet: ``Flatten``; torch: ``x.view(x.size(0), -1)``."""
        features = int(np.prod(self.shapes[x]))
        if self.style == "caffe2":
            return self.op("Reshape", [x, self.constant(self.fresh("shape"), np.array([0, -1], I64))], (features,))
        if self.style == "mxnet":
            return self.op("Flatten", [x], (features,), axis=1)
        return self.op("Reshape", [x, self._computed_shape(x, [0], [-1])], (features,))

    def _computed_shape(self, x, kept_axes, tail) -> str:
        """torch.onnx's target shape: ``x.size(a)`` for each kept axis, then the constants of ``tail``."""
        shape = self.op("Shape", [x], None)
        parts = []
        for axis in kept_axes:
            index = self.constant(self.fresh("index"), np.array(axis, I64))
            size = self.op("Gather", [shape, index], None, axis=0)
            parts.append(self._axes_op("Unsqueeze", size, [0], 13, None))
        parts.append(self.constant(self.fresh("tail"), np.array(tail, I64)))
        return self.op("Concat", parts, None, axis=0)

    def gemm(self, x, out: int, name: str | None = None) -> str:
        name = name or self.fresh("fc")
        features = self.shapes[x][0]
        weight = (self.rng.normal(size=(out, features)) * np.sqrt(1 / features)).astype(F32)
        inputs = [x, self.constant(self.param_name(name, "weight"), weight), self.bias(self.param_name(name, "bias"),
                                                                                      out)]
        return self.op("Gemm", inputs, (out,), alpha=1.0, beta=1.0, transB=1)

    def softmax(self, x) -> str:
        return self.op("Softmax", [x], self.shapes[x], axis=1)

    def channel_shuffle(self, x, groups: int) -> str:
        """(N, g * c, H, W) -> (N, g, c, H, W) -> (N, c, g, H, W) -> (N, c * g, H, W); Caffe2 with constant
        shapes, torch.onnx with the sizes read from ``Shape`` at run time."""
        channels, height, width = self.shapes[x]
        if self.style == "torch":
            grouped = self._computed_shape(x, [0], [groups, channels // groups, height, width])
            flat = self._computed_shape(x, [0], [-1, height, width])
        else:
            grouped = self.constant(self.fresh("shape"), np.array([0, groups, channels // groups, height, width], I64))
            flat = self.constant(self.fresh("shape"), np.array([0, -1, height, width], I64))
        y = self.op("Reshape", [x, grouped], None)
        y = self.op("Transpose", [y], None, perm=[0, 2, 1, 3, 4])
        return self.op("Reshape", [y, flat], self.shapes[x])

    def split(self, x, sizes) -> list:
        """Channels split in ``sizes``: ``split`` an attribute before opset 13, an input after."""
        outputs = [self.fresh("split_") for _ in sizes]
        inputs = [x] if self.opset < 13 else [x, self.constant(self.fresh("sizes"), np.array(sizes, I64))]
        extra = {"split": list(sizes)} if self.opset < 13 else {}
        self.nodes.append(helper.make_node("Split", inputs, outputs, name=f"Split_{outputs[0]}", axis=1, **extra))
        for output, size in zip(outputs, sizes):
            self.shapes[output] = (size, *self.shapes[x][1:])
        return outputs

    def pad(self, x, amount: int) -> str:
        """Zero padding of H and W: pads as an attribute before opset 11, as an input after."""
        channels, height, width = self.shapes[x]
        shape = (channels, height + 2 * amount, width + 2 * amount)
        pads = [0, 0, amount, amount, 0, 0, amount, amount]
        if self.opset < 11:
            return self.op("Pad", [x], shape, pads=pads, mode="constant", value=0.0)
        return self.op("Pad", [x, self.constant(self.fresh("pads"), np.array(pads, I64))], shape, mode="constant")

    def classifier(self, x, softmax: bool = True) -> list:
        """The usual end: logits (and probabilities, as the zoo's files output)."""
        logits = self.gemm(self.flatten(x), self.classes)
        return [logits, self.softmax(logits)] if softmax else [logits]

    def build(self, outputs, batch: int = 2):
        """The model and an example input of ``batch`` images (a free batch size in torch.onnx's files)."""
        example = self.rng.normal(size=(batch, *self.shapes[self.input])).astype(F32)
        free = "N" if self.style == "torch" else None
        model = model_at(self.opset, self.nodes, {self.input: example}, outputs, self.initializers, batch=free)
        return model, {self.input: example}


def _floor_div(a, b):
    return a // b


def _ceil_div(a, b):
    return -(-a // b)
