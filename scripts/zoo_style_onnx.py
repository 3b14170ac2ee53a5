"""Write SqueezeNet 1.1 as an ONNX file in the style of the ONNX model zoo's Caffe2 conversions, with
onnx.helper: opset 9 (IR 4), input ``data_0``, weights named ``conv1_w``, ``fire2/squeeze1x1_w`` ...,
ceil-mode max pools written as asymmetric pads (``ceil_mode`` arrived in opset 10), ``Dropout`` with
its ratio attribute, ``GlobalAveragePool`` then ``Softmax``; the biases are ``ConstantOfShape``
nodes (zeros, as an exporter writes a freshly initialised layer), the weights He-random. A file that
convstack did not write, for the README's interop section.

    python3 scripts/zoo_style_onnx.py squeezenet1.1.onnx [--classes 1000] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy
import onnx
from onnx import helper, numpy_helper

FIRES = [(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)]  # squeeze, expand
POOLS_AFTER = {"fire3", "fire5"}


class Writer:
    def __init__(self, rng):
        self.rng, self.nodes, self.initializers, self.channels = rng, [], [], {"data_0": 3}

    def node(self, op_type, inputs, output, **attributes):
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attributes))
        return output

    def conv(self, x, name, out, kernel, stride=1, pad=0):
        fan_in = self.channels[x] * kernel * kernel
        weight = self.rng.normal(size=(out, self.channels[x], kernel, kernel)) * numpy.sqrt(2 / fan_in)
        self.initializers.append(numpy_helper.from_array(weight.astype(numpy.float32), f"{name}_w"))
        shape = self.node("Constant", [], f"{name}_b_shape",
                          value=numpy_helper.from_array(numpy.array([out], numpy.int64)))
        self.node("ConstantOfShape", [shape], f"{name}_b")
        y = self.node("Conv", [x, f"{name}_w", f"{name}_b"], name, kernel_shape=[kernel, kernel],
                      strides=[stride, stride], pads=[pad] * 4)
        self.channels[y] = out
        return self.relu(y)

    def relu(self, x):
        y = self.node("Relu", [x], f"{x}_relu")
        self.channels[y] = self.channels[x]
        return y

    def ceil_max_pool(self, x, name):
        # 3x3 stride 2 in ceil mode; without ceil_mode, one more pad after reaches the same size
        y = self.node("MaxPool", [x], name, kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1])
        self.channels[y] = self.channels[x]
        return y

    def fire(self, x, name, squeeze, expand):
        s = self.conv(x, f"{name}/squeeze1x1", squeeze, 1)
        branches = [self.conv(s, f"{name}/expand1x1", expand, 1), self.conv(s, f"{name}/expand3x3", expand, 3, 1, 1)]
        y = self.node("Concat", branches, f"{name}/concat", axis=1)
        self.channels[y] = 2 * expand
        return y


def squeezenet(classes: int, seed: int) -> onnx.ModelProto:
    w = Writer(numpy.random.default_rng(seed))
    x = w.ceil_max_pool(w.conv("data_0", "conv1", 64, 3, 2), "pool1")
    for index, (squeeze, expand) in enumerate(FIRES, start=2):
        x = w.fire(x, f"fire{index}", squeeze, expand)
        if f"fire{index}" in POOLS_AFTER:
            x = w.ceil_max_pool(x, f"pool{index}")
    x = w.node("Dropout", [x], "drop9", ratio=0.5)
    w.channels[x] = 512
    x = w.node("GlobalAveragePool", [w.conv(x, "conv10", classes, 1)], "pool10")
    x = w.node("Reshape", [x, "flat_shape"], "flat10")
    w.initializers.append(numpy_helper.from_array(numpy.array([0, -1], numpy.int64), "flat_shape"))
    w.node("Softmax", [x], "softmaxout_1", axis=1)
    graph = helper.make_graph(w.nodes, "squeezenet1.1", [helper.make_tensor_value_info("data_0", 1, [1, 3, 224, 224])],
                              [helper.make_tensor_value_info("softmaxout_1", 1, [1, classes])], w.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)], producer_name="zoo-style-caffe2")
    model.ir_version = 4
    onnx.checker.check_model(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = squeezenet(args.classes, args.seed)
    onnx.save(model, args.path)
    weights = sum(int(numpy.prod(init.dims)) for init in model.graph.initializer)
    print(f"wrote {args.path}: SqueezeNet 1.1 in the ONNX model zoo's Caffe2 style, opset 9, "
          f"{len(model.graph.node)} nodes, {weights:,} weights")


if __name__ == "__main__":
    main()
