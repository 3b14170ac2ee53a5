"""Write ONNX files in the style of the ONNX model zoo's classics, with onnx.helper alone: files that
convstack did not write, for the README's interop section. The weights are random (He), as nothing
is downloaded; the layout, names and operator forms are the zoo's.

``squeezenet1.1``: the Caffe2 conversion's style: opset 9 (IR 4), input ``data_0``, weights named
``conv1_w``, ``fire2/squeeze1x1_w`` ..., ceil-mode max pools written as asymmetric pads
(``ceil_mode`` arrived in opset 10), ``Dropout`` with its ratio attribute, ``GlobalAveragePool``,
``Reshape`` and ``Softmax``; the biases are ``ConstantOfShape`` nodes (zeros, as an exporter writes
a freshly initialised layer).

``mnist``: the CNTK export's style (the zoo's MNIST-8): opset 8 (IR 3, initializers listed as graph
inputs too), ``Conv`` with ``auto_pad`` SAME_UPPER, biases as separate ``Add`` s of (C, 1, 1)
initializers, the classifier's weight stored 4-D and reshaped at run time, then ``MatMul`` and
``Add``. Its flatten reshapes to (-1, 256) where CNTK wrote (1, 256), so batches run.

    python3 scripts/zoo_style_onnx.py squeezenet1.1 squeezenet1.1.onnx
    python3 scripts/zoo_style_onnx.py mnist mnist-8.onnx
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


def squeezenet(classes: int, seed: int, size: int = 224) -> onnx.ModelProto:
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
    inputs = [helper.make_tensor_value_info("data_0", 1, [1, 3, size, size])]
    outputs = [helper.make_tensor_value_info("softmaxout_1", 1, [1, classes])]
    graph = helper.make_graph(w.nodes, "squeezenet1.1", inputs, outputs, w.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)], producer_name="zoo-style Caffe2")
    model.ir_version = 4
    onnx.checker.check_model(model)
    return model


def mnist(seed: int) -> onnx.ModelProto:
    rng = numpy.random.default_rng(seed)
    nodes, initializers = [], {}

    def weight(name, shape, fan_in):
        initializers[name] = (rng.normal(size=shape) * numpy.sqrt(2 / fan_in)).astype(numpy.float32)
        return name

    def node(op_type, inputs, output, **attributes):
        nodes.append(helper.make_node(op_type, inputs, [output], name=output.replace("_Output_0", ""), **attributes))
        return output

    x = "Input3"
    layers = ((28, 5, 30, 32, 66, 8, 1, 2), (110, 87, 112, 114, 160, 16, 8, 3))  # CNTK's node and parameter numbers
    for conv, parameter, plus, relu, pool, out, cin, size in layers:
        w = weight(f"Parameter{parameter}", (out, cin, 5, 5), cin * 25)
        x = node("Conv", [x, w], f"Convolution{conv}_Output_0", kernel_shape=[5, 5], strides=[1, 1],
                 auto_pad="SAME_UPPER", dilations=[1, 1], group=1)
        initializers[f"Parameter{parameter + 1}"] = numpy.zeros((out, 1, 1), numpy.float32)
        x = node("Add", [x, f"Parameter{parameter + 1}"], f"Plus{plus}_Output_0")
        x = node("Relu", [x], f"ReLU{relu}_Output_0")
        x = node("MaxPool", [x], f"Pooling{pool}_Output_0", kernel_shape=[size, size], strides=[size, size],
                 pads=[0, 0, 0, 0], auto_pad="NOTSET")
    initializers["Pooling160_Output_0_reshape0_shape"] = numpy.array([-1, 256], numpy.int64)
    x = node("Reshape", [x, "Pooling160_Output_0_reshape0_shape"], "Pooling160_Output_0_reshape0")
    weight("Parameter193", (16, 4, 4, 10), 256)
    initializers["Parameter193_reshape1_shape"] = numpy.array([256, 10], numpy.int64)
    classifier = node("Reshape", ["Parameter193", "Parameter193_reshape1_shape"], "Parameter193_reshape1")
    x = node("MatMul", [x, classifier], "Times212_Output_0")
    initializers["Parameter194"] = numpy.zeros((1, 10), numpy.float32)
    node("Add", [x, "Parameter194"], "Plus214_Output_0")
    inputs = [helper.make_tensor_value_info("Input3", 1, [1, 1, 28, 28])]
    inputs += [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape)
               for name, array in initializers.items()]
    graph = helper.make_graph(nodes, "CNTKGraph", inputs, [helper.make_tensor_value_info("Plus214_Output_0", 1,
                                                                                          [1, 10])],
                              [numpy_helper.from_array(array, name) for name, array in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)], producer_name="zoo-style CNTK")
    model.ir_version = 3
    onnx.checker.check_model(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=("squeezenet1.1", "mnist"))
    parser.add_argument("path")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = squeezenet(1000, args.seed) if args.model == "squeezenet1.1" else mnist(args.seed)
    onnx.save(model, args.path)
    weights = sum(int(numpy.prod(init.dims)) for init in model.graph.initializer if init.data_type == 1)
    print(f"wrote {args.path}: {model.producer_name}, opset {model.opset_import[0].version}, "
          f"{len(model.graph.node)} nodes, {weights:,} weights")


if __name__ == "__main__":
    main()
