"""Sequential, ModuleList and ModuleDict."""

from collections import OrderedDict

import numpy as np
import pytest

import convstack as cs
from convstack import nn


def test_sequential_indexing_slicing_and_iteration():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(model) == 3 and isinstance(model[0], nn.Linear) and model[-1] is model[2]
    head = model[1:]
    assert isinstance(head, nn.Sequential) and list(head._modules) == ["1", "2"] and head[0] is model[1]
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    x = cs.randn(4, 2)
    np.testing.assert_allclose(model(x).detach().numpy(), model[2](model[1](model[0](x))).detach().numpy())
    with pytest.raises(IndexError, match="index 3 is out of range for a Sequential of length 3"):
        model[3]


def test_sequential_edits_keep_names_numbered():
    model = nn.Sequential(nn.ReLU(), nn.Tanh())
    model.append(nn.Sigmoid())
    assert list(model._modules) == ["0", "1", "2"]
    del model[0]
    assert list(model._modules) == ["0", "1"] and isinstance(model[0], nn.Tanh)
    model.insert(0, nn.ELU())
    assert [type(m).__name__ for m in model] == ["ELU", "Tanh", "Sigmoid"]
    model[1] = nn.GELU()
    assert isinstance(model.get_submodule("1"), nn.GELU)
    model.extend([nn.Identity()])
    assert len(model) == 4


def test_sequential_from_ordered_dict():
    model = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("act", nn.ReLU())]))
    assert [name for name, _ in model.named_parameters()] == ["conv.weight", "conv.bias"]
    assert model.conv is model[0]
    assert repr(model).startswith("Sequential(\n  (conv): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))\n")


def test_module_list_registers_and_compacts_repr():
    blocks = nn.ModuleList(nn.Linear(2, 2) for _ in range(3))
    blocks.append(nn.ReLU())
    blocks += [nn.ReLU()]
    assert len(blocks) == 5 and len(list(blocks.parameters())) == 6
    assert [name for name, _ in blocks.named_parameters()][:2] == ["0.weight", "0.bias"]
    assert isinstance(blocks[1:3], nn.ModuleList) and blocks[-1] is blocks[4]
    assert repr(blocks) == (
        "ModuleList(\n"
        "  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n"
        "  (3-4): 2 x ReLU()\n"
        ")"
    )
    del blocks[0]
    assert list(blocks._modules) == ["0", "1", "2", "3"]
    blocks.insert(1, nn.Tanh())
    assert isinstance(blocks[1], nn.Tanh)
    with pytest.raises(NotImplementedError):
        blocks(cs.ones(1))
    assert repr(nn.ModuleList()) == "ModuleList()"


def test_module_dict():
    heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.ReLU()})
    heads["c"] = nn.Tanh()
    heads.update([("d", nn.Sigmoid())])
    assert list(heads) == ["a", "b", "c", "d"] and "c" in heads and len(heads) == 4
    assert list(heads.keys()) == ["a", "b", "c", "d"]
    assert isinstance(heads.pop("b"), nn.ReLU) and "b" not in heads
    assert [name for name, _ in heads.named_parameters()] == ["a.weight", "a.bias"]
    assert [type(v).__name__ for v in heads.values()] == ["Linear", "Tanh", "Sigmoid"]
    heads.clear()
    assert len(heads) == 0
