"""``convstack export``: a training checkpoint to a checked ONNX file compared with onnxruntime, or to weights."""

import re

import numpy as np
import pytest

import convstack as cs
from convstack import models
from convstack.cli import export_command
from convstack.cli.args import Parser
from convstack.io import import_onnx, load_safetensors, save_checkpoint

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def export(*argv):
    parser = Parser(prog="convstack")
    export_command.add_parser(parser.add_subparsers(dest="command", parser_class=Parser))
    args = parser.parse_args(["export", *argv])
    return args.run(args)


@pytest.fixture
def checkpoint(tmp_path):
    model = models.lenet5(num_classes=10, in_channels=1, input_size=28)
    config = {"model": "lenet5", "model_options": {"num_classes": 10, "in_channels": 1, "input_size": 28},
              "dataset": "fashion-mnist", "classes": [str(i) for i in range(10)]}
    save_checkpoint(tmp_path / "best.ckpt", {"model": model.state_dict(), "config": config, "epoch": 3})
    return tmp_path / "best.ckpt", model


def test_export_onnx_checks_and_compares(checkpoint, tmp_path, capsys):
    path, model = checkpoint
    assert export(str(path), "--format", "onnx", "--out", str(tmp_path / "lenet.onnx")) == 0
    printed = capsys.readouterr().out
    assert f"wrote {tmp_path / 'lenet.onnx'}" in printed and "input input Nx1x28x28; onnx.checker: ok" in printed
    difference = float(re.search(r"max \|onnxruntime - convstack\| = (\S+)", printed).group(1))
    assert difference < 1e-4
    x = cs.randn(3, 1, 28, 28)
    with cs.no_grad():
        np.testing.assert_allclose(import_onnx(tmp_path / "lenet.onnx")(x).numpy(), model.eval()(x).numpy(),
                                   atol=1e-6)


def test_export_default_name_input_size_and_weights(checkpoint, tmp_path, capsys):
    path, model = checkpoint
    assert export(str(path), "--input-size", "1x28x28", "--static-batch") == 0
    assert "input input 1x1x28x28" in capsys.readouterr().out
    import onnx

    dims = onnx.load(tmp_path / "best.onnx").graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 1, 28, 28]
    assert export(str(path), "--format", "safetensors") == 0
    arrays, _ = load_safetensors(tmp_path / "best.safetensors")
    np.testing.assert_array_equal(arrays["features.0.weight"], model.state_dict()["features.0.weight"].numpy())


def test_export_refuses_what_is_not_a_training_checkpoint(tmp_path):
    save_checkpoint(tmp_path / "plain.ckpt", {"weights": np.zeros(3)})
    with pytest.raises(ValueError, match="not a convstack training checkpoint"):
        export(str(tmp_path / "plain.ckpt"))
