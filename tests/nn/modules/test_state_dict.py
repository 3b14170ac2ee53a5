"""state_dict / load_state_dict: round trip, every error, and never a partial load."""

from collections import OrderedDict

import numpy as np
import pytest

import convstack as cs
from convstack import nn


def small():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))


def snapshot(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_keys_detached_and_shared():
    model = small()
    state = model.state_dict()
    assert isinstance(state, OrderedDict)
    assert list(state) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    assert all(not v.requires_grad and type(v) is cs.Tensor for v in state.values())
    assert np.shares_memory(state["0.weight"].data, model[0].weight.data)
    assert model.state_dict(keep_vars=True)["0.weight"] is model[0].weight


def test_round_trip_reproduces_outputs():
    source, target = small(), small()
    x = cs.randn(2, 1, 4, 4)
    assert not np.allclose(source(x).detach().numpy(), target(x).detach().numpy())
    weight = target[0].weight
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    assert target[0].weight is weight  # copied in place: an optimiser's references stay valid
    np.testing.assert_array_equal(source(x).detach().numpy(), target(x).detach().numpy())


def test_numpy_values_and_dtype_cast():
    model = small()
    arrays = {k: np.full(v.shape, 0.5, dtype=np.float64) for k, v in model.state_dict().items()}
    model.load_state_dict(arrays)
    assert model[3].bias.dtype == np.float32
    np.testing.assert_array_equal(model[3].bias.detach().numpy(), np.full(3, 0.5, dtype=np.float32))


def test_persistent_and_non_persistent_buffers():
    module = nn.Module()
    module.register_buffer("kept", cs.ones(2))
    module.register_buffer("scratch", cs.ones(2), persistent=False)
    module.register_buffer("absent", None)
    assert list(module.state_dict()) == ["kept"]
    module.load_state_dict({"kept": np.array([3.0, 4.0])})
    assert module.kept.numpy().tolist() == [3.0, 4.0]


def test_strict_error_lists_missing_unexpected_and_misshaped_and_loads_nothing():
    model = small()
    before = snapshot(model)
    state = {
        "0.weight": np.zeros((2, 1, 3, 3)),  # fine, but must not be copied
        "0.bias": np.zeros(5),  # mis-shaped
        "3.weight": np.zeros((3, 8)),
        "extra": np.zeros(1),  # unexpected; "3.bias" is missing
    }
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(state)
    assert str(info.value) == (
        "Error(s) in loading state_dict for Sequential:\n"
        '\tMissing key(s) in state_dict: "3.bias". \n'
        '\tUnexpected key(s) in state_dict: "extra". \n'
        "\tsize mismatch for 0.bias: copying a param with shape (5,) from checkpoint, "
        "the shape in current model is (2,)."
    )
    after = snapshot(model)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_non_strict_returns_keys_but_refuses_shapes():
    model = small()
    state = small().state_dict()
    del state["3.bias"]
    state["head.weight"] = cs.ones(1)
    result = model.load_state_dict(state, strict=False)
    assert result == (["3.bias"], ["head.weight"])
    assert result.missing_keys == ["3.bias"] and result.unexpected_keys == ["head.weight"]
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), state["0.weight"].numpy())
    before = snapshot(model)
    state["0.weight"] = cs.zeros(2, 1, 5, 5)
    state["0.bias"] = cs.zeros(2)
    with pytest.raises(RuntimeError, match=r"size mismatch for 0.weight: .* shape \(2, 1, 5, 5\) from checkpoint, "
                                           r"the shape in current model is \(2, 1, 3, 3\)"):
        model.load_state_dict(state, strict=False)
    assert np.array_equal(before["0.bias"], model[0].bias.detach().numpy())


def test_bad_values_and_containers():
    model = small()
    state = model.state_dict()
    state["0.bias"] = "nonsense"
    with pytest.raises(RuntimeError, match='While copying the parameter named "0.bias", expected a Tensor or array'):
        model.load_state_dict(state)
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        model.load_state_dict([1, 2])
