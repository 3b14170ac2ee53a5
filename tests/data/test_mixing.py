"""MixUp, CutMix and RandomChoice: torchvision's rules, soft labels that cross_entropy accepts, the loader hook."""

import doctest
import math

import numpy as np
import pytest

import convstack as cs
import convstack.nn.functional as F
from convstack import nn, optim
from convstack.data import CutMix, DataLoader, MixUp, RandomChoice, TensorDataset, mixing
from convstack.train import Trainer


@pytest.fixture
def batch(rng):
    return rng.random((5, 3, 8, 10)).astype(np.float32), np.array([0, 1, 2, 3, 1])


def _one_hot(labels, classes):
    return np.eye(classes, dtype=np.float32)[labels]


def test_mixup_blends_each_image_with_the_previous_one(batch):
    images, labels = batch
    mixed, soft = MixUp(alpha=0.4, num_classes=4, generator=np.random.default_rng(3))(images, labels)
    lam = np.random.default_rng(3).beta(0.4, 0.4)
    np.testing.assert_allclose(mixed, lam * images + (1 - lam) * np.roll(images, 1, axis=0), rtol=1e-6)
    hot = _one_hot(labels, 4)
    np.testing.assert_allclose(soft, lam * hot + (1 - lam) * np.roll(hot, 1, axis=0), rtol=1e-6)
    np.testing.assert_allclose(soft.sum(axis=1), 1, rtol=1e-6)


def test_cutmix_pastes_torchvisions_box_and_mixes_labels_by_its_area(batch):
    images, labels = batch
    mixed, soft = CutMix(alpha=1.0, num_classes=4, generator=np.random.default_rng(8))(images, labels)
    generator = np.random.default_rng(8)
    lam = generator.beta(1.0, 1.0)
    cx, cy = generator.integers(10), generator.integers(8)
    r = 0.5 * math.sqrt(1 - lam)
    x1, y1 = max(cx - int(r * 10), 0), max(cy - int(r * 8), 0)
    x2, y2 = min(cx + int(r * 10), 10), min(cy + int(r * 8), 8)
    assert (x2 - x1) * (y2 - y1) > 0
    expected = images.copy()
    expected[..., y1:y2, x1:x2] = np.roll(images, 1, axis=0)[..., y1:y2, x1:x2]
    np.testing.assert_array_equal(mixed, expected)
    share = 1 - (x2 - x1) * (y2 - y1) / 80
    hot = _one_hot(labels, 4)
    np.testing.assert_allclose(soft, share * hot + (1 - share) * np.roll(hot, 1, axis=0), rtol=1e-6)


def test_soft_labels_in_soft_labels_out_and_tensors_kept(batch):
    images, labels = batch
    soft = _one_hot(labels, 4) * 0.9 + 0.025
    mixed, out = MixUp(alpha=1.0)(cs.tensor(images), cs.tensor(soft))  # num_classes not needed
    assert isinstance(mixed, cs.Tensor) and isinstance(out, cs.Tensor) and out.shape == (5, 4)
    np.testing.assert_allclose(out.data.sum(axis=1), 1, rtol=1e-6)


def test_cross_entropy_accepts_the_soft_labels_with_label_smoothing(batch):
    images, labels = batch
    _, soft = CutMix(alpha=1.0, num_classes=4)(images, labels)
    logits = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    loss = F.cross_entropy(cs.tensor(logits), cs.tensor(soft), label_smoothing=0.1)
    target = soft * 0.9 + 0.1 / 4
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert loss.item() == pytest.approx(-(target * log_softmax).sum(axis=1).mean(), rel=1e-5)


def test_random_choice_draws_by_probability(batch):
    calls = []
    choice = RandomChoice([lambda x: calls.append("a"), lambda x: calls.append("b")], p=[3, 1],
                          generator=np.random.default_rng(0))
    for _ in range(400):
        choice(None)
    assert 0.68 < calls.count("a") / 400 < 0.82
    images, labels = batch
    mixed, soft = RandomChoice([MixUp(num_classes=4), CutMix(num_classes=4)])(images, labels)
    assert mixed.shape == images.shape and soft.shape == (5, 4)


@pytest.mark.parametrize("call, message", [
    (lambda: MixUp(alpha=0), "MixUp: invalid value for argument `alpha`: expected a positive number"),
    (lambda: CutMix(num_classes=0), "CutMix: invalid value for argument `num_classes`"),
    (lambda: MixUp()(np.zeros((2, 1, 2, 2), np.float32), np.array([0, 1])), "class-index labels need num_classes"),
    (lambda: MixUp(num_classes=2)(np.zeros((2, 1, 2, 2), np.float32), np.array([0, 2])),
     r"labels must lie in \[0, 2\)"),
    (lambda: MixUp(num_classes=2)(np.zeros((2, 1, 2, 2), np.uint8), np.array([0, 1])), "expected a float batch"),
    (lambda: MixUp(num_classes=2)(np.zeros((3, 1, 2, 2), np.float32), np.array([0, 1])), "3 images but 2 labels"),
    (lambda: RandomChoice([]), "RandomChoice: invalid value for argument `transforms`"),
])
def test_errors_name_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_loader_batch_transform_and_trainer_with_soft_labels(rng):
    images = rng.random((64, 1, 6, 6)).astype(np.float32)
    labels = (images.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    loader = DataLoader(TensorDataset(images, labels), batch_size=16, shuffle=True, seed=0,
                        batch_transform=MixUp(alpha=0.2, num_classes=2))
    x, y = next(iter(loader))
    assert x.shape == (16, 1, 6, 6) and y.shape == (16, 2) and y.dtype == np.float32
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 2))
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), progress=False)
    history = trainer.fit(loader, DataLoader(TensorDataset(images, labels), batch_size=32), epochs=2)
    assert 0 <= history[-1]["acc"] <= 1 and math.isfinite(history[-1]["loss"]) and "val_acc" in history[-1]


def test_docstring_examples_run():
    assert doctest.testmod(mixing, extraglobs={"numpy": np}).failed == 0
