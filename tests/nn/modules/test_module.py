"""Module machinery: registration, dotted names, counts, modes, grads, dtype, repr."""

import numpy as np
import pytest

import convstack as cs
from convstack import nn


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
        self.heads = nn.ModuleDict({"cls": nn.Linear(4, 2)})
        self.scale = nn.Parameter(cs.ones(1))
        self.register_buffer("steps", cs.zeros(1))
        self.register_buffer("cache", cs.zeros(2), persistent=False)
        self.plain = 3

    def forward(self, x):
        x = self.features(x).mean(dim=(2, 3))
        for block in self.blocks:
            x = block(x)
        return self.heads["cls"](x) * self.scale


def test_lenet_parameter_count_and_names():
    model = lenet()
    assert sum(p.numel() for p in model.parameters()) == 61_706
    assert [name for name, _ in model.named_parameters()] == [
        f"{i}.{kind}" for i in (0, 3, 7, 9, 11) for kind in ("weight", "bias")
    ]
    assert [name for name, _ in model.named_modules()] == [""] + [str(i) for i in range(12)]
    assert model(cs.randn(2, 1, 28, 28)).shape == (2, 10)


def test_nested_dotted_names_buffers_and_children():
    net = Net()
    assert [name for name, _ in net.named_parameters()] == [
        "scale", "features.0.weight", "features.0.bias", "blocks.0.weight", "blocks.0.bias",
        "blocks.1.weight", "blocks.1.bias", "heads.cls.weight", "heads.cls.bias",
    ]
    assert [name for name, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert [name for name, _ in net.named_parameters(prefix="model")][:2] == ["model.scale", "model.features.0.weight"]
    assert [name for name, _ in net.named_buffers()] == ["steps", "cache"]
    assert [name for name, _ in net.named_children()] == ["features", "blocks", "heads"]
    assert [name for name, _ in net.named_modules()] == [
        "", "features", "features.0", "features.1", "blocks", "blocks.0", "blocks.1", "heads", "heads.cls",
    ]
    assert len(list(net.modules())) == 9 and len(list(net.children())) == 3
    assert net.get_submodule("blocks.1") is net.blocks[1]
    assert net.plain == 3 and "plain" not in net._parameters
    assert net(cs.randn(2, 3, 5, 5)).shape == (2, 2)


def test_shared_parameter_and_module_counted_once():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(model.parameters())) == 2
    assert [name for name, _ in model.named_modules()] == ["", "0", "1"]
    assert len(list(model.named_parameters(remove_duplicate=False))) == 4


def test_parameter_is_a_tensor_that_requires_grad():
    data = cs.ones(2, 3)
    p = nn.Parameter(data)
    assert isinstance(p, cs.Tensor) and p.requires_grad and p.is_leaf
    assert np.shares_memory(p.data, data.data)
    assert not nn.Parameter(cs.ones(1), requires_grad=False).requires_grad
    assert repr(nn.Parameter(cs.tensor([1.0, 2.0]))) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    assert type(p * 2) is cs.Tensor
    assert nn.Parameter().shape == (0,)


def test_reassignment_moves_between_stores_and_delattr():
    m = nn.Module()
    m.w = nn.Parameter(cs.ones(1))
    m.w = None  # declared but absent, as bias=False
    assert list(m._parameters) == ["w"] and m.w is None and list(m.parameters()) == []
    m.child = nn.ReLU()
    m.child = nn.Parameter(cs.ones(1))  # a name lives in one store only
    assert "child" not in m._modules and isinstance(m.child, nn.Parameter)
    del m.child
    assert not hasattr(m, "child")
    m.register_buffer("b", np.zeros(2, dtype=np.float32))
    assert isinstance(m.b, cs.Tensor)
    m.b = cs.ones(2)
    assert m.b.numpy().tolist() == [1.0, 1.0]


def test_registration_errors():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"cannot assign 'Tensor' as parameter 'weight' \(convstack.nn.Parameter"):
        m.weight = cs.ones(2, 2)
    with pytest.raises(KeyError, match='contain "."'):
        m.register_parameter("a.b", None)
    with pytest.raises(KeyError, match="empty string"):
        m.register_buffer("", None)
    with pytest.raises(KeyError, match="attribute 'in_features' already exists"):
        m.register_buffer("in_features", cs.ones(1))
    with pytest.raises(TypeError, match="name should be a string"):
        m.add_module(1, nn.ReLU())
    seq = nn.Sequential(nn.ReLU())
    with pytest.raises(TypeError, match="cannot assign 'int' as child module '0'"):
        setattr(seq, "0", 5)
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'nothing'"):
        m.nothing  # noqa: B018

    class Forgot(nn.Module):
        def __init__(self):
            self.layer = nn.ReLU()

    with pytest.raises(AttributeError, match=r"cannot assign module before Module.__init__\(\) call"):
        Forgot()
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(cs.ones(1))


def test_train_eval_propagate_per_module():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.blocks.train()
    assert net.blocks[0].training and not net.features[0].training and not net.training
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        net.train("yes")


def test_dropout_in_train_and_eval():
    model = nn.Sequential(nn.Linear(50, 50), nn.Dropout(0.5))
    x = cs.randn(40, 50)
    train_out = model(x).detach().numpy()
    zeros = (train_out == 0).mean()
    assert 0.4 < zeros < 0.6
    model.eval()
    eval_a, eval_b = model(x).detach().numpy(), model(x).detach().numpy()
    np.testing.assert_array_equal(eval_a, eval_b)
    assert (eval_a == 0).mean() < 0.01
    kept = train_out != 0
    np.testing.assert_allclose(train_out[kept], 2 * eval_a[kept], rtol=1e-5)


def test_zero_grad_requires_grad_and_apply():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    model(cs.randn(4, 3)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert model.requires_grad_(False) is model
    assert not any(p.requires_grad for p in model.parameters())
    visited = []
    model.apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Linear", "Linear", "Sequential"]


def test_to_double_keeps_parameter_objects():
    net = Net()
    params = list(net.parameters())
    net(cs.randn(1, 3, 5, 5)).sum().backward()
    assert net.double() is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in net.parameters())
    assert net.steps.dtype == np.float64
    assert net(cs.randn(1, 3, 5, 5).double()).dtype == np.float64
    assert net.to(cs.float32).scale.dtype == np.float32
    assert net.float().to("cpu").scale.dtype == np.float32
    with pytest.raises(TypeError, match="only accepts floating point dtypes"):
        net.to(cs.int64)


def test_repr_matches_pytorch_layout():
    assert repr(lenet()[:3]) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))\n"
        "  (1): ReLU()\n"
        "  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        ")"
    )
    assert repr(Net().heads) == "ModuleDict(\n  (cls): Linear(in_features=4, out_features=2, bias=True)\n)"
    assert repr(nn.Module()) == "Module()"
