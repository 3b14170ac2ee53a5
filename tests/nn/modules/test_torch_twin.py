"""A small conv net built in convstack and in PyTorch: same state_dict, same outputs, same gradients."""

import numpy as np
import pytest

import convstack as cs
from convstack import nn

torch = pytest.importorskip("torch")


def build(lib):
    return lib.Sequential(
        lib.Conv2d(2, 4, 3, padding=1, padding_mode="reflect"), lib.ELU(), lib.MaxPool2d(2),
        lib.Conv2d(4, 6, 3, padding="same", groups=2), lib.LeakyReLU(0.1), lib.Dropout2d(0.5),
        lib.ConvTranspose2d(6, 4, 2, stride=2), lib.GELU(), lib.AvgPool2d(2),
        lib.Identity(),
        lib.AdaptiveAvgPool2d((2, 2)), lib.Flatten(), lib.Linear(16, 5),
    )


def test_twin_network_outputs_and_gradients_match_pytorch():
    ours, theirs = build(nn), build(torch.nn)
    assert repr(ours) == repr(theirs)
    ours.eval(), theirs.eval()  # dropout off in both
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    labels = np.array([0, 4, 2])
    x_ours, x_theirs = cs.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    np.testing.assert_allclose(out_ours.detach().numpy(), out_theirs.detach().numpy(), rtol=1e-4, atol=1e-5)

    nn.CrossEntropyLoss()(out_ours, cs.tensor(labels)).backward()
    torch.nn.CrossEntropyLoss()(out_theirs, torch.tensor(labels)).backward()
    np.testing.assert_allclose(x_ours.grad.numpy(), x_theirs.grad.numpy(), rtol=1e-4, atol=1e-6)
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        np.testing.assert_allclose(
            param.grad.numpy(), theirs_params[name].grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name
        )


def test_pytorch_state_dict_loads_into_convstack():
    ours, theirs = build(nn), build(torch.nn)
    ours.load_state_dict(theirs.state_dict())  # torch tensors (requiring grad or not) read as arrays
    for name, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[name].numpy(), value.numpy())
    x = np.random.default_rng(1).standard_normal((2, 2, 8, 8)).astype(np.float32)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(
        ours(cs.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("name, args", [("Conv2d", (6, 16, 5)), ("Linear", (84, 10)), ("ConvTranspose2d", (8, 4, 3))])
def test_default_initialisation_matches_pytorch_in_distribution(name, args):
    ours, theirs = getattr(nn, name)(*args).weight.detach().numpy(), getattr(torch.nn, name)(*args).weight.detach()
    # Same uniform law: the extremes and the spread agree within sampling noise.
    assert np.abs(ours).max() == pytest.approx(theirs.abs().max().item(), rel=0.05)
    assert ours.std() == pytest.approx(theirs.std().item(), rel=0.15)
