"""Hand-built ONNX files at any opset, written as the exporters of that time wrote them, and the check
that convstack's import computes what onnxruntime computes on the same file."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper
from tests.io.test_onnx_export import run_onnxruntime

import convstack as cs
from convstack.io import import_onnx


def model_at(opset: int, nodes, inputs: dict, outputs, initializers: dict = (), batch: str | None = None):
    """A model of ``nodes`` at ``opset`` with the oldest IR version that allows it; below IR 4 (opsets 7-8)
    the initializers are graph inputs too, as every file of that time had them. ``batch`` names the first
    input dimension (a free batch size) instead of fixing it."""
    initializers = dict(initializers)
    ir_version = helper.find_min_ir_version_for([helper.make_opsetid("", opset)])

    def info(name, array, free_batch):
        shape = list(array.shape)
        if free_batch and shape:
            shape[0] = batch
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype), shape)

    graph_inputs = [info(name, array, batch is not None) for name, array in inputs.items()]
    if ir_version < 4:
        graph_inputs += [info(name, np.asarray(array), False) for name, array in initializers.items()]
    graph = helper.make_graph(nodes, "zoo_style", graph_inputs, [onnx.ValueInfoProto(name=name) for name in outputs],
                              initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="zoo-style")
    model.ir_version = ir_version
    inferred = onnx.shape_inference.infer_shapes(model)  # the outputs' types, as an exporter writes them
    for output, typed in zip(model.graph.output, inferred.graph.output):
        output.type.CopyFrom(typed.type)
    return model


def compare_with_onnxruntime(model, inputs: dict, tmp_path, tolerance: float = 1e-4):
    """Save ``model``, run it in onnxruntime and imported in convstack; every output must agree within
    ``tolerance`` relative to its largest magnitude (at least 1). Returns the imported model."""
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    theirs = run_onnxruntime(path, inputs)
    imported = import_onnx(path)
    ours = imported(*[cs.tensor(inputs[name]) for name in imported.input_names])
    ours = ours if isinstance(ours, tuple) else (ours,)
    assert len(ours) == len(theirs)
    for name, mine, reference in zip(imported.output_names, ours, theirs):
        mine = mine.detach().numpy()
        assert mine.shape == reference.shape, f"{name}: shape {mine.shape}, onnxruntime {reference.shape}"
        assert mine.dtype.kind == reference.dtype.kind, f"{name}: dtype {mine.dtype}, onnxruntime {reference.dtype}"
        if reference.dtype.kind == "f":
            scale = max(1.0, float(np.abs(reference).max())) if reference.size else 1.0
            np.testing.assert_allclose(mine, reference, rtol=0, atol=tolerance * scale, err_msg=name)
        else:
            np.testing.assert_array_equal(mine, reference, err_msg=name)
    return imported


def step_types(imported) -> list:
    """The ONNX operator (or convstack layer) each step of an imported graph runs, in order."""
    types = []
    for path, _, _ in imported.steps:
        module = imported.get_submodule(path)
        types.append(getattr(module, "op_type", type(module).__name__))
    return types
