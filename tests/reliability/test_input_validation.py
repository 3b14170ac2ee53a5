"""Input validation (issue 7, item 5): every layer checks its input's rank and channels and the error
names the layer by its path in the model, the expected and the received shape."""

import numpy as np
import pytest

import convstack as cs
from convstack import models, nn


def test_lenet5_fed_three_channels_names_features_0():
    model = models.get_model("lenet5")
    with pytest.raises(ValueError) as caught:
        model(cs.randn(1, 3, 28, 28))
    assert str(caught.value) == (
        "features.0 (Conv2d): expected input with 1 channel, got 3 (input shape (1, 3, 28, 28))"
    )


def test_sequential_names_the_inner_conv_with_expected_and_received_shapes():
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 16, 5))
    with pytest.raises(ValueError, match=r"^3 \(Conv2d\): expected input with 3 channels, got 6 "
                       r"\(input shape \(1, 6, 12, 12\)\)$"):
        model(cs.randn(1, 1, 28, 28))


def test_nested_model_names_layer2_0_conv1():
    model = models.get_model("resnet18", num_classes=10)
    model.layer2[0].conv1 = nn.Conv2d(32, 128, 3, stride=2, padding=1, bias=False)
    with pytest.raises(ValueError, match=r"^layer2\.0\.conv1 \(Conv2d\): expected input with 32 channels, got 64"):
        model(cs.randn(1, 3, 32, 32))


def test_paths_follow_replaced_modules():
    """Nothing is cached on the modules: a replaced layer is named at its new place at once."""
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    model(cs.randn(2, 4))
    model[2] = nn.Linear(5, 2)
    with pytest.raises(ValueError, match=r"^2 \(Linear\): expected input with 5 features in its last dimension, got 8"):
        model(cs.randn(2, 4))
    model.add_module("head", nn.Sequential(nn.Linear(3, 1)))
    with pytest.raises(ValueError, match=r"^0 \(Linear\)"):
        model.head(cs.randn(2, 4))  # paths are relative to the outermost module called, here `head`


def test_linear_with_wrong_in_features():
    with pytest.raises(ValueError, match=r"^Linear: expected input with 400 features in its last dimension, got 256 "
                       r"\(input shape \(2, 256\)\)$"):
        nn.Linear(400, 120)(cs.randn(2, 256))


@pytest.mark.parametrize(
    "layer,shape,message",
    [
        (nn.Conv2d(3, 4, 3), (3, 5), r"expected a 4-D input \(N, C, H, W\) or a 3-D unbatched input \(C, H, W\), "
         r"got a 2-D input of shape \(3, 5\)"),
        (nn.Conv1d(2, 4, 3), (1, 3, 8), r"expected input with 2 channels, got 3 \(input shape \(1, 3, 8\)\)"),
        (nn.Conv3d(2, 4, 3), (1, 2, 5, 5), r"expected input with 2 channels, got 1 \(input shape \(1, 2, 5, 5\)\)"),
        (nn.ConvTranspose2d(8, 4, 2), (1, 4, 7, 7), r"expected input with 8 channels, got 4"),
        (nn.MaxPool2d(2), (4, 4), r"expected a 4-D input \(N, C, H, W\) or a 3-D unbatched input"),
        (nn.AvgPool1d(2), (1, 2, 3, 4), r"expected a 3-D input \(N, C, L\) or a 2-D unbatched input \(C, L\)"),
        (nn.AdaptiveAvgPool2d(1), (5,), r"expected a 4-D input .* got a 1-D input of shape \(5,\)"),
        (nn.BatchNorm2d(6), (2, 3, 4, 4), r"expected an input with 6 channels \(num_features\)"),
    ],
)
def test_each_layer_checks_rank_and_channels(layer, shape, message):
    model = nn.Sequential(nn.Identity(), layer)
    with pytest.raises(ValueError, match=rf"^1 \({type(layer).__name__}\): {message}"):
        model(cs.zeros(*shape))


def test_unbatched_inputs_are_accepted():
    assert nn.Conv2d(3, 4, 3)(cs.randn(3, 5, 5)).shape == (4, 3, 3)
    assert nn.MaxPool2d(2)(cs.randn(3, 4, 4)).shape == (3, 2, 2)


def test_a_module_its_caller_does_not_hold_is_named_by_type():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Identity()
            object.__setattr__(self, "hidden", [nn.Linear(3, 2)])  # not registered

        def forward(self, x):
            return self.hidden[0](self.body(x))

    with pytest.raises(ValueError, match=r"^<Linear> \(Linear\): expected input with 3 features"):
        Odd()(cs.randn(1, 4))


def test_the_call_stack_is_empty_after_an_error():
    from convstack.anomaly import call_stack

    with pytest.raises(ValueError):
        models.get_model("lenet5")(cs.randn(1, 2, 28, 28))
    assert call_stack() == []


def test_forward_hooks_still_run_and_validation_sees_the_pre_hook_output():
    layer = nn.Linear(3, 2)
    layer.register_forward_pre_hook(lambda module, args: (args[0][..., :3],))
    assert layer(cs.tensor(np.ones((2, 5), np.float32))).shape == (2, 2)
