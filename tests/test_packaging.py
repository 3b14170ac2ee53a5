"""The README's first command (`pip install -e .`) gives every command of the README (issue 15, item 7).

Pillow and matplotlib are core dependencies; what still needs an extra (PyTorch for .pt
files, onnx for ONNX) says which, in one line.
"""

import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

from convstack import models  # noqa: E402
from convstack.cli import main  # noqa: E402
from convstack.io import save_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_images_and_the_report_need_no_extra():
    names = {requirement.split(">")[0].split("=")[0].strip().lower() for requirement in project()["dependencies"]}
    assert {"numpy", "pillow", "matplotlib"} <= names


def test_every_extra_named_in_a_message_exists():
    extras = project()["optional-dependencies"]
    assert {"torch", "onnx", "test"} <= set(extras)


@pytest.fixture
def checkpoint(tmp_path):
    config = {"model": "lenet5", "model_options": {"num_classes": 10, "in_channels": 1, "input_size": 28}}
    save_checkpoint(tmp_path / "run.ckpt", {"model": dict(models.get_model("lenet5").state_dict()),
                                            "config": config, "epoch": 1})
    return tmp_path / "run.ckpt"


@pytest.mark.parametrize("fmt,package,message", [
    ("pt", "torch", "export --format pt needs PyTorch: pip install 'convstack[torch]' (or --format safetensors, "
                    "which needs nothing more)"),
    ("onnx", "onnx", "export --format onnx needs the onnx package: pip install 'convstack[onnx]'"),
])
def test_an_export_without_its_extra_says_which_in_one_line(checkpoint, tmp_path, capsys, monkeypatch, fmt, package,
                                                            message):
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed
    assert main(["export", str(checkpoint), "--format", fmt, "--out", str(tmp_path / f"m.{fmt}")]) == 2
    assert capsys.readouterr().err == f"convstack export: error: {message}\n"
    assert not (tmp_path / f"m.{fmt}").exists()


def test_reading_pt_weights_without_torch_says_which_extra(tmp_path, capsys, monkeypatch):
    from convstack.io import load_torch_state_dict

    (tmp_path / "w.pt").write_bytes(b"PK")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"needs PyTorch: pip install 'convstack\[torch\]'; a \.safetensors"):
        load_torch_state_dict(models.get_model("lenet5"), tmp_path / "w.pt")
