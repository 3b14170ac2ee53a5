"""LeNet-5 and the spec-string builder: structure, parameter counts, shapes, errors."""

import numpy as np
import pytest

import convstack as cs
from convstack.models import from_spec, get_model, lenet5
from convstack.models.spec import expand
from convstack.models.summary import summary, summary_rows


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_lenet5_has_61706_parameters_and_maps_28x28_to_10_scores():
    model = lenet5()
    assert count(model) == 61_706
    assert model(cs.randn(2, 1, 28, 28)).shape == (2, 10)


def test_lenet5_adapts_to_channels_size_and_classes():
    model = lenet5(num_classes=7, in_channels=3, input_size=32)
    assert model(cs.randn(1, 3, 32, 32)).shape == (1, 7)


def test_lenet5_refuses_tiny_inputs():
    with pytest.raises(ValueError, match="lenet5: invalid value for argument `input_size`"):
        lenet5(input_size=8)


def test_spec_groups_expand():
    assert expand("(conv8-pool)x2-fc16") == ["conv8", "pool", "conv8", "pool", "fc16"]
    assert expand("((conv4)x2-pool)x2") == ["conv4", "conv4", "pool"] * 2


def test_spec_builds_the_lecture_pattern():
    model = from_spec("(conv8-conv8-pool)x2-fc32-drop0.5", in_channels=1, num_classes=10, input_size=28)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d"] * 2 + [
        "Flatten",
        "Linear",
        "ReLU",
        "Dropout",
        "Linear",
    ]
    assert model(cs.randn(3, 1, 28, 28)).shape == (3, 10)


def test_spec_conv_options():
    model = from_spec("conv4k5s2p0", in_channels=3, num_classes=2, input_size=11)
    conv = model[0]
    assert conv.kernel_size == (5, 5) and conv.stride == (2, 2) and conv.padding == (0, 0)
    assert model(cs.randn(1, 3, 11, 11)).shape == (1, 2)


@pytest.mark.parametrize(
    "spec,message",
    [
        ("conv8-bogus", "invalid layer 'bogus'"),
        ("fc8-conv8", "after a fully connected"),
        ("(conv8", "unbalanced"),
        ("pool-pool-pool-pool-pool", "shrinks"),
    ],
)
def test_spec_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        from_spec(spec, input_size=28)


def test_get_model_by_name_and_spec():
    assert count(get_model("lenet5")) == 61_706
    assert isinstance(get_model("spec:conv4-fc8", input_size=8), cs.nn.Sequential)
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        get_model("nope")


def test_summary_shows_the_lecture_example():
    # A 3x32x32 input through ten 5x5 filters with padding 2 gives 10x32x32 and 760 parameters.
    model = from_spec("conv10k5p2", in_channels=3, num_classes=2, input_size=32)
    rows = summary_rows(model, (3, 32, 32))
    assert rows[0][:4] == ("0", "Conv2d", (3, 32, 32), (10, 32, 32)) and rows[0].params == 760
    text = summary(model, (3, 32, 32))
    assert "10x32x32" in text and "760" in text and f"Total params: {count(model):,}" in text


def test_summary_of_lenet5_lists_every_layer():
    rows = summary_rows(lenet5(), (1, 28, 28))
    shapes = [r.output_shape for r in rows]
    assert shapes[:6] == [(6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10), (16, 5, 5)]
    assert shapes[-1] == (10,) and sum(r.params for r in rows) == 61_706
    np.testing.assert_equal(len(rows), 12)
