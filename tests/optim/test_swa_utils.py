"""Weight averaging against torch.optim.swa_utils: SWA and EMA averages of parameters and buffers over a
sequence of model states, custom avg_fn, update_bn's recomputed statistics, the state dict, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

import convstack as cs
from convstack import nn
from convstack.optim import swa_utils

torch = pytest.importorskip("torch")


def _net(lib):
    return lib.Sequential(lib.Conv2d(2, 3, 3), lib.BatchNorm2d(3), lib.ReLU(), lib.Flatten(), lib.Linear(12, 2))


def _array(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _train_step(ours, theirs, seed):
    """Move both models to the same new state: random weights, and a forward pass in training mode
    (which moves the batch-norm statistics and counts the batch)."""
    state = {name: _array(tuple(value.shape), seed + i) for i, (name, value) in enumerate(theirs.named_parameters())}
    with torch.no_grad():
        for name, param in theirs.named_parameters():
            param.copy_(torch.tensor(state[name]))
    ours.load_state_dict({**{k: v.numpy() for k, v in theirs.state_dict().items()}, **state})
    x = _array((4, 2, 4, 4), seed + 100)
    ours(cs.tensor(x)), theirs(torch.tensor(x))


def _assert_same_state(ours, theirs, rtol=1e-6):
    theirs_state = theirs.state_dict()
    assert list(ours.state_dict()) == list(theirs_state)
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value.numpy(), theirs_state[name].numpy(), rtol=rtol, atol=1e-7, err_msg=name)


AVERAGES = {
    "swa": ({}, {}),
    "swa-buffers": ({"use_buffers": True}, {"use_buffers": True}),
    "ema-multi": ({"multi_avg_fn": swa_utils.get_ema_multi_avg_fn(0.8), "use_buffers": True},
                  {"multi_avg_fn": torch.optim.swa_utils.get_ema_multi_avg_fn(0.8), "use_buffers": True}),
    "ema-single": ({"avg_fn": swa_utils.get_ema_avg_fn(0.7)}, {"avg_fn": torch.optim.swa_utils.get_ema_avg_fn(0.7)}),
    "swa-single": ({"avg_fn": swa_utils.get_swa_avg_fn()}, {"avg_fn": torch.optim.swa_utils.get_swa_avg_fn()}),
    "swa-multi": ({"multi_avg_fn": swa_utils.get_swa_multi_avg_fn()},
                  {"multi_avg_fn": torch.optim.swa_utils.get_swa_multi_avg_fn()}),
}


@pytest.mark.parametrize("case", AVERAGES)
def test_averages_match_torch_over_several_updates(case):
    ours_options, theirs_options = AVERAGES[case]
    ours, theirs = _net(nn), _net(torch.nn)
    _train_step(ours, theirs, 0)
    ours_avg = swa_utils.AveragedModel(ours, **ours_options)
    theirs_avg = torch.optim.swa_utils.AveragedModel(theirs, **theirs_options)
    for step in range(4):
        _train_step(ours, theirs, 10 * step)
        ours_avg.update_parameters(ours)
        theirs_avg.update_parameters(theirs)
        _assert_same_state(ours_avg, theirs_avg)
    assert int(ours_avg.n_averaged.numpy()) == 4
    x = _array((2, 2, 4, 4), 7)
    ours_avg.eval(), theirs_avg.eval()
    np.testing.assert_allclose(ours_avg(cs.tensor(x)).detach().numpy(), theirs_avg(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_the_swa_average_is_the_mean_of_the_states():
    model = nn.Linear(3, 2)
    averaged = swa_utils.AveragedModel(model)
    states = []
    for seed in range(5):
        model.load_state_dict({"weight": _array((2, 3), seed), "bias": _array((2,), seed + 50)})
        states.append(model.weight.detach().numpy().copy())
        averaged.update_parameters(model)
    np.testing.assert_allclose(averaged.module.weight.detach().numpy(), np.mean(states, axis=0), rtol=1e-6)
    assert averaged.module.weight is not model.weight  # a copy, trained separately


def test_update_bn_recomputes_the_statistics_like_torch():
    ours, theirs = _net(nn), _net(torch.nn)
    _train_step(ours, theirs, 3)
    batches = [_array((5, 2, 4, 4), seed) * (seed + 1) for seed in range(3)]
    ours.eval(), theirs.eval()
    ours[1].momentum = theirs[1].momentum = 0.3
    swa_utils.update_bn([(cs.tensor(b), cs.tensor([0])) for b in batches], ours)
    torch.optim.swa_utils.update_bn([(torch.tensor(b), torch.tensor([0])) for b in batches], theirs)
    _assert_same_state(ours, theirs, rtol=1e-5)
    assert not ours.training and ours[1].momentum == 0.3 and int(ours[1].num_batches_tracked.numpy()) == 3
    assert ours[0].weight.grad is None  # no graph was built
    swa_utils.update_bn([cs.tensor(b) for b in batches], swa_utils.AveragedModel(ours))  # plain tensors, a wrapper


def test_update_bn_leaves_a_model_without_batch_norm_alone():
    model = nn.Sequential(nn.Linear(2, 2)).eval()
    swa_utils.update_bn([cs.zeros(1, 2)], model)
    assert not model.training


def test_state_dict_keys_equal_torch_and_load_back():
    ours, theirs = swa_utils.AveragedModel(_net(nn)), torch.optim.swa_utils.AveragedModel(_net(torch.nn))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    _assert_same_state(ours, theirs)


@pytest.mark.parametrize("call, kind, message", [
    (lambda: swa_utils.AveragedModel(nn.Linear(2, 2), avg_fn=swa_utils.get_swa_avg_fn(),
                                     multi_avg_fn=swa_utils.get_swa_multi_avg_fn()), ValueError,
     "AveragedModel: invalid value for argument `multi_avg_fn`: expected None when avg_fn is given (only one of the "
     "two)"),
    (lambda: swa_utils.get_ema_multi_avg_fn(1.5), ValueError,
     "get_ema_multi_avg_fn: invalid value for argument `decay`: expected a number in [0, 1], received 1.5"),
    (lambda: swa_utils.AveragedModel("model"), TypeError,
     "AveragedModel: expected a Module to average, received str"),
    (lambda: swa_utils.AveragedModel(nn.Linear(2, 2)).update_parameters(nn.Linear(3, 2)), ValueError,
     "AveragedModel.update_parameters: a tensor of shape (2, 3) does not fit the averaged one of shape (2, 2)"),
])
def test_errors(call, kind, message):
    with pytest.raises(kind, match=re.escape(message)):
        call()
