"""The real workloads on tiny shapes, the PyTorch twins, the command, memory and thread helpers."""

import cProfile
import io
import json

import numpy as np
import pytest

from convstack.bench import memory, runner, suite, threads
from convstack.bench.layer_workloads import CONV_LAYERS, ConvLayer, conv_workloads, pool_and_norm_workloads
from convstack.bench.model_workloads import model_workloads
from convstack.bench.profile_lenet import classify_cprofile
from convstack.cli import bench_command

TINY_LAYERS = (ConvLayer("tiny", 2, 2, 3, 4, 6, 3, padding=1), ConvLayer("tiny", 1, 2, 2, 2, 9, 3, stride=2),
               ConvLayer("tiny", 3, 1, 2, 2, 4, 3, padding=1), ConvLayer("tiny", 2, 1, 4, 4, 5, 3, groups=4))


def test_the_issue_layers_have_the_issue_shapes():
    labels = [layer.label for layer in CONV_LAYERS]
    assert labels[0] == "conv2d lenet-c1 1-6 k5p2 28x28 b64"
    assert "conv2d stem 3-64 k7s2p3 224x224 b8" in labels and "conv3d 3-d 16-16 k3p1 16x16x16 b8" in labels
    stem = next(layer for layer in CONV_LAYERS if layer.tag == "stem")
    assert stem.output_shape == (8, 64, 112, 112)
    depthwise = next(layer for layer in CONV_LAYERS if layer.tag == "depthwise")
    assert depthwise.weight_shape == (32, 1, 3, 3)
    assert len(conv_workloads()) == 3 * len(CONV_LAYERS)


@pytest.mark.parametrize("with_torch", [True, False])
def test_every_convolution_mode_runs_in_both_frameworks(with_torch):
    torch = pytest.importorskip("torch") if with_torch else None
    for workload in conv_workloads(TINY_LAYERS):
        result = runner.run_workload(workload, {}, torch, repeat=1, warmup=0)
        assert result.errors == {}, workload.name
        assert (result.ratio is not None) == with_torch


def test_pooling_and_batch_norm_rows_run():
    torch = pytest.importorskip("torch")
    workloads = pool_and_norm_workloads()
    assert [w.name.split()[0] for w in workloads] == ["maxpool2d"] * 4 + ["batchnorm2d"]
    for workload in workloads[:2] + workloads[-1:]:  # the 3x3/2 pool is the same code on a larger input
        assert runner.run_workload(workload, {}, torch, repeat=1, warmup=0).errors == {}


def test_model_rows_are_the_issue_models():
    names = [w.name for w in model_workloads(quick=True)]
    assert names == ["lenet5 fashion-mnist epoch b64 train", "resnet20 3x32x32 b128 train-step",
                     "resnet20 3x32x32 b128 inference", "vgg11 3x64x64 b16 inference"]
    assert "extrapolated" in model_workloads(quick=True)[0].description
    assert "extrapolated" not in model_workloads(quick=False)[0].description


@pytest.mark.parametrize("name", ["lenet5", "resnet20"])
def test_pytorch_twins_compute_what_the_convstack_models_compute(name):
    torch = pytest.importorskip("torch")
    import convstack as cs
    from convstack import models
    from convstack.bench import twins

    cs.manual_seed(0)
    ours, twin, shape = (models.lenet5(), twins.LeNet5(), (2, 1, 28, 28)) if name == "lenet5" else \
        (models.resnet20(), twins.CifarResNet(), (2, 3, 32, 32))
    twins.copy_weights(ours, twin)
    ours.eval(), twin.eval()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with cs.no_grad(), torch.no_grad():
        np.testing.assert_allclose(ours(cs.tensor(x)).data, twin(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-5)


def test_run_without_pytorch_prints_convstack_only_and_json_has_null_pytorch(monkeypatch):
    monkeypatch.setattr(suite, "import_torch", lambda: None)
    out = io.StringIO()
    settings = suite.Settings(repeat=1, warmup=0, memory=False)
    document = suite.run(settings, workloads=conv_workloads(TINY_LAYERS[:1]), out=out)
    text = out.getvalue()
    assert "PyTorch not installed: convstack only" in text and "geometric mean" not in text
    assert [row["pytorch"] for row in document["results"]] == [None, None, None]
    assert all(row["convstack"]["count"] == 1 for row in document["results"])
    assert document["machine"]["torch"] is None and document["settings"]["repeat"] == 1


def test_command_writes_json_to_stdout_and_the_table_to_stderr(capsys):
    assert bench_command.main(["--filter", "maxpool2d 2x2 (128,16,32,32) fwd", "--repeat", "1", "--warmup", "0",
                               "--no-memory", "--json", "-", "--threads", "1"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert [row["name"] for row in document["results"]] == ["maxpool2d 2x2 (128,16,32,32) fwd"]
    assert document["settings"]["threads"] == 1 and document["machine"]["threads"] == 1
    assert "maxpool2d 2x2 (128,16,32,32) fwd" in captured.err and "convstack ms" in captured.err


def test_command_lists_workloads(capsys):
    assert bench_command.main(["--list", "--filter", "resnet20"]) == 0
    names = [line for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")]
    assert names == ["resnet20 3x32x32 b128 train-step", "resnet20 3x32x32 b128 inference"]


def test_command_refuses_a_zero_repeat(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_command.main(["--repeat", "0"])
    assert exit_info.value.code == 2
    assert "expected a positive integer, received '0'" in capsys.readouterr().err


def test_memory_row_takes_the_ratio_of_the_two_growths_and_keeps_errors(monkeypatch):
    growth = {"convstack": 300, "pytorch": 100}
    monkeypatch.setattr(memory, "measure", lambda framework, threads: {"growth_bytes": growth[framework]})
    entry = memory.resnet20_peak_memory(1, with_torch=True)
    assert (entry["convstack_bytes"], entry["pytorch_bytes"], entry["ratio"]) == (300, 100, 3.0)
    monkeypatch.setattr(memory, "measure", lambda framework, threads: {"error": "exit status 1: boom"})
    entry = memory.resnet20_peak_memory(1, with_torch=False)
    assert entry["convstack_bytes"] is None and entry["ratio"] is None and "pytorch_bytes" not in entry
    assert entry["convstack_error"] == "exit status 1: boom"


def test_status_fields_are_read_in_kib():
    assert memory._status_kib("VmRSS") > 1000
    with pytest.raises(OSError, match="NoSuchField"):
        memory._status_kib("NoSuchField")


def test_blas_info_names_the_kernels_in_use_and_the_forcing_variable(monkeypatch):
    info = threads.blas_info()
    if info["library"] is None or "OpenBLAS" not in info["library"]:
        pytest.skip("NumPy's BLAS is not OpenBLAS here")
    assert isinstance(info["core"], str) and info["core"]  # e.g. "Haswell", "SkylakeX", "Zen"
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert threads.blas_info()["environment"]["OPENBLAS_CORETYPE"] == "Haswell"


def test_profile_classification_separates_numpy_calls_from_python():
    array = np.ones((64, 64), np.float32)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(20):
        array.sum(axis=0)
        np.sum(array)
        sum(range(100))
    profiler.disable()
    import pstats

    buckets = classify_cprofile(pstats.Stats(profiler))
    assert buckets["numpy_c"] > 0 and buckets["numpy_python"] > 0 and buckets["python"] > 0


def test_import_torch_is_none_when_pytorch_cannot_be_imported(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # what an absent package looks like to import
    assert suite.import_torch() is None
