"""A task whose answer sits in one known place: 20x20 noise, class 1 has a bright 4x4 patch.

A small conv net trained on it for a few seconds must look at the patch, so the
attribution maps can be checked pixel by pixel against the patch's position.
"""

import functools

import numpy as np

import convstack as cs
from convstack import nn, optim
from convstack.nn import functional as F

SIZE, PATCH = 20, 4


def make_patch_data(count, seed):
    """(images (N, 1, 20, 20) float32, labels (N,), patch corners (N, 2)); class 0 has no patch."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.3, (count, 1, SIZE, SIZE)).astype(np.float32)
    labels = rng.integers(0, 2, count)
    corners = rng.integers(0, SIZE - PATCH + 1, (count, 2))
    rows = corners[:, 0, None, None] + np.arange(PATCH)[:, None]  # (N, 4, 1)
    cols = corners[:, 1, None, None] + np.arange(PATCH)[None, :]  # (N, 1, 4)
    samples = np.arange(count)[:, None, None]
    images[samples, 0, rows, cols] += 2.0 * labels[:, None, None]
    return images, labels, corners


def patch_net():
    """conv-relu-pool-conv-relu-global max pool-linear."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 2),
    )


@functools.lru_cache(maxsize=1)
def trained_patch_model():
    """(model, test images, test labels, test corners); trained once per test session (about a second)."""
    cs.manual_seed(0)
    model = patch_net()
    images, labels, _ = make_patch_data(256, seed=1)
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    order = np.random.default_rng(2)
    for _ in range(3):
        permutation = order.permutation(len(images))
        for start in range(0, len(images), 64):
            batch = permutation[start : start + 64]
            loss = F.cross_entropy(model(cs.tensor(images[batch])), cs.tensor(labels[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    test_images, test_labels, test_corners = make_patch_data(64, seed=3)
    return model, test_images, test_labels, test_corners


def in_patch(maps, corners, margin=2):
    """For each (H, W) map: does its argmax lie within the patch grown by ``margin`` pixels?"""
    flat = maps.reshape(len(maps), -1).argmax(axis=1)
    rows, cols = np.unravel_index(flat, maps.shape[1:])
    low, high = corners - margin, corners + PATCH - 1 + margin
    return (rows >= low[:, 0]) & (rows <= high[:, 0]) & (cols >= low[:, 1]) & (cols <= high[:, 1])


def patch_mass(maps, corners, margin=2):
    """For each map: the fraction of its total within the patch grown by ``margin`` pixels."""
    fractions = []
    for heat, (row, col) in zip(maps, corners):
        window = heat[max(row - margin, 0) : row + PATCH + margin, max(col - margin, 0) : col + PATCH + margin]
        fractions.append(window.sum() / heat.sum())
    return np.array(fractions)
