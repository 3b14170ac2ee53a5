"""Wrong-model, truncated and mismatched checkpoints: a clear error naming the file and the mismatch,
and never a partial load (issue 7, item 1). Truncation and flipped bytes at the file level: tests/io."""

import numpy as np
import pytest

import convstack as cs
from convstack import nn, optim
from convstack.io import CheckpointError, load_model_checkpoint, save_checkpoint
from convstack.train import Trainer


def model_a():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


def model_b():  # another model: a different conv width, one more layer
    return nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 6 * 6, 10), nn.Linear(10, 10))


def trainer(model, out_dir=None):
    return Trainer(model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9), out_dir=out_dir, progress=False)


def snapshot(model):
    return {name: value.numpy().copy() for name, value in model.state_dict().items()}


def assert_unchanged(model, before):
    after = snapshot(model)
    assert list(after) == list(before)
    for name, array in before.items():
        np.testing.assert_array_equal(after[name], array, err_msg=name)


def test_trainer_load_of_another_model_names_the_file_and_every_mismatch(tmp_path):
    path = tmp_path / "a.ckpt"
    trainer(model_a()).save(path)
    cs.manual_seed(1)
    target = trainer(model_b())
    before = snapshot(target.model)
    with pytest.raises(CheckpointError) as caught:
        target.load(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    assert 'Missing key(s) in state_dict: "4.weight", "4.bias"' in message
    assert "size mismatch for 0.weight: copying a param with shape (4, 1, 3, 3)" in message
    assert "the shape in current model is (6, 1, 3, 3)" in message
    assert "size mismatch for 3.weight" in message
    assert_unchanged(target.model, before)


def test_unexpected_keys_are_named_and_nothing_is_loaded(tmp_path):
    path = tmp_path / "b.ckpt"
    trainer(model_b()).save(path)
    target = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 6 * 6, 10))
    before = snapshot(target)
    with pytest.raises(CheckpointError, match=r'b\.ckpt: does not fit the model: .*Unexpected key\(s\) in state_dict: '
                       r'"4\.weight", "4\.bias"'):
        load_model_checkpoint(path, target)
    assert_unchanged(target, before)


def test_fit_resume_from_another_models_checkpoint_refuses_before_training(tmp_path):
    trainer(model_a(), tmp_path).save(tmp_path / "last.ckpt")
    target = trainer(model_b(), tmp_path)
    before = snapshot(target.model)
    data = [(cs.randn(2, 1, 8, 8), cs.tensor([0, 1]))]
    with pytest.raises(CheckpointError, match="last.ckpt: does not fit this model and optimizer"):
        target.fit(data, epochs=1, resume=True)
    assert_unchanged(target.model, before)
    assert target.epoch == 0 and target.history == []


def test_an_optimizer_that_does_not_fit_puts_the_model_back(tmp_path):
    """The model fits but the optimizer state does not: the model weights already copied are restored."""
    path = tmp_path / "c.ckpt"
    source = trainer(model_a())
    source.save(path)
    model = model_a()
    target = Trainer(model, optim.SGD([{"params": [model[0].weight]}, {"params": [model[0].bias]}], lr=0.1),
                     progress=False)
    before = snapshot(model)
    rng_before = cs.default_generator().bit_generator.state
    with pytest.raises(CheckpointError, match="c.ckpt: does not fit this model and optimizer: .*parameter groups"):
        target.load(path)
    assert_unchanged(model, before)
    assert cs.default_generator().bit_generator.state == rng_before


def test_truncated_last_checkpoint_on_resume_names_the_file(tmp_path):
    source = trainer(model_a(), tmp_path)
    source.save(tmp_path / "last.ckpt")
    blob = (tmp_path / "last.ckpt").read_bytes()
    (tmp_path / "last.ckpt").write_bytes(blob[: len(blob) // 2])
    target = trainer(model_a(), tmp_path)
    before = snapshot(target.model)
    with pytest.raises(CheckpointError, match=r"last\.ckpt: (corrupted|checksum|truncated)"):
        target.fit([(cs.randn(2, 1, 8, 8), cs.tensor([0, 1]))], epochs=1, resume=True)
    assert_unchanged(target.model, before)


def test_a_weights_file_is_not_a_training_checkpoint(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_checkpoint(path, {"model": dict(model_a().state_dict())})
    with pytest.raises(CheckpointError, match="weights.safetensors: not a training checkpoint"):
        trainer(model_a()).load(path)
    load_model_checkpoint(path, model_a())  # as weights alone it loads
