"""The torchinfo-style summary: shapes, parameters, mult-adds per layer, totals, memory, default input sizes."""

import numpy as np
import pytest

from convstack import nn
from convstack.cli import main
from convstack.cli.summary_command import _defaults
from convstack.models import cnn3d, resnet18, temporal_cnn
from convstack.models.summary import count_macs, default_input_shape, summary, summary_rows


def test_resnet18_matches_torchinfos_published_summary_at_64x64():
    # torchinfo's tests/test_output/resnet18_depth_consistency.out (torchvision's resnet18, input 1x3x64x64).
    text = summary(resnet18(), (3, 64, 64))
    for line in ("Total params: 11,689,512", "Total mult-adds: 148.57 M", "Input size (MB): 0.05",
                 "Forward/backward pass size (MB): 3.25", "Params size (MB): 46.76",
                 "Estimated total size (MB): 50.06"):
        assert line in text


@pytest.mark.slow
def test_resnet18_at_224_has_1_81_giga_mult_adds(capsys):
    assert main(["summary", "resnet18"]) == 0
    text = capsys.readouterr().out
    assert "Input shape: 3x224x224" in text and "Total mult-adds: 1.81 G" in text
    assert "Forward/backward pass size (MB): 39.75" in text


@pytest.mark.parametrize("layer, shape", [
    (lambda torch: torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), (2, 3, 9, 11)),
    (lambda torch: torch.nn.Conv2d(4, 8, 3, groups=2, dilation=2, bias=False), (1, 4, 10, 10)),
    (lambda torch: torch.nn.ConvTranspose2d(4, 6, 3, stride=2, bias=False), (1, 4, 5, 5)),
    (lambda torch: torch.nn.Conv1d(2, 5, 4, bias=False), (3, 2, 20)),
    (lambda torch: torch.nn.Conv3d(2, 3, 3, padding=1, bias=False), (1, 2, 4, 5, 6)),
    (lambda torch: torch.nn.Linear(7, 3, bias=False), (4, 7)),
])
def test_convolution_and_linear_mult_adds_equal_pytorchs_flop_counter(layer, shape):
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    theirs = layer(torch)
    with FlopCounterMode(display=False) as counter:
        output = theirs(torch.zeros(shape))
    ours = getattr(nn, type(theirs).__name__)(*_arguments(theirs))
    assert count_macs(ours, shape, tuple(output.shape)) * 2 == counter.get_total_flops()


def _arguments(module):
    if hasattr(module, "kernel_size"):
        return (module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                *((module.output_padding,) if "Transpose" in type(module).__name__ else ()),
                *(() if "Transpose" in type(module).__name__ else (module.dilation,)), module.groups, False)
    return module.in_features, module.out_features, False


def test_biases_add_one_per_output_and_rows_list_each_call():
    shared = nn.ReLU()
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), shared, nn.Flatten(), nn.Linear(32, 3), shared)
    rows = summary_rows(model, (1, 4, 4))
    assert [r.name for r in rows] == ["0", "1", "2", "3", "1"]  # the shared ReLU: a row per call
    assert rows[0].macs == 2 * 9 * 16 + 2 * 16 and rows[3].macs == 32 * 3 + 3
    assert rows[0].input_shape == (1, 4, 4) and rows[2].output_shape == (32,)
    assert sum(r.params for r in rows) == 20 + 99


def test_a_layer_called_twice_counts_its_parameters_once():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1)

        def forward(self, x):
            return self.conv(self.conv(x))

    rows = summary_rows(Twice(), (2, 3, 3))
    assert [r.params for r in rows] == [6, 0] and rows[0].macs == rows[1].macs == 4 * 9 + 2 * 9
    assert "Total params: 6" in summary(Twice(), (2, 3, 3))


def test_default_input_sizes_follow_each_models_dimensions():
    assert default_input_shape(temporal_cnn(), 1, 128) == (1, 128)
    assert default_input_shape(cnn3d(), 1, 32) == (1, 32, 32, 32)
    assert default_input_shape(resnet18(), 3, 224) == (3, 224, 224)
    assert _defaults("resnet18") == {"num_classes": 1000, "in_channels": 3, "input_size": 224}
    assert _defaults("spec:conv8-fc4") == {"in_channels": 1, "num_classes": 10, "input_size": 28}


@pytest.mark.parametrize("argv, expected", [
    (["temporal_cnn"], ["Input shape: 1x128", "features.0 (Conv1d)       1x128        32x128"]),
    (["cnn3d"], ["Input shape: 1x32x32x32", "Total mult-adds: 99.09 M"]),
    (["lenet5"], ["Input shape: 1x28x28", "Total params: 61,706", "Total mult-adds: 423.04 k"]),
    (["spec:conv10k5p2", "--input-size", "3x32x32", "--num-classes", "2"], ["3x32x32      10x32x32"]),
])
def test_summary_command_uses_the_models_own_input(capsys, argv, expected):
    assert main(["summary", *argv]) == 0
    text = capsys.readouterr().out
    for part in expected:
        assert part in text


def test_summary_works_in_float64():
    rows = summary_rows(nn.Sequential(nn.Linear(3, 2)).double(), (3,), dtype=np.float64)
    assert rows[0].output_bytes == 16
