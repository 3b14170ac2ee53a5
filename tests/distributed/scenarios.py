"""What the 2-rank tests run, shared by the MPI worker (each rank) and the tests (one process)."""

from __future__ import annotations

import numpy as np

import convstack as cs
import convstack.nn.functional as F
from convstack import nn, optim

GLOBAL_BATCH = 16
STEPS = 5


def global_batch(seed: int = 1):
    """A (16, 1, 8, 8) batch off zero mean and unit scale (what batch norm must undo), and its labels."""
    rng = np.random.default_rng(seed)
    images = (rng.standard_normal((GLOBAL_BATCH, 1, 8, 8)) * 3 + 2).astype(np.float32)
    return images, rng.integers(0, 10, GLOBAL_BATCH)


def plain_net():
    cs.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(24, 10),
    )


def batch_norm_net():
    cs.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(), nn.Linear(24, 10), nn.BatchNorm1d(10),
    )


def shard(rank: int, world: int) -> slice:
    return slice(rank * GLOBAL_BATCH // world, (rank + 1) * GLOBAL_BATCH // world)


def train(model, images, labels, steps: int = STEPS):
    """``steps`` SGD steps (momentum, weight decay) on one batch; the model after them."""
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(steps):
        loss = F.cross_entropy(model(cs.tensor(images)), cs.tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def state_arrays(module) -> dict:
    return {name: np.array(value.data, copy=True) for name, value in module.state_dict().items()}
