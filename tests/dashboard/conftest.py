"""Fixtures of the dashboard tests: a short training run recorded by ``LiveRecorder``."""

import json

import numpy as np
import pytest
from tests.vis.patch_task import make_patch_data, patch_net

import convstack as cs
from convstack import data, optim
from convstack.dashboard import LiveRecorder
from convstack.train import Trainer

CLASSES = ["plain", "patch"]


def patch_loaders(train_count=96, val_count=40):
    """(train loader, validation loader, raw validation images (N, 20, 20) uint8) of the patch task."""
    images, labels, _ = make_patch_data(train_count, seed=5)
    val_images, val_labels, _ = make_patch_data(val_count, seed=6)
    train = data.DataLoader(data.TensorDataset(cs.tensor(images), cs.tensor(labels)), batch_size=16, shuffle=True)
    val = data.DataLoader(data.TensorDataset(cs.tensor(val_images), cs.tensor(val_labels)), batch_size=16)
    raw = np.clip(val_images[:, 0] * 60 + 100, 0, 255).astype(np.uint8)
    return train, val, raw


def recorded_trainer(out, epochs=3, callbacks=(), resume=False, record=True, **recorder_options):
    """(trainer, validation loader, raw validation images): a Trainer with a ``LiveRecorder`` on
    ``out`` (none if not ``record``), fitted (or resumed) to ``epochs`` epochs on the patch task."""
    cs.manual_seed(0)
    model = patch_net()
    config = {"model": "patch_net", "dataset": "patches", "classes": CLASSES, "hyperparameters": {"epochs": epochs}}
    train, val, raw = patch_loaders()
    recorders = [LiveRecorder(out, **recorder_options)] if record else []
    trainer = Trainer(
        model,
        optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        callbacks=[*recorders, *callbacks],
        out_dir=out,
        progress=False,
        config=config,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config))
    trainer.fit(train, val, epochs=epochs, resume=resume)
    return trainer, val, raw


def read_events(run_dir):
    return [json.loads(line) for line in (run_dir / "live" / "events.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory):
    """(run folder, trainer) of a finished three-epoch run with its live records."""
    out = tmp_path_factory.mktemp("recorded") / "run"
    trainer, _, _ = recorded_trainer(out)
    return out, trainer
