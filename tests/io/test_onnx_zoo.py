"""Every model of the zoo through ONNX: exported, checked, run by onnxruntime (within 1e-4 of convstack),
imported back (same output, the original state-dict names), at another batch size too.

Models are built small where their builders allow (few classes, narrow widths, small inputs), and
their batch norms calibrated on one batch (running statistics of real activations, as after
training), so that outputs have the scale of a trained network's. Run with ``-s`` to print the table.
"""

import copy

import numpy as np
import pytest

import convstack as cs
from convstack import models, nn

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.io.test_onnx_export import roundtrip, run_onnxruntime  # noqa: E402

SMALL = {
    "lenet5": ({"num_classes": 10, "in_channels": 1, "input_size": 28}, (2, 1, 28, 28)),
    "lenet5_original": ({"num_classes": 10, "in_channels": 1, "input_size": 32}, (2, 1, 32, 32)),
    "alexnet": ({"num_classes": 10, "input_size": 64, "hidden": 64}, (2, 3, 64, 64)),
    "vgg11": ({"num_classes": 10, "input_size": 32, "hidden": 32}, (1, 3, 32, 32)),
    "vgg13": ({"num_classes": 10, "input_size": 32, "hidden": 32}, (1, 3, 32, 32)),
    "vgg16": ({"num_classes": 10, "input_size": 32, "hidden": 32}, (1, 3, 32, 32)),
    "vgg19": ({"num_classes": 10, "input_size": 32, "hidden": 32}, (1, 3, 32, 32)),
    "vgg11_bn": ({"num_classes": 10, "input_size": 32, "hidden": 32}, (2, 3, 32, 32)),
    "vgg13_bn": ({"num_classes": 10, "input_size": 32, "hidden": 32}, (2, 3, 32, 32)),
    "vgg16_bn": ({"num_classes": 10, "input_size": 32, "hidden": 32}, (2, 3, 32, 32)),
    "vgg19_bn": ({"num_classes": 10, "input_size": 32, "hidden": 32}, (2, 3, 32, 32)),
    "googlenet": ({"num_classes": 10, "input_size": 64, "aux_logits": True}, (2, 3, 64, 64)),
    "resnet18": ({"num_classes": 10, "input_size": 64}, (2, 3, 64, 64)),
    "resnet34": ({"num_classes": 10, "input_size": 32, "width": 16}, (2, 3, 32, 32)),
    "resnet50": ({"num_classes": 10, "input_size": 64, "width": 8}, (2, 3, 64, 64)),
    "resnet101": ({"num_classes": 10, "input_size": 32, "width": 8}, (2, 3, 32, 32)),
    "resnet20": ({"num_classes": 10}, (2, 3, 32, 32)),
    "resnet32": ({"num_classes": 10, "shortcut": "B"}, (2, 3, 32, 32)),
    "resnet56": ({"num_classes": 10}, (2, 3, 32, 32)),
    "all_conv_net": ({"num_classes": 10, "input_size": 32, "widths": (16, 32)}, (2, 3, 32, 32)),
    "unet": ({"num_classes": 3, "in_channels": 1, "input_size": 36, "depth": 3, "width": 8}, (2, 1, 36, 36)),
    "fcn_segmentation": ({"num_classes": 3, "input_size": 36, "widths": (8, 16, 32)}, (2, 3, 36, 36)),
    "recurrent_labeller": ({"num_classes": 3, "input_size": 16, "hidden": 8}, (2, 3, 16, 16)),
    "conv_autoencoder": ({"in_channels": 1, "input_size": 28, "widths": (8, 16)}, (2, 1, 28, 28)),
    "temporal_cnn": ({"num_classes": 5, "in_channels": 2, "input_size": 64, "hidden": 8, "batch_norm": True},
                     (2, 2, 64)),
    "cnn3d": ({"num_classes": 4, "input_size": 8, "widths": (4, 8, 8)}, (2, 1, 8, 8, 8)),
}
EXTRA = {  # variants with other layers: AlexNet 2012's LRN and grouped convolutions, U-Net's batch norm
    "alexnet_lrn": ("alexnet", {"num_classes": 10, "input_size": 64, "hidden": 64, "lrn": True}, (2, 3, 64, 64)),
    "unet_bn": ("unet", {"num_classes": 2, "in_channels": 3, "input_size": 20, "depth": 2, "width": 4,
                         "batch_norm": True}, (2, 3, 20, 20)),
}
# ResNet-101 (100 layers, narrow, batch norms calibrated on few values): convstack's float32 forward
# drifts up to ~5e-4 from its own float64 forward, while onnxruntime stays within 1e-4 of it; so the
# exported graph is checked against the float64 forward and convstack-vs-onnxruntime is allowed 1e-3.
TOLERANCE = {"resnet101": 1e-3}
RESULTS = {}


def calibrate_batch_norm(model, x):
    """Running statistics of one batch (momentum 1), so eval mode sees realistic scales."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.normalization._BatchNorm)]
    for norm in norms:
        norm.momentum = 1.0
    model.train()
    with cs.no_grad():
        model(x)
    for norm in norms:
        norm.momentum = 0.1
    model.eval()


def test_every_zoo_model_is_covered():
    assert set(SMALL) == set(models.MODELS)


# Depths of the VGG family that add nothing the others do not test: opt-in with `-m slow`.
SLOW = {"vgg13", "vgg13_bn", "vgg16", "vgg19_bn"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in list(SMALL) + list(EXTRA)])
def test_zoo_model_through_onnx(name, tmp_path):
    builder, options, shape = EXTRA[name] if name in EXTRA else (name, *SMALL[name])
    model = models.get_model(builder, **options)
    calibrate_batch_norm(model, cs.randn(4, *shape[1:]))
    x = cs.randn(*shape)
    tolerance = TOLERANCE.get(name, 1e-4)
    ort_difference, import_difference, proto, imported = roundtrip(model, x, tmp_path, tolerance=tolerance)
    # onnxruntime against convstack in float64: the graph computes the same function.
    exact = copy.deepcopy(model).double()(x.double()).detach().numpy()
    (theirs,) = run_onnxruntime(tmp_path / "model.onnx", {"input": x.numpy()})
    float64_difference = float(np.abs(theirs - exact).max())
    assert float64_difference <= 1e-4 * max(1.0, float(np.abs(exact).max()))
    # The imported model holds the original's parameters and buffers under the original names.
    original = model.state_dict()
    for key, value in imported.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            np.testing.assert_array_equal(value.numpy(), original[key].numpy(), err_msg=key)
    used = {init.name for init in proto.graph.initializer if init.doc_string in ("parameter", "buffer")}
    assert used <= set(imported.state_dict())
    RESULTS[name] = (ort_difference, float64_difference, import_difference, float(np.abs(exact).max()))
    print(f"\n{name}: {len(proto.graph.node)} nodes, max |onnxruntime - convstack| {ort_difference:.1e} "
          f"(float64 convstack: {float64_difference:.1e}), max |imported - convstack| {import_difference:.1e}, "
          f"max |output| {RESULTS[name][3]:.2f}")
