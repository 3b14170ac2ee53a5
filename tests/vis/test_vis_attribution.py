"""Saliency, Grad-CAM, guided backprop and deconvnet: they point at the patch that decides the class."""

import copy

import numpy as np
import pytest
from tests.vis.patch_task import in_patch, patch_mass, trained_patch_model

import convstack as cs
from convstack import nn
from convstack.vis import deconvnet, grad_cam, guided_backprop, overlay, saliency


@pytest.fixture(scope="module")
def task():
    model, images, labels, corners = trained_patch_model()
    with cs.no_grad():
        accuracy = (model(cs.tensor(images)).data.argmax(axis=1) == labels).mean()
    assert accuracy >= 0.9, "the patch model did not learn its task; the attribution checks would be meaningless"
    ones = labels == 1
    return model, images[ones], corners[ones]


def test_saliency_peaks_in_the_patch(task):
    model, images, corners = task
    maps = saliency(model, images, target=1)
    assert maps.shape == (len(images), 20, 20) and (maps >= 0).all()
    assert in_patch(maps, corners).mean() >= 0.9
    assert patch_mass(maps, corners).mean() > 0.5  # the patch and its margin are 16% of the image
    shifted = (corners + 10) % 17  # the same maps judged against the wrong places fail
    assert in_patch(maps, shifted).mean() < 0.2


def test_grad_cam_peaks_in_the_patch_and_is_normalised(task):
    model, images, corners = task
    cams = grad_cam(model, "3", images, target=1)
    assert cams.shape == (len(images), 20, 20)
    assert cams.min() >= 0 and np.allclose(cams.max(axis=(1, 2)), 1.0)
    assert in_patch(cams, corners).all()
    assert patch_mass(cams, corners).min() > 0.8
    assert in_patch(cams, (corners + 10) % 17).mean() < 0.1


def test_guided_backprop_and_deconvnet_peak_in_the_patch(task):
    model, images, corners = task
    guided = guided_backprop(model, images, target=1)
    assert guided.shape == images.shape
    assert in_patch(np.abs(guided).max(axis=1), corners).all()
    for projection in (deconvnet(model, images, target=1), deconvnet(model, images, layer_name="4")):
        assert projection.shape == images.shape
        assert in_patch(np.abs(projection).max(axis=1), corners).mean() >= 0.95


def test_single_sample_and_default_target(task):
    model, images, _ = task
    assert saliency(model, images[0]).shape == (20, 20)
    assert grad_cam(model, None, images[0]).shape == (20, 20)  # None: the last Conv2d
    assert guided_backprop(model, cs.tensor(images[0])).shape == (1, 20, 20)
    np.testing.assert_allclose(saliency(model, images[:3]), saliency(model, images[:3], target=[1, 1, 1]))


def torch_twin(model):
    torch = pytest.importorskip("torch")
    twin = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveMaxPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 2),
    ).double()
    twin.load_state_dict({k: torch.tensor(np.asarray(v.data, np.float64)) for k, v in model.state_dict().items()})
    return torch, twin


@pytest.mark.parametrize("method", ["plain", "guided", "deconvnet"])
def test_input_gradients_match_pytorch_with_relu_hooks(task, method):
    """The three backward rules against the same rules written as PyTorch backward hooks."""
    model, images, _ = task
    torch, twin = torch_twin(model)
    rules = {
        "guided": lambda module, grad_in, grad_out: (grad_in[0].clamp(min=0),),
        "deconvnet": lambda module, grad_in, grad_out: (grad_out[0].clamp(min=0),),
    }
    if method in rules:
        for module in twin.modules():
            if isinstance(module, torch.nn.ReLU):
                module.register_full_backward_hook(rules[method])
    x = torch.tensor(images[:6], dtype=torch.float64, requires_grad=True)
    twin(x)[:, 1].sum().backward()
    ours = {"plain": saliency, "guided": guided_backprop, "deconvnet": deconvnet}[method]
    result = ours(copy.deepcopy(model).double(), images[:6].astype(np.float64), target=1)
    expected = x.grad.numpy()
    np.testing.assert_allclose(result, np.abs(expected).max(axis=1) if method == "plain" else expected, atol=1e-10)


def test_the_model_is_left_as_it_was(task):
    model, images, _ = task
    model.train()
    frozen = model[0].bias
    frozen.requires_grad = False
    grads_before = [None if p.grad is None else p.grad.data.copy() for p in model.parameters()]
    grad_cam(model, "0", images[:2])
    guided_backprop(model, images[:2])
    deconvnet(model, images[:2], layer_name="1")
    assert model.training and all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == [True, False, True, True, True, True]
    for before, param in zip(grads_before, model.parameters()):
        assert (param.grad is None) if before is None else np.array_equal(param.grad.data, before)
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())
    frozen.requires_grad = True
    model.eval()


def test_overlay_blends_and_draws(tmp_path):
    image = np.zeros((6, 6), np.uint8)
    cam = np.zeros((6, 6))
    cam[2, 3] = 1.0
    blend = overlay(image, cam, tmp_path / "overlay.png", alpha=0.5)
    assert blend.shape == (6, 6, 3)
    np.testing.assert_allclose(blend[2, 3], [0.25, 0.0, 0.0])  # jet(1) is dark red, half strength on black
    np.testing.assert_allclose(blend[0, 0], [0.0, 0.0, 0.25])  # jet(0) is dark blue
    assert (tmp_path / "overlay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_are_clear(task):
    model, images, _ = task
    with pytest.raises(ValueError, match=r"grad_cam: unknown layer name 'features.9'; valid layer names: 0, 1, 2"):
        grad_cam(model, "features.9", images[0])
    with pytest.raises(ValueError, match=r"grad_cam: layer '7' \(Linear\) must give \(N, K, h, w\) activations"):
        grad_cam(model, "7", images[0])
    with pytest.raises(ValueError, match=r"saliency: invalid value for argument `target`: expected class indices"):
        saliency(model, images[0], target=2)
    with pytest.raises(ValueError, match=r"saliency: expected an input \(C, H, W\) or \(N, C, H, W\)"):
        saliency(model, images[0, 0])
    with pytest.raises(ValueError, match=r"deconvnet: invalid value for argument `target`: expected channel indices"):
        deconvnet(model, images[0], target=8, layer_name="3")
    no_relu_modules = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 18 * 18, 2))
    for method in (guided_backprop, deconvnet):
        with pytest.raises(ValueError, match=r"the model has no nn.ReLU modules.*F.relu"):
            method(no_relu_modules, images[0])
