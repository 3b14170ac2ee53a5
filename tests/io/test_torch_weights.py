"""PyTorch weights in and out through files: twins written in PyTorch with the same names, weights moved
each way (``.pt`` through torch, ``.safetensors`` without it), outputs compared; torchvision's
ResNet-18 names load strictly; wrapped checkpoints, refused pickles and clear errors.
"""

import sys

import numpy as np
import pytest

import convstack as cs
from convstack import models, nn
from convstack.io import load_safetensors, load_torch_state_dict, read_state_dict, save_torch_state_dict


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(6 * 4 * 4, 5)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def torch_small():
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    class TSmall(tnn.Module):
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(tnn.Conv2d(3, 6, 3, padding=1), tnn.BatchNorm2d(6), tnn.ReLU(),
                                           tnn.MaxPool2d(2))
            self.classifier = tnn.Linear(6 * 4 * 4, 5)

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    twin = TSmall()
    with torch.no_grad():
        twin.features[1].running_mean.normal_(0, 0.3)
        twin.features[1].running_var.uniform_(0.5, 2.0)
        twin.features[1].weight.uniform_(0.5, 1.5)
    return torch, twin.eval()


def outputs(torch, twin, ours, x):
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x.numpy())).numpy()
    with cs.no_grad():
        return theirs, ours.eval()(x).numpy()


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".safetensors"])
def test_torch_weights_load_into_the_convstack_twin(tmp_path, suffix):
    torch, twin = torch_small()
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":  # what a torch user would write with safetensors.torch.save_file
        from convstack.io import save_safetensors

        save_safetensors({k: v.numpy() for k, v in twin.state_dict().items()}, path)
    else:
        torch.save(twin.state_dict(), path)
    ours = Small()
    result = load_torch_state_dict(ours, path)
    assert result.missing_keys == [] and result.unexpected_keys == []
    theirs, mine = outputs(torch, twin, ours, cs.randn(2, 3, 8, 8))
    np.testing.assert_allclose(mine, theirs, atol=1e-5)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_convstack_weights_load_into_the_torch_twin(tmp_path, suffix, rng):
    torch, twin = torch_small()
    ours = Small()
    bn = ours.features[1]
    bn.running_mean.data[...] = rng.normal(0, 0.3, 6)
    bn.running_var.data[...] = rng.uniform(0.5, 2.0, 6)
    path = tmp_path / f"w{suffix}"
    save_torch_state_dict(ours, path)
    if suffix == ".pt":
        state = torch.load(path, weights_only=True)
    else:  # no safetensors package here: read the standard layout with convstack's reader
        state = {k: torch.from_numpy(v.copy()) for k, v in load_safetensors(path)[0].items()}
    twin.load_state_dict(state, strict=True)
    theirs, mine = outputs(torch, twin.eval(), ours, cs.randn(2, 3, 8, 8))
    np.testing.assert_allclose(mine, theirs, atol=1e-5)


def test_safetensors_need_no_torch(tmp_path, monkeypatch):
    model = Small()
    save_torch_state_dict(model, tmp_path / "w.safetensors")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    other = Small()
    load_torch_state_dict(other, tmp_path / "w.safetensors")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[key].numpy(), value.numpy())
    (tmp_path / "w.pt").write_bytes(b"")
    with pytest.raises(ImportError, match=r"needs PyTorch: pip install 'convstack\[torch\]'; a .safetensors file"):
        load_torch_state_dict(other, tmp_path / "w.pt")


def test_torchvision_resnet18_names_load_strictly(tmp_path, rng):
    torch = pytest.importorskip("torch")
    from tests.models.test_twins import TResNet, randomise_batch_norm  # torchvision's ResNet, written out

    twin = TResNet(classes=10).eval()
    with torch.no_grad():
        for module in twin.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    torch.save(twin.state_dict(), tmp_path / "resnet18.pth")
    ours = models.resnet18(num_classes=10, input_size=64)
    randomise_batch_norm(ours, rng)  # different values, all to be overwritten
    load_torch_state_dict(ours, tmp_path / "resnet18.pth", strict=True)
    x = cs.randn(2, 3, 64, 64)
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x.numpy())).numpy()
    with cs.no_grad():
        np.testing.assert_allclose(ours.eval()(x).numpy(), theirs, atol=1e-4)


def test_wrapped_checkpoints_and_data_parallel_prefixes(tmp_path):
    torch, twin = torch_small()
    state = {"module." + k: v for k, v in twin.state_dict().items()}
    torch.save({"epoch": 3, "state_dict": state, "optimizer": {"lr": 0.1}}, tmp_path / "ckpt.pth")
    arrays = read_state_dict(tmp_path / "ckpt.pth")
    assert set(arrays) == set(twin.state_dict())
    load_torch_state_dict(Small(), tmp_path / "ckpt.pth")


def test_pickled_code_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"weights": torch.zeros(2), "callback": Small}, tmp_path / "evil.pt")  # a class: needs unpickling
    with pytest.raises(ValueError, match=r"is not a file of tensors that torch.load\(weights_only=True\) accepts"):
        load_torch_state_dict(Small(), tmp_path / "evil.pt")


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="expected a .pt, .pth, .bin or .safetensors file or a mapping, "
                                         "received 'w.npz'"):
        (tmp_path / "w.npz").write_bytes(b"")
        load_torch_state_dict(Small(), tmp_path / "w.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_torch_state_dict(Small(), tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="save_torch_state_dict: invalid value for argument `path`"):
        save_torch_state_dict(Small(), tmp_path / "w.h5")
    state = {k: v.numpy() for k, v in Small().state_dict().items()}
    del state["classifier.bias"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "classifier.bias"'):
        load_torch_state_dict(Small(), state)
    assert load_torch_state_dict(Small(), state, strict=False).missing_keys == ["classifier.bias"]
