"""ONNX export op by op: every layer and tensor op a model may use, with its awkward options, run by
onnxruntime against convstack's own output (within 1e-4), then imported back (same output), and
the batch dimension left free where the graph allows (run again at another batch size).
"""

import numpy as np
import pytest

import convstack as cs
import convstack.nn.functional as F
from convstack import models, nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from convstack.io import export_onnx, import_onnx  # noqa: E402


def run_onnxruntime(path, inputs: dict):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1  # small graphs: threads would only contend with the other tests
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, inputs)


def roundtrip(model, x, tmp_path, opset=17, tolerance=1e-4, other_batch=3):
    """Export, check, compare onnxruntime and the re-imported model with convstack; return the differences."""
    model.eval()
    path = tmp_path / "model.onnx"
    proto = export_onnx(model, x, path, opset=opset)
    onnx.checker.check_model(proto, full_check=True)
    expected = model(x).detach().numpy()
    (theirs,) = run_onnxruntime(path, {"input": x.numpy()})
    assert theirs.shape == expected.shape
    ort_difference = float(np.abs(theirs - expected).max())
    assert ort_difference <= tolerance * max(1.0, float(np.abs(expected).max()))
    imported = import_onnx(path)
    back = imported(x).detach().numpy()
    import_difference = float(np.abs(back - expected).max())
    assert import_difference <= tolerance * max(1.0, float(np.abs(expected).max()))
    dynamic = proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    if dynamic and other_batch:
        more = cs.randn(other_batch, *x.shape[1:])
        (theirs,) = run_onnxruntime(path, {"input": more.numpy()})
        np.testing.assert_allclose(theirs, model(more).detach().numpy(), atol=tolerance, rtol=tolerance)
    return ort_difference, import_difference, proto, imported


class Lambda(nn.Module):
    """A model whose forward is ``function`` (tensor glue between layers), with optional layers inside."""

    def __init__(self, function, **layers):
        super().__init__()
        self.function = function
        for name, layer in layers.items():
            setattr(self, name, layer)

    def forward(self, x):
        return self.function(self, x)


def randomise_batch_norm(model, rng):
    for module in model.modules():
        if isinstance(module, nn.modules.normalization._BatchNorm) and module.running_mean is not None:
            c = module.num_features
            if module.weight is not None:
                module.weight.data[...] = rng.uniform(0.5, 1.5, c)
                module.bias.data[...] = rng.normal(0, 0.2, c)
            module.running_mean.data[...] = rng.normal(0, 0.2, c)
            module.running_var.data[...] = rng.uniform(0.5, 2.0, c)


LAYERS = {
    "conv2d groups dilation stride asymmetric": (lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2),
                                                                   dilation=(2, 1), groups=2), (2, 4, 9, 8)),
    "conv2d same even kernel": (lambda: nn.Conv2d(3, 4, 4, padding="same"), (2, 3, 7, 7)),
    "conv2d reflect padding": (lambda: nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), (2, 3, 6, 6)),
    "conv1d": (lambda: nn.Conv1d(3, 5, 3, stride=2, padding=1, dilation=2), (2, 3, 17)),
    "conv3d": (lambda: nn.Conv3d(2, 3, 3, stride=(1, 2, 2), padding=1, groups=1), (1, 2, 5, 6, 6)),
    "depthwise conv2d": (lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), (2, 4, 6, 6)),
    "conv transpose2d": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
                                                    dilation=2), (2, 4, 5, 5)),
    "conv transpose1d": (lambda: nn.ConvTranspose1d(3, 2, 4, stride=2, padding=1), (2, 3, 7)),
    "conv transpose3d": (lambda: nn.ConvTranspose3d(2, 2, 2, stride=2, bias=False), (1, 2, 3, 3, 3)),
    "max pool ceil padding": (lambda: nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), (2, 3, 8, 8)),
    "max pool dilation": (lambda: nn.MaxPool2d(2, 1, dilation=2), (2, 3, 7, 7)),
    "max pool 1d ceil": (lambda: nn.MaxPool1d(3, 2, ceil_mode=True), (2, 3, 10)),
    "max pool 3d": (lambda: nn.MaxPool3d(2), (1, 2, 4, 6, 6)),
    "avg pool count pad": (lambda: nn.AvgPool2d(3, 2, padding=1, count_include_pad=True), (2, 3, 7, 7)),
    "avg pool exclude pad": (lambda: nn.AvgPool2d(3, 2, padding=1, count_include_pad=False), (2, 3, 7, 7)),
    "avg pool ceil count pad": (lambda: nn.AvgPool2d(3, 2, padding=1, ceil_mode=True), (2, 3, 8, 8)),
    "avg pool ceil exclude pad": (lambda: nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False),
                                  (2, 3, 8, 8)),
    "avg pool ceil no pad": (lambda: nn.AvgPool2d(2, ceil_mode=True), (2, 3, 5, 5)),
    "avg pool divisor override": (lambda: nn.AvgPool2d(2, divisor_override=3), (2, 3, 6, 6)),
    "avg pool 1d": (lambda: nn.AvgPool1d(3, 2, padding=1), (2, 3, 9)),
    "avg pool 3d": (lambda: nn.AvgPool3d(2, ceil_mode=True), (1, 2, 5, 4, 4)),
    "global average": (lambda: nn.AdaptiveAvgPool2d(1), (2, 3, 5, 7)),
    "adaptive average divisible": (lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 6, 9)),
    "adaptive average uneven": (lambda: nn.AdaptiveAvgPool2d((3, 4)), (2, 3, 7, 5)),
    "adaptive average 1d": (lambda: nn.AdaptiveAvgPool1d(1), (2, 3, 11)),
    "adaptive average 3d": (lambda: nn.AdaptiveAvgPool3d(1), (1, 2, 3, 4, 5)),
    "adaptive max": (lambda: nn.AdaptiveMaxPool2d((2, 2)), (2, 3, 6, 8)),
    "adaptive max global": (lambda: nn.AdaptiveMaxPool2d(1), (2, 3, 5, 5)),
    "batch norm 2d": (lambda: nn.BatchNorm2d(3), (2, 3, 4, 4)),
    "batch norm 1d flat": (lambda: nn.BatchNorm1d(5), (4, 5)),
    "batch norm 3d": (lambda: nn.BatchNorm3d(2), (2, 2, 3, 3, 3)),
    "batch norm no affine": (lambda: nn.BatchNorm2d(3, affine=False), (2, 3, 4, 4)),
    "batch norm batch statistics": (lambda: nn.BatchNorm2d(3, track_running_stats=False), (4, 3, 4, 4)),
    "batch norm + relu, fused": (lambda: nn.Sequential(nn.BatchNorm2d(3), nn.ReLU()), (2, 3, 4, 4)),
    "batch norm batch statistics + relu, fused": (
        lambda: nn.Sequential(nn.BatchNorm2d(3, track_running_stats=False), nn.ReLU()), (4, 3, 4, 4)),
    "lrn odd": (lambda: nn.LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=2.0), (2, 7, 4, 4)),
    "relu": (lambda: nn.ReLU(), (2, 3, 4)),
    "leaky relu": (lambda: nn.LeakyReLU(0.2), (2, 3, 4)),
    "elu": (lambda: nn.ELU(0.5), (2, 3, 4)),
    "gelu": (lambda: nn.GELU(), (2, 3, 4)),
    "gelu tanh": (lambda: nn.GELU("tanh"), (2, 3, 4)),
    "sigmoid": (lambda: nn.Sigmoid(), (2, 3, 4)),
    "tanh": (lambda: nn.Tanh(), (2, 3, 4)),
    "softmax": (lambda: nn.Softmax(dim=1), (2, 3, 4)),
    "log softmax": (lambda: nn.LogSoftmax(dim=-1), (2, 3, 4)),
    "linear": (lambda: nn.Linear(6, 4), (3, 6)),
    "linear 3-d input": (lambda: nn.Linear(6, 4), (2, 3, 6)),
    "linear no bias 3-d": (lambda: nn.Linear(6, 4, bias=False), (2, 3, 6)),
    "flatten": (lambda: nn.Flatten(), (2, 3, 4, 5)),
    "dropout in eval": (lambda: nn.Sequential(nn.Dropout(0.5), nn.Dropout2d(0.3)), (2, 3, 4, 4)),
    "upsample nearest x2": (lambda: nn.Upsample(scale_factor=2), (2, 3, 4, 5)),
    "upsample nearest x3 1-d": (lambda: nn.Upsample(scale_factor=3), (2, 3, 4)),
    "upsample nearest to size": (lambda: nn.Upsample(size=(7, 5)), (2, 3, 4, 3)),
    "upsample bilinear": (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), (2, 3, 4, 5)),
    "upsample bilinear align corners": (lambda: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                                        (2, 3, 4, 5)),
    "upsample bilinear to size": (lambda: nn.Upsample(size=(7, 9), mode="bilinear"), (2, 3, 4, 5)),
    "upsample trilinear": (lambda: nn.Upsample(scale_factor=2, mode="trilinear"), (1, 2, 3, 3, 3)),
    "upsample linear 1-d": (lambda: nn.Upsample(scale_factor=2, mode="linear", align_corners=True), (2, 3, 5)),
    "zero pad": (lambda: nn.ZeroPad2d((1, 2, 0, 3)), (2, 3, 4, 4)),
    "constant pad": (lambda: nn.ConstantPad1d(2, 0.5), (2, 3, 4)),
    "reflection pad": (lambda: nn.ReflectionPad2d(2), (2, 3, 5, 5)),
    "replication pad": (lambda: nn.ReplicationPad3d(1), (1, 2, 3, 3, 3)),
    "maxout": (lambda: nn.Maxout(2), (2, 6, 3, 3)),
    "residual": (lambda: nn.Residual(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3))), (2, 3, 5, 5)),
    "concat": (lambda: nn.Concat(nn.Conv2d(3, 2, 1), nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(3, 1, 1)),
               (2, 3, 5, 5)),
    "partial conv (lenet c3)": (lambda: nn.PartialConv2d(6, 16, 5, nn.lenet5_c3_table()), (2, 6, 14, 14)),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_exports_and_imports(name, tmp_path, rng):
    build, shape = LAYERS[name]
    model = build()
    randomise_batch_norm(model, rng)
    roundtrip(model, cs.randn(*shape), tmp_path)


GLUE = {
    "slices": lambda m, x: x[:, ::2, 1:-1] * 2.0 - x[:, 1::2, :-2],
    "index and new axes": lambda m, x: x[..., None, 1, :] + x[:, None, 0],
    "negative step": lambda m, x: x[:, :, ::-1] + x,
    "gather indices": lambda m, x: x[:, [2, 0, 1]],
    "permute and reshape": lambda m, x: x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, 3).transpose(1, 2),
    "reductions": lambda m, x: x.mean(dim=(2, 3)) + x.sum(dim=1).max(dim=-1).values.sum(-1, keepdim=True),
    "var and std": lambda m, x: x.var(dim=1, keepdim=True) + x.std(dim=(2, 3), keepdim=True, unbiased=False),
    "min": lambda m, x: x.min(dim=1).values,
    "stack and cat": lambda m, x: cs.cat([cs.stack([x, x * 2], dim=1).flatten(1, 2), x], dim=1),
    "elementwise maths": lambda m, x: (x.abs() + 1).log() + (x * x + 1).sqrt() - (-x).exp() / 3 + x ** 2,
    "clamp and where": lambda m, x: x.clamp(-0.5, 0.5) + cs.where(x > 0, x, x * 0.1) + x.clamp(min=0),
    "expand": lambda m, x: x.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1) + x,
    "matmul": lambda m, x: x @ x.transpose(2, 3),
    "cast and clone": lambda m, x: x.double().float().clone() + 1,
    "softmax of linear": lambda m, x: F.softmax(m.fc(x.flatten(1)), dim=1),
    "gelu functional": lambda m, x: F.gelu(x) * F.leaky_relu(x, 0.1),
    "interpolate gather": lambda m, x: F.interpolate(x, size=(5, 3), mode="nearest"),
    "interpolate mixed": lambda m, x: F.interpolate(x, size=(8, 3), mode="bilinear", align_corners=False),
}


@pytest.mark.parametrize("name", list(GLUE))
def test_tensor_glue_exports_and_imports(name, tmp_path):
    model = Lambda(GLUE[name], fc=nn.Linear(48, 5))
    roundtrip(model, cs.randn(2, 3, 4, 4), tmp_path)


def test_gelu_is_one_node_from_opset_20(tmp_path):
    _, _, proto, _ = roundtrip(nn.GELU(), cs.randn(2, 5), tmp_path, opset=20)
    assert [node.op_type for node in proto.graph.node] == ["Gelu"]


def test_circular_padding_needs_opset_19(tmp_path):
    model = nn.CircularPad2d(1)
    with pytest.raises(ValueError, match="circular padding .* needs opset 19"):
        export_onnx(model, cs.randn(1, 2, 3, 3), tmp_path / "m.onnx")
    _, _, proto, _ = roundtrip(model, cs.randn(1, 2, 3, 3), tmp_path, opset=19)
    assert proto.graph.node[0].attribute[0].s == b"wrap"


def test_even_lrn_exports_as_a_formula(tmp_path):
    model = nn.LocalResponseNorm(4, alpha=0.1, beta=0.75, k=1.5)  # PyTorch's window is not ONNX's for even sizes
    _, _, proto, _ = roundtrip(model, cs.randn(2, 6, 3, 3), tmp_path)
    assert "LRN" not in [node.op_type for node in proto.graph.node]


def test_names_types_and_training_mode(tmp_path, rng):
    model = models.resnet20(num_classes=10)
    randomise_batch_norm(model, rng)
    model.train()
    proto = export_onnx(model, cs.randn(1, 3, 32, 32), tmp_path / "r.onnx")
    assert model.training and all(m.training for m in model.modules())  # the mode is restored
    kinds = {init.name: init.doc_string for init in proto.graph.initializer}
    assert kinds["conv1.weight"] == "parameter" and kinds["bn1.running_var"] == "buffer"
    assert "bn1.num_batches_tracked" not in kinds  # only what the graph reads
    names = [node.name for node in proto.graph.node]
    assert "layer1.0.conv1" in names and "layer1.0.add" in names and "fc" in names
    assert len(set(names)) == len(names)
    assert proto.opset_import[0].version == 17
    assert [d.dim_param for d in proto.graph.output[0].type.tensor_type.shape.dim] == ["N", ""]


def test_static_batch_when_the_graph_folds_it(tmp_path):
    model = Lambda(lambda m, x: x.reshape(-1, 4).sum(dim=0))  # mixes the batch into other dimensions
    proto = export_onnx(model, cs.randn(2, 3, 4), tmp_path / "m.onnx")
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2
    assert "static batch size" in proto.doc_string
    roundtrip(model, cs.randn(2, 3, 4), tmp_path)


def test_several_inputs_and_outputs(tmp_path):
    class Two(nn.Module):
        def forward(self, a, b):
            return a + b, (a * b).sum(dim=1)

    a, b = cs.randn(2, 3), cs.randn(2, 3)
    proto = export_onnx(Two(), (a, b), tmp_path / "m.onnx", output_names=["total", "dot"])
    assert [v.name for v in proto.graph.input] == ["input_0", "input_1"]
    total, dot = run_onnxruntime(tmp_path / "m.onnx", {"input_0": a.numpy(), "input_1": b.numpy()})
    np.testing.assert_allclose(total, (a + b).numpy(), atol=1e-6)
    np.testing.assert_allclose(dot, (a * b).sum(dim=1).numpy(), atol=1e-6)
    imported = import_onnx(tmp_path / "m.onnx")
    np.testing.assert_allclose(imported(a, b)[1].numpy(), dot, atol=1e-6)


def test_export_errors(tmp_path):
    with pytest.raises(ValueError, match="export_onnx: invalid value for argument `opset`"):
        export_onnx(nn.ReLU(), cs.randn(1, 2), tmp_path / "m.onnx", opset=11)
    with pytest.raises(ValueError, match=r"no ONNX conversion for the op TiledConvNd \(node 'tiledconvnd'\)"):
        export_onnx(nn.TiledConv2d(2, 2, 3, tile_size=2), cs.randn(1, 2, 5, 5), tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="export_onnx: the model must return a tensor"):
        export_onnx(Lambda(lambda m, x: {"x": x}), cs.randn(1, 2), tmp_path / "m.onnx")
    pooled = Lambda(lambda m, x: F.max_pool2d(x, 2, return_indices=True)[1] * 1.0)
    with pytest.raises(ValueError, match="max pooling indices .* have no ONNX equivalent"):
        export_onnx(pooled, cs.randn(1, 2, 4, 4), tmp_path / "m.onnx")
