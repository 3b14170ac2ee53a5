"""Grad-CAM's default layer (the last convolution block's output after its nonlinearity) and its empty-map warning."""

import warnings

import numpy as np
import pytest
from tests.vis.patch_task import in_patch, trained_patch_model

import convstack as cs
from convstack import nn
from convstack.models import googlenet, lenet5, lenet5_original, resnet18, resnet20, vgg11
from convstack.vis import grad_cam
from convstack.vis._model import default_cam_layer


@pytest.mark.parametrize("build, shape, expected", [
    (lambda: resnet18(num_classes=10, input_size=32, width=8), (3, 32, 32), "layer4.1"),
    (resnet20, (3, 32, 32), "layer3.2"),
    # VGG-11: the ReLU before the last max pool.
    (lambda: vgg11(num_classes=10, input_size=32, hidden=16), (3, 32, 32), "features.19"),
    (lenet5, (1, 28, 28), "features.4"),
    (lambda: googlenet(num_classes=10, input_size=32), (3, 32, 32), "inception5b"),
    (lenet5_original, (1, 32, 32), "C5"),  # its one squash module runs five times: the conv it follows
])
def test_default_layer_is_the_last_blocks_output_after_its_nonlinearity(build, shape, expected):
    assert default_cam_layer(build(), np.zeros((1, *shape), np.float32), "grad_cam") == expected


def test_default_map_is_the_post_relu_layers_and_finds_the_patch():
    model, images, labels, corners = trained_patch_model()
    ones = labels == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no empty map here
        default = grad_cam(model, None, images[ones], target=1)
    np.testing.assert_array_equal(default, grad_cam(model, "4", images[ones], target=1))
    assert in_patch(default, corners[ones]).mean() >= 0.9


def test_an_all_zero_map_warns_naming_the_layer_and_samples():
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
    with cs.no_grad():
        model[0].weight.data[...] = 1.0
        model[0].bias.data[...] = -100.0  # every pre-activation negative: nothing passes the ReLU
    images = np.random.default_rng(0).random((3, 1, 5, 5)).astype(np.float32)
    with pytest.warns(UserWarning, match=r"grad_cam: the map of layer '0' is all zeros for sample\(s\) \[0, 1, 2\]"):
        cams = grad_cam(model, "0", images, target=0)
    assert not cams.any()


def test_a_model_without_conv2d_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="grad_cam: the model has no Conv2d layer; pass a layer name"):
        grad_cam(model, None, np.zeros((1, 2, 2), np.float32))
