"""ONNX import of graphs convstack did not write: a PyTorch model exported by torch.onnx (names, outputs,
fine-tuning), hand-built graphs with the operators' other forms (older opsets, asymmetric pads,
attributes convstack never writes) checked against onnxruntime, and the errors.
"""

import numpy as np
import pytest

import convstack as cs
from convstack import nn

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from tests.io.test_onnx_export import run_onnxruntime  # noqa: E402

from convstack.io import GraphModule, import_onnx  # noqa: E402


def make_model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def value(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def compare_with_onnxruntime(model, tmp_path, **inputs):
    path = tmp_path / "g.onnx"
    onnx.save(model, path)
    theirs = run_onnxruntime(path, {k: v for k, v in inputs.items()})
    imported = import_onnx(path)
    ours = imported(*[cs.tensor(inputs[name]) for name in imported.input_names])
    ours = ours if isinstance(ours, tuple) else (ours,)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b, atol=1e-5, rtol=1e-5)
    return imported


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.onnx's TorchScript exporter (no onnxscript here)
def test_pytorch_exported_model_imports_with_its_names(tmp_path):
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = tnn.Conv2d(3, 8, 3, padding=1, bias=False), tnn.BatchNorm2d(8)
            self.conv2 = tnn.Conv2d(8, 8, 3, padding=1, groups=2)
            self.pool = tnn.MaxPool2d(3, 2, 1, ceil_mode=True)
            self.avg = tnn.AvgPool2d(3, 2, 1, count_include_pad=False)
            self.up = tnn.Upsample(scale_factor=2, mode="bilinear")
            self.fc = tnn.Linear(16 * 4 * 4, 5)

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = y + self.conv2(y)
            z = self.up(torch.cat([self.pool(y), self.avg(y)], 1))[:, :, ::2, ::2]
            return torch.softmax(self.fc(z.reshape(z.size(0), -1)), dim=1)  # Shape -> Gather -> Reshape

    net = Net().eval()
    with torch.no_grad():
        net.bn1.running_mean.normal_()
        net.bn1.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 7, 7)
    path = tmp_path / "torch.onnx"
    torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=17, do_constant_folding=False,
                      input_names=["input"], dynamic_axes={"input": {0: "N"}})
    model = import_onnx(path)
    assert isinstance(model, GraphModule) and isinstance(model.conv1, nn.Conv2d) and isinstance(model.fc, nn.Linear)
    expected = net(x).detach().numpy()
    np.testing.assert_allclose(model(cs.tensor(x.numpy())).detach().numpy(), expected, atol=1e-6)
    more = torch.randn(3, 3, 7, 7)  # the batch stays free through Shape -> Reshape
    np.testing.assert_allclose(model(cs.tensor(more.numpy())).detach().numpy(), net(more).detach().numpy(), atol=1e-6)
    # PyTorch's state dict loads strictly: the same names and layouts.
    model.load_state_dict({k: v.numpy() for k, v in net.state_dict().items()}, strict=True)
    # And the imported model trains: a gradient reaches the first convolution.
    model.train()
    loss = model(cs.tensor(x.numpy())).log().mean()
    loss.backward()
    assert model.conv1.weight.grad is not None and np.abs(model.conv1.weight.grad.numpy()).sum() > 0


def test_graph_with_other_operator_forms(tmp_path, rng):
    f32 = np.float32
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv/asymmetric", pads=[0, 1, 2, 1]),
        helper.make_node("MaxPool", ["c"], ["p"], name="wide pool", kernel_shape=[2, 2], pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("AveragePool", ["c"], ["a"], name="avg", kernel_shape=[3, 3], pads=[0, 0, 2, 2],
                         count_include_pad=1),
        helper.make_node("Pad", ["a", "pads"], ["a_padded"], name="edge", mode="edge"),
        helper.make_node("Constant", [], ["axes"], name="k", value=numpy_helper.from_array(np.array([1], np.int64))),
        helper.make_node("ReduceMean", ["p"], ["m"], name="mean", axes=[2, 3], keepdims=0),
        helper.make_node("Unsqueeze", ["m", "axes"], ["m1"], name="unsqueeze"),
        helper.make_node("Gemm", ["m", "gw", "gb"], ["g"], name="gemm", transB=0, alpha=0.5, beta=2.0),
        helper.make_node("Gemm", ["m", "lw"], ["lin"], name="linear", transB=0),
        helper.make_node("Clip", ["g", "lo", ""], ["clipped"], name="clip"),
        helper.make_node("Erf", ["clipped"], ["e"], name="erf"),
        helper.make_node("Transpose", ["e"], ["t"], name="transpose"),
        helper.make_node("Expand", ["m1", "shape"], ["ex"], name="expand"),
        helper.make_node("Gather", ["ex", "index"], ["gathered"], name="gather", axis=1),
        helper.make_node("Flatten", ["a_padded"], ["flat"], name="flatten", axis=2),
        helper.make_node("ArgMax", ["flat"], ["arg"], name="argmax", axis=1, keepdims=0),
        helper.make_node("Cast", ["arg"], ["arg_float"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Resize", ["c", "", "", "sizes"], ["r"], name="resize", mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Where", ["mask", "lin", "g"], ["w2"], name="where"),
    ]
    initializers = [
        ("w", rng.normal(size=(4, 2, 3, 2)).astype(f32)), ("pads", np.array([0, 0, 1, 0, 0, 0, 0, 2], np.int64)),
        ("gw", rng.normal(size=(4, 3)).astype(f32)), ("gb", rng.normal(size=(3,)).astype(f32)),
        ("lw", rng.normal(size=(4, 3)).astype(f32)), ("lo", np.array(-0.5, f32)),
        ("shape", np.array([2, 3, 4], np.int64)), ("index", np.array(2, np.int64)),
        ("sizes", np.array([2, 4, 10, 12], np.int64)), ("mask", np.array([True, False, True])),
    ]
    outputs = [value(n, None) for n in ("t", "gathered", "arg_float", "r", "w2")]
    model = make_model(nodes, [value("x", [2, 2, 6, 7])], outputs, initializers)
    imported = compare_with_onnxruntime(model, tmp_path, x=rng.normal(size=(2, 2, 6, 7)).astype(f32))
    assert isinstance(imported.get_submodule("linear"), nn.Linear)  # Gemm with plain alpha and beta: a layer
    assert isinstance(imported.get_submodule("conv.asymmetric"), nn.Conv2d)  # node names split on '/' and '.'
    assert isinstance(imported.gw, nn.Parameter) and "lo" not in dict(imported.named_parameters())


def test_opset_11_forms(tmp_path, rng):
    nodes = [
        helper.make_node("Softmax", ["x"], ["s"], name="softmax", axis=1),  # over the flattened trailing dims
        helper.make_node("Squeeze", ["s"], ["q"], name="squeeze", axes=[1]),
        helper.make_node("Unsqueeze", ["q"], ["u"], name="unsqueeze", axes=[0]),
        helper.make_node("Clip", ["u", "lo", "hi"], ["c"], name="clip"),
        helper.make_node("ReduceSum", ["c"], ["r"], name="sum", axes=[3], keepdims=1),
    ]
    model = make_model(nodes, [value("x", [2, 1, 3, 4])], [value("r", None)],
                       [("lo", np.array(0.05, np.float32)), ("hi", np.array(0.2, np.float32))], opset=11)
    compare_with_onnxruntime(model, tmp_path, x=rng.normal(size=(2, 1, 3, 4)).astype(np.float32))


@pytest.mark.parametrize("node, message", [
    (helper.make_node("Foo", ["x"], ["y"], name="bar"), "import_onnx: unsupported operator 'Foo' in node 'bar'"),
    (helper.make_node("Hardmax", ["x"], ["y"], name="h"), "import_onnx: unsupported operator 'Hardmax' in node 'h'"),
    (helper.make_node("Resize", ["x", "", "scales"], ["y"], name="r", mode="area"),
     "import_onnx: operator 'Resize' in node 'r': mode 'area' is not supported (nearest, linear and cubic are)"),
    (helper.make_node("Resize", ["x", "", "scales"], ["y"], name="r",
                      coordinate_transformation_mode="tf_crop_and_resize"),
     "import_onnx: operator 'Resize' in node 'r': coordinate_transformation_mode 'tf_crop_and_resize' is not "
     "supported"),
    (helper.make_node("ConvTranspose", ["x", "wc"], ["y"], name="c", auto_pad="SAME_UPPER"),
     "import_onnx: operator 'ConvTranspose' in node 'c': auto_pad 'SAME_UPPER' is not supported here"),
    (helper.make_node("Pad", ["x"], ["y"], name="p"),
     "import_onnx: operator 'Pad' in node 'p': the pads input is missing"),
    (helper.make_node("Dropout", ["x", "", "yes"], ["y"], name="d"),
     "import_onnx: operator 'Dropout' in node 'd': training_mode=1 is not supported"),
])
def test_import_errors_name_the_operator_and_node(node, message):
    initializers = [("scales", np.ones(4, np.float32)), ("wc", np.ones((2, 2, 1, 1), np.float32)),
                    ("yes", np.array(True))]
    graph = helper.make_graph([node], "g", [value("x", [1, 2, 3, 3])], [value("y", None)],
                              initializer=[numpy_helper.from_array(v, k) for k, v in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_onnx(model)


def test_custom_domain_and_unsupported_outputs():
    custom = helper.make_node("Gelu", ["x"], ["y"], name="g", domain="com.microsoft")
    graph = helper.make_graph([custom], "g", [value("x", [1, 2])], [value("y", None)])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    with pytest.raises(ValueError, match="unsupported operator 'com.microsoft.Gelu' in node 'g'"):
        import_onnx(model)
    pool = helper.make_node("MaxPool", ["x"], ["y", "indices"], name="mp", kernel_shape=[2, 2])
    graph = helper.make_graph([pool], "g", [value("x", [1, 2, 4, 4])], [value("y", None), value("indices", None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ValueError, match="the Indices output of MaxPool node 'mp' is not supported"):
        import_onnx(model)


def test_graph_module_checks_its_inputs(tmp_path):
    from convstack.io import export_onnx

    export_onnx(nn.Linear(3, 2), cs.randn(1, 3), tmp_path / "m.onnx")
    model = import_onnx(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"GraphModule: expected 1 inputs \(input\), received 2"):
        model(cs.randn(1, 3), cs.randn(1, 3))
    assert "nodes=1" in repr(model)
