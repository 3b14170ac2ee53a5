"""Residual and Concat: the sums and concatenations, gradients through every path, state-dict names,
ResNet and Inception blocks built from them against the same network written out by hand, errors."""

import numpy as np
import pytest

import convstack as cs
from convstack import nn
from convstack.nn import functional as F


def _input(shape, seed=0):
    return cs.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), requires_grad=True)


def test_identity_residual_adds_the_input_and_passes_gradient_through_both_paths():
    body = nn.Linear(3, 3)
    block = nn.Residual(body)
    x = _input((2, 3))
    out = block(x)
    np.testing.assert_allclose(out.detach().numpy(), (body(x) + x).detach().numpy())
    out.sum().backward()
    # d(sum(W x + b + x))/dx = column sums of W, plus one from the identity path
    np.testing.assert_allclose(x.grad.numpy(), body.weight.detach().numpy().sum(axis=0) + np.ones((2, 3)), rtol=1e-6)
    assert [name for name, _ in block.named_parameters()] == ["body.weight", "body.bias"]


def test_resnet_basic_block_with_projection_reads_like_its_diagram():
    torch = pytest.importorskip("torch")
    block = nn.Sequential(
        nn.Residual(
            nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)),
            shortcut=nn.Sequential(nn.Conv2d(4, 8, 1, stride=2, bias=False), nn.BatchNorm2d(8)),
        ),
        nn.ReLU(),
    )
    names = list(block.state_dict())
    assert names[:2] == ["0.body.0.weight", "0.body.1.weight"]
    assert "0.shortcut.0.weight" in names and "0.shortcut.1.running_var" in names

    class TorchBlock(torch.nn.Module):  # the same block as torchvision's BasicBlock writes it
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = torch.nn.Conv2d(4, 8, 3, 2, 1, bias=False), torch.nn.BatchNorm2d(8)
            self.conv2, self.bn2 = torch.nn.Conv2d(8, 8, 3, 1, 1, bias=False), torch.nn.BatchNorm2d(8)
            self.down = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 1, 2, bias=False), torch.nn.BatchNorm2d(8))

        def forward(self, x):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(out + self.down(x))

    theirs = TorchBlock()
    mapping = {"conv1": "0.body.0", "bn1": "0.body.1", "conv2": "0.body.3", "bn2": "0.body.4", "down.0": "0.shortcut.0",
               "down.1": "0.shortcut.1"}
    state = {}
    for key, value in theirs.state_dict().items():
        prefix, leaf = key.rsplit(".", 1)
        state[f"{mapping[prefix]}.{leaf}"] = value.numpy()
    block.load_state_dict(state)
    x = np.random.default_rng(1).standard_normal((2, 4, 6, 6)).astype(np.float32)
    ours_x, theirs_x = cs.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = block(ours_x), theirs(theirs_x)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-4, atol=1e-5)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_concat_joins_branch_outputs_in_order():
    branches = [nn.Conv2d(3, 2, 1), nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1)),
                nn.MaxPool2d(3, 1, 1)]
    inception = nn.Concat(*branches)
    x = _input((2, 3, 5, 5))
    out = inception(x)
    assert out.shape == (2, 2 + 3 + 3, 5, 5)
    expected = np.concatenate([b(x).detach().numpy() for b in branches], axis=1)
    np.testing.assert_array_equal(out.detach().numpy(), expected)
    out.sum().backward()
    assert all(p.grad is not None for p in inception.parameters())
    names = [name for name, _ in inception.named_parameters()]
    assert names[:4] == ["branches.0.weight", "branches.0.bias", "branches.1.0.weight", "branches.1.0.bias"]


def test_concat_gradient_splits_by_branch():
    x = _input((2, 3))
    a, b = nn.Identity(), nn.Linear(3, 2, bias=False)
    out = nn.Concat(a, b, dim=-1)(x)
    upstream = np.arange(10, dtype=np.float32).reshape(2, 5)
    out.backward(cs.tensor(upstream))
    expected = upstream[:, :3] + upstream[:, 3:] @ b.weight.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


def test_concat_along_another_dimension_and_repr():
    block = nn.Concat(nn.Identity(), nn.Identity(), dim=0)
    assert block(cs.ones(2, 3)).shape == (4, 3)
    assert repr(block) == "Concat(\n  dim=0\n  (branches): ModuleList(\n    (0-1): 2 x Identity()\n  )\n)"


def test_blocks_compose_with_functional_ops():
    block = nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.ReLU()))
    x = _input((1, 2, 4, 4))
    conv = block.body[0]
    expected = F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1)) + x
    np.testing.assert_array_equal(block(x).detach().numpy(), expected.detach().numpy())


ERRORS = [
    (lambda: nn.Residual(nn.Linear(3, 4))(cs.ones(2, 3)),
     "Residual: the body's output shape (2, 4) differs from the identity shortcut's (2, 3) (input shape (2, 3))"),
    (lambda: nn.Residual(nn.Linear(3, 4), nn.Linear(3, 5))(cs.ones(2, 3)),
     "Residual: the body's output shape (2, 4) differs from the shortcut's (2, 5) (input shape (2, 3))"),
    (lambda: nn.Concat(nn.Identity(), nn.MaxPool2d(2))(cs.ones(1, 2, 4, 4)),
     "Concat: branch outputs must match in every dimension but 1; received branch 0: (1, 2, 4, 4), "
     "branch 1: (1, 2, 2, 2)"),
    (lambda: nn.Concat(), "Concat: expected at least one branch"),
    (lambda: nn.Concat(nn.Identity(), dim=1.0),
     "Concat: invalid value for argument `dim`: expected an integer, received 1.0"),
]


@pytest.mark.parametrize("call, message", ERRORS)
def test_errors_are_pinned(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message


def test_non_modules_are_refused():
    with pytest.raises(TypeError, match="Residual: expected `body` to be a Module, received function"):
        nn.Residual(lambda x: x)
    with pytest.raises(TypeError, match="Concat: expected branch 1 to be a Module, received int"):
        nn.Concat(nn.Identity(), 3)
