"""Determinism (issue 7, item 6): ``convstack.manual_seed(s)`` fixes initialisation, shuffling, dropout
and augmentation, so two runs with the same seed write identical checkpoint files."""

import hashlib
import json

import numpy as np

import convstack as cs
from convstack import data, nn, optim
from convstack.io import load_safetensors, save_checkpoint
from convstack.train import Trainer


def train(seed, out_dir):
    """Init, shuffle, dropout, random crop and flip all draw from the seeded stream."""
    cs.manual_seed(seed)
    rng = np.random.default_rng(0)  # the data itself is fixed; only convstack's randomness varies
    labels = rng.integers(0, 3, 48)
    images = (labels[:, None, None] * 80 + rng.integers(0, 40, (48, 8, 8))).astype(np.uint8)
    augment = data.Compose([data.ToTensor(), data.RandomCrop(8, padding=2), data.RandomHorizontalFlip(),
                            data.Normalize((0.5,), (0.25,))])
    loader = data.DataLoader(data.ImageArrayDataset(images, labels, transform=augment), batch_size=8, shuffle=True)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5),
                          nn.Linear(4 * 4 * 4, 3))
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9), out_dir=out_dir, progress=False)
    trainer.fit(loader, epochs=2)
    state = {"model": dict(model.state_dict()), "optimizer": trainer.optimizer.state_dict()}
    save_checkpoint(out_dir / "final.ckpt", state)
    return trainer


def without_timing(path):
    """(sha256 of all the arrays, the stored state without the measured times 'time' and 'images_per_s')."""
    arrays, metadata = load_safetensors(path)
    digest = hashlib.sha256(b"".join(arrays[name].tobytes() for name in sorted(arrays))).hexdigest()

    def strip(node):
        if isinstance(node, list):
            return [strip(item) for item in node]
        if isinstance(node, dict):
            if "__dict__" in node:  # a dict is stored as [key, value] pairs
                return {"__dict__": [[k, strip(v)] for k, v in node["__dict__"] if k not in ("time", "images_per_s")]}
            return {key: strip(value) for key, value in node.items()}
        return node

    return digest, strip(json.loads(metadata["state"]))


def test_same_seed_writes_identical_checkpoint_files(tmp_path):
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    train(7, first)
    train(7, second)
    train(8, other)
    for name in ("final.ckpt", "best.ckpt"):  # weights, optimizer state: byte for byte the same file
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
        assert (first / name).read_bytes() != (other / name).read_bytes(), name
    # last.ckpt also holds the history, whose wall-clock times differ; everything else is identical.
    assert without_timing(first / "last.ckpt") == without_timing(second / "last.ckpt")
    assert without_timing(first / "last.ckpt")[0] != without_timing(other / "last.ckpt")[0]


def test_each_source_of_randomness_follows_the_seed():
    def draws(seed):
        cs.manual_seed(seed)
        weight = nn.Linear(4, 3).weight.detach().numpy().copy()
        order = [int(t.item()) for _, t in data.DataLoader(data.TensorDataset(cs.arange(10), cs.arange(10)),
                                                           batch_size=1, shuffle=True)]
        mask = nn.Dropout(0.5)(cs.ones(20)).numpy().copy()
        image = np.arange(36, dtype=np.float32).reshape(1, 6, 6)
        crop = data.Compose([data.RandomCrop(4, padding=1), data.RandomHorizontalFlip()])(image)
        return weight, order, mask, np.asarray(crop)

    a, b, c = draws(3), draws(3), draws(4)
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x, y)
        assert not np.array_equal(x, z)
