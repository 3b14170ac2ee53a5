"""The classic CNN zoo as other tools exported it (``onnx_zoo_models``), imported into convstack and
compared with onnxruntime on the same file (1e-4 relative), at every opset from 7 to 21: two opsets
per model by default (together all fifteen), the whole matrix with ``-m slow``.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import convstack as cs
import convstack.nn.functional as F
from convstack import nn, optim

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import helper  # noqa: E402
from tests.io.onnx_graphs import compare_with_onnxruntime, model_at, step_types  # noqa: E402
from tests.io.onnx_zoo_graphs import ZooGraph  # noqa: E402
from tests.io.onnx_zoo_models import MODELS  # noqa: E402
from tests.io.test_onnx_export import run_onnxruntime  # noqa: E402

from convstack.io import export_onnx, import_onnx  # noqa: E402


def build(name: str, opset: int):
    architecture, style, size, _ = MODELS[name]
    graph = ZooGraph(opset, style, np.random.default_rng(opset), size)
    outputs = architecture(graph)
    return graph.build(outputs)


def test_default_opsets_cover_7_to_21():
    covered = {opset for _, _, _, default in MODELS.values() for opset in default}
    assert covered == set(range(7, 22))


CASES = [pytest.param(name, opset, id=f"{name}-opset{opset}", marks=() if opset in default else pytest.mark.slow)
         for name, (_, _, _, default) in MODELS.items() for opset in range(7, 22)]


@pytest.mark.parametrize("name, opset", CASES)
def test_zoo_file_imports_and_matches_onnxruntime(name, opset, tmp_path):
    model, inputs = build(name, opset)
    imported = compare_with_onnxruntime(model, inputs, tmp_path)
    # Every convolution with its own weights is an nn.Conv2d holding them as parameters, under the file's names.
    convolutions = [m for m in imported.modules() if isinstance(m, nn.Conv2d)]
    assert len(convolutions) == sum(n.op_type == "Conv" for n in model.graph.node)
    # torch.onnx's names are the state dict's; the other exporters' layers sit at their names' stem (conv1_w: conv1).
    state = imported.state_dict()
    for init in model.graph.initializer:
        if init.name.endswith(".weight"):
            assert init.name in state
        elif init.name.endswith(("_w", "_weight")):
            layer = imported.get_submodule(init.name.rpartition("_")[0].replace("/", "."))
            assert layer.weight.shape == tuple(init.dims)
    if MODELS[name][1] == "torch":  # a free batch size: the shapes computed by Shape -> Gather -> Concat follow it
        (key, x), = inputs.items()
        more = {key: np.concatenate([x, x[:1]])}
        compare_with_onnxruntime(model, more, tmp_path)


def test_zoo_operators_fold_at_import():
    """A ConstantOfShape of a constant shape leaves no step behind; the torch-style flatten's Shape does."""
    model, _ = build("squeezenet1.1", 13)
    types = step_types(import_onnx(model))
    assert "ConstantOfShape" not in types and "Shape" in types
    assert sum(n.op_type == "ConstantOfShape" for n in model.graph.node) > 0


def test_imported_zoo_file_fine_tunes(tmp_path):
    """SqueezeNet 1.1 from a torch.onnx-style file: a new classifier, then a few Adam steps lower the loss."""
    model, _ = build("squeezenet1.1", 12)
    imported = import_onnx(model)
    last = [path for path, module in imported.named_modules() if isinstance(module, nn.Conv2d)][-1]
    assert last == "conv26"  # the classifier, at the stem of its weights' names (conv26.weight, conv26.bias)
    imported.conv26 = nn.Conv2d(imported.conv26.in_channels, 3, 1)
    rng = np.random.default_rng(0)
    labels = np.arange(12) % 3
    images = rng.normal(size=(12, 3, 64, 64)).astype(np.float32)
    images[np.arange(12), labels] += 1.0  # the class brightens one colour channel
    images, labels = cs.tensor(images), cs.tensor(labels)
    optimizer = optim.Adam(imported.parameters(), lr=0.003)
    imported.train()
    losses = []
    for _ in range(15):
        logits, _ = imported(images)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
    assert losses[-1] < 0.8 * losses[0], losses
    assert all(p.grad is not None for p in imported.parameters())


@pytest.mark.parametrize("name", ["mnist", "squeezenet1.1"])
def test_readme_interop_files_match_onnxruntime(name, tmp_path):
    """The files of the README's interop section (scripts/zoo_style_onnx.py) import and match onnxruntime."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "zoo_style_onnx.py"
    spec = importlib.util.spec_from_file_location("zoo_style_onnx", script)
    writer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(writer)
    model = writer.mnist(0) if name == "mnist" else writer.squeezenet(1000, 0, size=64)
    shape = (1, 1, 28, 28) if name == "mnist" else (1, 3, 64, 64)
    (key,) = {i.name for i in model.graph.input} - {i.name for i in model.graph.initializer}
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    imported = compare_with_onnxruntime(model, {key: x}, tmp_path)
    if name == "squeezenet1.1":  # the Caffe2 names' stems: fire2/expand3x3_w -> fire2.expand3x3
        assert isinstance(imported.fire2.expand3x3, nn.Conv2d) and isinstance(imported.conv10, nn.Conv2d)
    else:  # the classifier's 4-D weight, reshaped at run time, is a parameter that trains
        assert "Parameter193" in dict(imported.named_parameters())


def test_imported_zoo_file_exports_again(tmp_path):
    """An imported file is a convstack model like the others: export_onnx writes it again, and onnxruntime
    computes on that file what the imported model computes (the import-side ops included: cubic Resize)."""
    model, inputs = build("shufflenet_v2", 13)
    (x,) = inputs.values()
    resize = helper.make_node("Resize", ["x", "", "s"], ["y"], mode="cubic", name="resize")
    cubic = model_at(13, [resize], {"x": x}, ["y"], {"s": np.array([1, 1, 1.5, 2], np.float32)})
    for proto in (model, cubic):
        imported = import_onnx(proto)
        ours = imported(cs.tensor(x)).detach().numpy()
        export_onnx(imported, cs.tensor(x), tmp_path / "again.onnx")
        (theirs,) = run_onnxruntime(tmp_path / "again.onnx", {"input": x})
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-4 * max(1.0, float(np.abs(ours).max())))
