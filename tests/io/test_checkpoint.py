"""Checkpoints: round trip, atomic write, and clear errors for damaged files."""

import json
import struct

import numpy as np
import pytest

import convstack as cs
from convstack.io import CheckpointError, load_checkpoint, load_safetensors, save_checkpoint, save_safetensors


def nested_state():
    return {
        "model": {"conv.weight": cs.randn(4, 1, 3, 3), "fc.bias": np.arange(3, dtype=np.float64)},
        "optimizer": {"state": {0: {"momentum_buffer": np.ones((2, 2), np.float32)}}, "param_groups": [{"lr": 0.1}]},
        "epoch": 7,
        "rng": {"bit_generator": "PCG64", "state": {"state": 2**120 + 3, "inc": 5}},
        "pair": (1, "two", None, True),
    }


def test_nested_state_round_trips(tmp_path):
    state = nested_state()
    save_checkpoint(tmp_path / "c.ckpt", state)
    loaded = load_checkpoint(tmp_path / "c.ckpt")
    np.testing.assert_array_equal(loaded["model"]["conv.weight"], state["model"]["conv.weight"].numpy())
    assert loaded["model"]["conv.weight"].dtype == np.float32
    assert loaded["model"]["fc.bias"].dtype == np.float64
    assert loaded["optimizer"]["state"][0]["momentum_buffer"].shape == (2, 2)
    assert loaded["epoch"] == 7 and loaded["rng"]["state"]["state"] == 2**120 + 3
    assert loaded["pair"] == (1, "two", None, True)


def test_file_is_plain_safetensors(tmp_path):
    save_safetensors({"a": np.arange(6, dtype=np.float32).reshape(2, 3)}, tmp_path / "a.safetensors")
    blob = (tmp_path / "a.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + length])
    assert header["a"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    arrays, meta = load_safetensors(tmp_path / "a.safetensors")
    np.testing.assert_array_equal(arrays["a"], np.arange(6).reshape(2, 3))
    assert meta["format"] == "convstack"


def test_truncated_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "c.ckpt"
    save_checkpoint(path, nested_state())
    blob = path.read_bytes()
    for cut in (0, 4, 20, len(blob) - 1):
        path.write_bytes(blob[:cut])
        with pytest.raises(CheckpointError, match=r"c\.ckpt: .*(truncated|corrupted)"):
            load_checkpoint(path)


def test_flipped_data_byte_fails_the_checksum(tmp_path):
    path = tmp_path / "c.ckpt"
    save_checkpoint(path, nested_state())
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path)


def test_garbage_header_is_refused(tmp_path):
    path = tmp_path / "junk.ckpt"
    path.write_bytes(struct.pack("<Q", 5) + b"{oops" + b"\0" * 16)
    with pytest.raises(CheckpointError, match="junk.ckpt: corrupted checkpoint header"):
        load_checkpoint(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="nowhere.ckpt: cannot read"):
        load_checkpoint(tmp_path / "nowhere.ckpt")


def test_unstorable_value_is_refused_before_writing(tmp_path):
    with pytest.raises(CheckpointError, match="type object"):
        save_checkpoint(tmp_path / "c.ckpt", {"x": object()})
    assert not (tmp_path / "c.ckpt").exists()


def test_write_is_atomic_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "c.ckpt"
    save_checkpoint(path, {"epoch": 1})
    original = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"epoch": 2})
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["c.ckpt"]  # no temporary file left behind
