"""convstack.save / convstack.load: what PyTorch users pass to torch.save (a tensor, a state dict, a training
checkpoint) round-trips through the pickle-free format, to paths and file objects; a flat state dict is a plain
safetensors file with named tensors; a Module or a pickle is refused."""

import doctest
import importlib
import io
import json
import pickle
import struct

import numpy as np
import pytest

import convstack as cs
from convstack.io import CheckpointError


def test_a_tensor_round_trips(tmp_path):
    x = cs.randn(3, 4, dtype=cs.float64, requires_grad=True)
    cs.save(x, tmp_path / "x.pt")
    loaded = cs.load(tmp_path / "x.pt")
    assert isinstance(loaded, cs.Tensor) and loaded.dtype == np.float64 and not loaded.requires_grad
    np.testing.assert_array_equal(loaded.numpy(), x.detach().numpy())
    cs.save(cs.tensor(3), tmp_path / "scalar.pt")
    assert cs.load(tmp_path / "scalar.pt").item() == 3


def test_state_dict_round_trips_into_a_fresh_model_and_keeps_its_order(tmp_path):
    model = cs.nn.Sequential(cs.nn.Conv2d(1, 4, 3), cs.nn.BatchNorm2d(4))
    model(cs.randn(2, 1, 5, 5))  # moves the running statistics
    cs.save(model.state_dict(), str(tmp_path / "model.pt"))
    loaded = cs.load(tmp_path / "model.pt")
    assert list(loaded) == list(model.state_dict())
    assert loaded["1.num_batches_tracked"].dtype == np.int64
    fresh = cs.nn.Sequential(cs.nn.Conv2d(1, 4, 3), cs.nn.BatchNorm2d(4))
    fresh.load_state_dict(loaded)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[name].numpy(), value.numpy(), err_msg=name)


def test_a_flat_state_dict_is_plain_safetensors_with_named_tensors(tmp_path):
    state = cs.nn.Linear(3, 2).state_dict()
    cs.save(state, tmp_path / "linear.safetensors")
    blob = (tmp_path / "linear.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + length])
    assert header["weight"]["shape"] == [2, 3] and header["bias"]["dtype"] == "F32"


def test_a_training_checkpoint_round_trips_through_a_file_object():
    model = cs.nn.Linear(3, 2)
    optimizer = cs.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(cs.randn(4, 3)).sum().backward()
    optimizer.step()
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3,
                  "history": [0.5, 0.25], "note": "warm", "best": None, "shape": (2, 3)}
    stream = io.BytesIO()
    cs.save(checkpoint, stream)
    stream.seek(0)
    loaded = cs.load(stream, map_location="cpu", weights_only=False)
    assert loaded["epoch"] == 3 and loaded["history"] == [0.5, 0.25] and loaded["note"] == "warm"
    assert loaded["best"] is None and loaded["shape"] == (2, 3)
    fresh_model = cs.nn.Linear(3, 2)
    fresh_model.load_state_dict(loaded["model"])
    fresh_optimizer = cs.optim.SGD(fresh_model.parameters(), lr=0.5)
    fresh_optimizer.load_state_dict(loaded["optimizer"])
    assert fresh_optimizer.param_groups[0]["momentum"] == 0.9
    buffers = [fresh_optimizer.state[p]["momentum_buffer"] for p in fresh_model.parameters()]
    expected = [optimizer.state[p]["momentum_buffer"] for p in model.parameters()]
    for mine, theirs in zip(buffers, expected):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))


def test_a_module_is_refused_with_the_way_out():
    with pytest.raises(TypeError, match=r"save: cannot store a Module \(Linear\) itself: that would need pickle, "
                                        r"which convstack never uses; save module.state_dict\(\)"):
        cs.save(cs.nn.Linear(2, 2), io.BytesIO())


def test_other_objects_are_refused():
    with pytest.raises(CheckpointError, match="cannot store a value of type set at /1 in a checkpoint"):
        cs.save([1, {2, 3}], io.BytesIO())


def test_a_pickle_is_never_unpickled(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pickle ran",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"weight": Payload()}))
    with pytest.raises(CheckpointError, match="corrupted or truncated checkpoint"):
        cs.load(tmp_path / "evil.pt")


def test_weights_only_must_be_a_flag():
    with pytest.raises(TypeError, match="load: expected weights_only to be True or False, received 'yes'"):
        cs.load(io.BytesIO(), weights_only="yes")


def test_torch_reads_what_we_saved_as_arrays(tmp_path):
    torch = pytest.importorskip("torch")
    ours = cs.nn.Conv2d(2, 3, 3)
    cs.save(ours.state_dict(), tmp_path / "conv.pt")
    theirs = torch.nn.Conv2d(2, 3, 3)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in cs.load(tmp_path / "conv.pt").items()})
    np.testing.assert_array_equal(theirs.weight.detach().numpy(), ours.weight.detach().numpy())


def test_docstring_example_runs():
    module = importlib.import_module("convstack.io.serialization")
    result = doctest.testmod(module, extraglobs={"cs": cs, "io": io}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
