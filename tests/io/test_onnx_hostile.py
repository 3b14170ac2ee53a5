"""Hostile ONNX files: whatever a file holds, import_onnx ends in OnnxImportError naming it (issue 15, item 1).

Random bytes, truncated and bit-flipped models, tensors whose dims promise more than their
data (or than memory), external data pointing outside the model's folder, unknown operators,
values read before they are made, values made twice, cycles.
"""

import numpy as np
import pytest

import convstack as cs
from convstack import backend, nn

onnx = pytest.importorskip("onnx")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from convstack.io import export_onnx, import_onnx  # noqa: E402
from convstack.io.onnx_import_checks import OnnxImportError  # noqa: E402


def value(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def model_of(nodes, initializers=(), inputs=("x",), outputs=("y",)):
    graph = helper.make_graph(list(nodes), "hostile", [value(n, [1, 3]) for n in inputs],
                              [value(n, None) for n in outputs], initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def refused(source, *fragments) -> str:
    with pytest.raises(OnnxImportError) as caught:
        import_onnx(source)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A convstack CNN exported to ONNX (a few KB): the file the damage below starts from."""
    cs.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3))
    path = tmp_path_factory.mktemp("onnx") / "small.onnx"
    export_onnx(model.eval(), cs.randn(1, 1, 6, 6), path)
    return path


# ----------------------------------------------------------------------------- files
def test_random_bytes(tmp_path):
    path = tmp_path / "noise.onnx"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    refused(path, f"{path}: not an ONNX model (")


def test_truncated_files(small_model, tmp_path):
    blob = small_model.read_bytes()
    path = tmp_path / "cut.onnx"
    for length in (1, 10, len(blob) // 2, len(blob) - 3):
        path.write_bytes(blob[:length])
        refused(path, str(path))


def test_missing_file_and_folder(tmp_path):
    refused(tmp_path / "nowhere.onnx", "nowhere.onnx: cannot read the ONNX file")
    refused(tmp_path, f"{tmp_path}: not an ONNX model")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_models_import_or_raise_naming_the_file(small_model, tmp_path, data):
    blob = bytearray(small_model.read_bytes())
    for _ in range(data.draw(st.integers(1, 6), label="flips")):
        blob[data.draw(st.integers(0, len(blob) - 1), label="position")] ^= data.draw(st.integers(1, 255), label="mask")
    if data.draw(st.booleans(), label="cut"):
        blob = blob[: data.draw(st.integers(0, len(blob)), label="length")]
    path = tmp_path / "damaged.onnx"
    path.write_bytes(bytes(blob))
    try:
        import_onnx(path)
    except (OnnxImportError, MemoryError) as error:  # MemoryError: a size refused by check_allocation
        assert str(path) in str(error)


# ----------------------------------------------------------------------------- tensors
def raw_tensor(name, dims, raw=b"", data_type=TensorProto.FLOAT):
    tensor = TensorProto(name=name, data_type=data_type, dims=dims)
    tensor.raw_data = raw
    return tensor


@pytest.mark.parametrize("tensor,fragment", [
    (raw_tensor("w", [2**40, 2**40]), "initializer 'w': dims [1099511627776, 1099511627776] of float32 make "
                                      "4,835,703,278,458,516,698,824,704 bytes, its data holds 0"),
    (raw_tensor("w", [3], b"\0" * 8), "initializer 'w': dims [3] of float32 make 12 bytes, its data holds 8"),
    (raw_tensor("w", [-3]), "initializer 'w' has negative dims [-3]"),
    (raw_tensor("w", [3], b"\0" * 12, data_type=99), "initializer 'w' has an unknown element type (99)"),
    (TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], float_data=[1.0, 2.0]),
     "initializer 'w': dims [4] make 4 elements, its data holds 2 values"),
])
def test_tensors_whose_dims_disagree_with_their_data(tmp_path, tensor, fragment):
    model = model_of([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [tensor])
    path = tmp_path / "dims.onnx"
    onnx.save(model, path)
    refused(path, f"{path}: {fragment}")


def test_a_constant_node_with_absurd_dims():
    constant = helper.make_node("Constant", [], ["c"], name="const", value=raw_tensor("v", [10**12]))
    model = model_of([constant, helper.make_node("Add", ["x", "c"], ["y"], name="add")])
    refused(model, "ONNX model 'hostile': the value attribute of node 'const' (Constant): dims [1000000000000]")


def test_a_tensor_too_large_for_memory_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(backend, "_memory_limit", 1000)
    weights = numpy_helper.from_array(np.zeros(1000, np.float32), "w")
    model = model_of([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [weights])
    with pytest.raises(MemoryError, match=r"^import_onnx: ONNX model 'hostile': initializer 'w' would need 3\.9 KiB "
                                          r"\(dims \[1000\], float32\), more than the memory limit"):
        import_onnx(model)
    path = tmp_path / "big.onnx"
    onnx.save(model, path)
    with pytest.raises(MemoryError, match=r"^import_onnx: reading .*big\.onnx would need 4\.0 KiB"):
        import_onnx(path)


def test_external_data_outside_the_models_folder(tmp_path):
    tensor = raw_tensor("w", [3])
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, text in (("location", "../../../etc/passwd"), ("offset", "0"), ("length", "12")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, text
    model = model_of([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [tensor])
    path = tmp_path / "outside.onnx"
    onnx.save(model, path)
    refused(path, f"{path}: cannot read its external tensor data")
    refused(model, "keeps its data in an external file (import the model from its path)")


# ----------------------------------------------------------------------------- graphs
def test_unknown_operators_name_the_file_and_the_node(tmp_path):
    model = model_of([helper.make_node("Frobnicate", ["x"], ["y"], name="frob")])
    path = tmp_path / "unknown.onnx"
    onnx.save(model, path)
    refused(path, f"{path}: import_onnx: unsupported operator 'Frobnicate' in node 'frob'")


def test_a_cycle_is_refused_naming_its_nodes():
    nodes = [helper.make_node("Add", ["x", "c"], ["b"], name="first"),
             helper.make_node("Relu", ["b"], ["c"], name="second"),
             helper.make_node("Relu", ["b"], ["y"], name="out")]
    refused(model_of(nodes), "the graph has a cycle: nodes 'first' (Add), 'second' (Relu)")


def test_a_graph_listed_out_of_order_is_sorted():
    nodes = [helper.make_node("Relu", ["b"], ["y"], name="second"),
             helper.make_node("Neg", ["x"], ["b"], name="first")]
    imported = import_onnx(model_of(nodes))
    x = cs.tensor([[-1.0, 2.0, -3.0]])
    np.testing.assert_array_equal(imported(x).numpy(), [[1.0, 0.0, 3.0]])


@pytest.mark.parametrize("nodes,fragment", [
    ([helper.make_node("Relu", ["nothing"], ["y"], name="r")],
     "node 'r' (Relu) reads 'nothing', which no node, graph input or initializer makes"),
    ([helper.make_node("Relu", ["x"], ["y"], name="a"), helper.make_node("Neg", ["x"], ["y"], name="b")],
     "value 'y' is made twice, by node 'a' and by node 'b' (Neg)"),
    ([helper.make_node("Relu", ["x"], ["x"], name="a")], "value 'x' is made twice, by a graph input"),
    ([helper.make_node("Relu", ["x"], ["z"], name="a")], "graph output 'y' is made by no node"),
])
def test_values_made_twice_or_never(nodes, fragment):
    refused(model_of(nodes), fragment)


@pytest.mark.parametrize("node,fragment", [
    (helper.make_node("Reshape", ["x"], ["y"], name="lonely"),
     "operator 'Reshape' in node 'lonely': the shape input is missing"),
    (helper.make_node("Concat", ["x"], ["y"], name="axisless"), "node 'axisless' (Concat): KeyError: 'axis'"),
])
def test_a_node_missing_what_its_operator_needs_names_the_node(node, fragment):
    """What an operator's builder finds missing (an input, an attribute) is reported with the node."""
    refused(model_of([node]), "ONNX model 'hostile': import_onnx: " + fragment)
