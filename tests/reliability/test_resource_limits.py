"""What cannot fit in memory is refused before it is allocated, naming the size and the argument (issue 15, item 4).

A memory limit of 1 GiB (``set_memory_limit``) stands in for a small machine, so that the
sizes below are refused the same way everywhere and nothing large is ever allocated.
"""

import numpy as np
import pytest

import convstack as cs
from convstack import backend, nn
from convstack.cli import main
from convstack.image import kernels
from convstack.models import from_spec, get_model
from convstack.models.summary import summary

LIMIT = "the memory limit (convstack.backend.set_memory_limit) (1.0 GiB)"


@pytest.fixture(autouse=True)
def one_gibibyte(monkeypatch):
    monkeypatch.delenv("CONVSTACK_MEMORY_LIMIT", raising=False)
    backend.set_memory_limit(2**30)
    yield
    backend.set_memory_limit(None)


def one_line_error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.mark.parametrize("spec,message", [
    ("box:20000", "box: a 20000x20000 kernel would need 3.0 GiB (n 20000)"),
    ("gaussian:5000", "gaussian: a 30001x30001 kernel would need 13.4 GiB (sigma 5000.0)"),
    ("gaussian:1,15001", "gaussian: a 15001x15001 kernel would need 3.4 GiB (size 15001)"),
    ("shift:0,-20000", "shift: a 40001x40001 kernel would need 11.9 GiB (dy -20000)"),
    ("identity:20001", "identity: a 20001x20001 kernel would need 3.0 GiB (size 20001)"),
    ("gabor:0,3000,4", "gabor: a 18001x18001 kernel would need 14.5 GiB (sigma 3000.0)"),
])
def test_filter_kernels_that_cannot_fit(tmp_path, capsys, spec, message):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    err = one_line_error(["filter", str(tmp_path / "a.png"), "--kernel", spec, "--out", str(tmp_path / "b.png")],
                         capsys)
    assert err.startswith(f"convstack filter: error: --kernel {spec}: {message}, more than {LIMIT}; choose a smaller")
    assert not (tmp_path / "b.png").exists()


def test_kernels_that_fit_are_built():
    assert kernels.box(301).shape == (301, 301)


@pytest.mark.parametrize("make,message", [
    (lambda: nn.Linear(100_000, 100_000), r"Linear: a weight of shape \(100000, 100000\) \(37\.3 GiB\) with its "
                                          r"float64 initial draw would need 111\.8 GiB \(in_features 100000, "
                                          r"out_features 100000\)"),
    (lambda: nn.Conv2d(10_000, 10_000, 5), r"Conv2d: a weight of shape \(10000, 10000, 5, 5\) .* \(in_channels "
                                           r"10000, out_channels 10000, kernel_size \(5, 5\)\)"),
    (lambda: nn.LocallyConnected2d(64, 64, 200, 3),
     r"LocallyConnected2d: a weight of shape \(198, 198, 64, 64, 3, 3\)"),
])
def test_layers_that_cannot_fit_are_refused_before_allocating(make, message):
    with pytest.raises(MemoryError, match=message):
        make()


def test_a_spec_of_layers_that_add_up_past_memory_is_refused_before_any_is_built(monkeypatch):
    built = []
    monkeypatch.setattr(nn.Linear, "reset_parameters", lambda self, generator=None: built.append(self))
    with pytest.raises(MemoryError, match=r"from_spec: the 353,502,010 float32 parameters of '\(fc3000\)x40' would "
                                          r"need 1\.4 GiB \(41 layers, the largest fc3000 with 9,003,000"):
        from_spec("(fc3000)x40")  # every layer fits on its own: 36 MB
    assert built == []


def test_a_spec_repeated_past_any_use_is_refused_before_expanding():
    with pytest.raises(ValueError, match=r"\(fc10-fc10.*\)x1000000 makes 10,000,000 layers, more than 10,000"):
        from_spec("((fc10)x10)x1000000")


def test_summary_of_a_giant_model_on_the_command_line(capsys):
    err = one_line_error(["summary", "spec:fc100000-fc100000"], capsys)
    assert err.startswith("convstack summary: error: from_spec: the 10,079,600,010 float32 parameters of "
                          "'fc100000-fc100000' would need 112.1 GiB")
    err = one_line_error(["summary", "lenet5", "--num-classes", "100000000"], capsys)
    assert "Linear: a weight of shape (100000000, 84) (31.3 GiB)" in err and "out_features 100000000" in err


def test_summary_of_a_giant_input(capsys):
    err = one_line_error(["summary", "resnet18", "--input-size", "3x40000x40000"], capsys)
    assert "summary: an input of shape (3, 40000, 40000) would need 17.9 GiB" in err
    err = one_line_error(["summary", "resnet20", "--input-size", "3x5000x5000"], capsys)
    assert "conv1 (Conv2d): the output would need 1.5 GiB (input shape (1, 3, 5000, 5000))" in err


def test_a_convolution_output_that_cannot_fit_names_the_layer_in_a_model():
    model = get_model("lenet5")
    with pytest.raises(MemoryError, match=r"features\.0 \(Conv2d\): the output would need 6\.7 GiB \(input shape "
                                          r"\(48, 1, 2500, 2500\)\)"):
        model(cs.zeros(48, 1, 2500, 2500))
    up = nn.ConvTranspose2d(1, 64, 4, stride=64)
    with pytest.raises(MemoryError, match=r"the output would need"):
        up(cs.zeros(1, 1, 100, 100))


def test_sizes_that_fit_still_run():
    assert "Total params: 61,706" in summary(get_model("lenet5"), (1, 28, 28))
    assert from_spec("conv8-pool-fc32")(cs.zeros(2, 1, 28, 28)).shape == (2, 10)
