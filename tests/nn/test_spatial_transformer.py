"""A spatial transformer (Jaderberg et al. 2015) built from affine_grid + grid_sample: it equals its
PyTorch twin (outputs and every parameter's gradient) and learns, in a few steps, to centre shifted
squares."""

import numpy as np
import pytest

import convstack as cs
from convstack import nn, optim
from convstack.nn import functional as F


def spatial_transformer(lib, functional):
    """Localisation net -> theta (N, 2, 3) -> affine_grid -> grid_sample, for (N, 1, 16, 16) images."""

    class SpatialTransformer(lib.Module):
        def __init__(self):
            super().__init__()
            self.localization = lib.Sequential(lib.Conv2d(1, 8, 5), lib.MaxPool2d(2), lib.ReLU(), lib.Flatten(),
                                               lib.Linear(8 * 6 * 6, 6))

        def forward(self, x):
            theta = self.localization(x).reshape(-1, 2, 3)
            grid = functional.affine_grid(theta, tuple(x.shape), align_corners=False)
            return functional.grid_sample(x, grid, align_corners=False)

    return SpatialTransformer()


def shifted_squares(count, rng, shift):
    """(count, 1, 16, 16) images of a 6x6 square moved by up to ``shift`` pixels each way."""
    images = np.zeros((count, 1, 16, 16), dtype=np.float32)
    for image, (dy, dx) in zip(images, rng.integers(-shift, shift + 1, size=(count, 2))):
        image[0, 5 + dy:11 + dy, 5 + dx:11 + dx] = 1
    return images


def test_spatial_transformer_equals_its_pytorch_twin(rng):
    torch = pytest.importorskip("torch")
    ours, theirs = spatial_transformer(nn, F), spatial_transformer(torch.nn, torch.nn.functional)
    with cs.no_grad():  # a transform far from the identity, so that every tap and padding rule is used
        ours.localization[-1].bias.data[...] = [0.8, 0.3, 0.2, -0.4, 1.1, -0.3]
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((3, 1, 16, 16)).astype(np.float32)
    upstream = rng.standard_normal((3, 1, 16, 16)).astype(np.float32)
    out_ours, out_theirs = ours(cs.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(out_ours.detach().numpy(), out_theirs.detach().numpy(), rtol=1e-4, atol=1e-5)
    out_ours.backward(upstream)
    out_theirs.backward(torch.tensor(upstream))
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        expected = theirs_params[name].grad.numpy()  # float32 sums of ~10^3 terms: tolerance scaled to their size
        np.testing.assert_allclose(param.grad.numpy(), expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max(),
                                   err_msg=name)


def test_spatial_transformer_learns_to_centre_shifted_squares():
    cs.manual_seed(0)
    rng = np.random.default_rng(0)
    images = cs.tensor(shifted_squares(64, rng, 3))
    centred = cs.tensor(shifted_squares(1, rng, 0)).expand(64, 1, 16, 16)
    model = spatial_transformer(nn, F)
    with cs.no_grad():  # start at the identity transform, as Jaderberg et al. do
        model.localization[-1].weight.data[...] = 0
        model.localization[-1].bias.data[...] = [1, 0, 0, 0, 1, 0]
    optimizer = optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = F.mse_loss(model(images), centred)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.35 * losses[0], losses
