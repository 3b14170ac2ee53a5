"""Layer, group and instance normalisation: parity with PyTorch (values, gradients, running statistics),
finite differences, errors."""

import doctest
import importlib
import re

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
import convstack.nn.functional as F

TOLERANCES = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-11)}


def _torch():
    return pytest.importorskip("torch")


def _array(shape, seed=0, dtype=np.float64, scale=2.0, offset=0.5):
    return (np.random.default_rng(seed).standard_normal(shape) * scale + offset).astype(dtype)


def _affine(shape, affine, dtype, seed=1):
    """[weight, bias] arrays for the inputs list ('none', 'weight' or 'both')."""
    if affine == "none":
        return []
    arrays = [_array(shape, seed, dtype, 0.5, 1.0)]
    if affine == "both":
        arrays.append(_array(shape, seed + 1, dtype, 0.5, 0.0))
    return arrays


LAYER_CASES = [((4, 5), (5,)), ((2, 3, 4, 5), (4, 5)), ((2, 3, 4), (2, 3, 4)), ((3, 1, 6), 6)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", ["none", "weight", "both"])
@pytest.mark.parametrize("shape, normalized_shape", LAYER_CASES)
def test_layer_norm_matches_torch(shape, normalized_shape, affine, dtype):
    torch = _torch()
    trailing = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    check_against_torch(
        lambda x, *wb: F.layer_norm(x, normalized_shape, *wb, eps=1e-5),
        lambda x, *wb: torch.nn.functional.layer_norm(x, trailing, *wb, eps=1e-5),
        [_array(shape, dtype=dtype), *_affine(trailing, affine, dtype)],
        **TOLERANCES[dtype],
    )


GROUP_CASES = [((2, 6, 4, 4), 1), ((2, 6, 4, 4), 3), ((2, 6, 4, 4), 6), ((3, 4, 5), 2), ((2, 4), 2),
               ((2, 4, 2, 3, 2), 4)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", ["none", "weight", "both"])
@pytest.mark.parametrize("shape, groups", GROUP_CASES)
def test_group_norm_matches_torch(shape, groups, affine, dtype):
    torch = _torch()
    check_against_torch(
        lambda x, *wb: F.group_norm(x, groups, *wb, eps=1e-5),
        lambda x, *wb: torch.nn.functional.group_norm(x, groups, *wb, eps=1e-5),
        [_array(shape, dtype=dtype), *_affine((shape[1],), affine, dtype)],
        **TOLERANCES[dtype],
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", ["none", "both"])
@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 3, 4, 5), (1, 2, 3, 3, 2)])
def test_instance_norm_matches_torch_and_updates_running_statistics_alike(shape, affine, dtype):
    torch = _torch()
    channels = shape[1]
    ours_stats = [np.zeros(channels, dtype), np.ones(channels, dtype)]
    theirs_stats = [torch.zeros(channels, dtype=torch.from_numpy(np.zeros(1, dtype)).dtype), None]
    theirs_stats[1] = torch.ones_like(theirs_stats[0])
    for step in range(2):
        wb = _affine((channels,), affine, dtype, seed=step + 3)
        check_against_torch(
            lambda x, *p: F.instance_norm(x, *ours_stats, *(p or (None, None)), momentum=0.3),
            lambda x, *p: torch.nn.functional.instance_norm(x, *theirs_stats, *(p or (None, None)), momentum=0.3),
            [_array(shape, seed=step, dtype=dtype), *wb],
            **TOLERANCES[dtype],
        )
    for ours, theirs in zip(ours_stats, theirs_stats):
        np.testing.assert_allclose(ours, theirs.numpy(), **TOLERANCES[dtype])


def test_instance_norm_with_running_statistics_only_matches_torch():
    torch = _torch()
    mean, var = _array(3, seed=5), np.abs(_array(3, seed=6)) + 0.5
    weight, bias = _array(3, seed=7), _array(3, seed=8)
    check_against_torch(
        lambda x, w, b: F.instance_norm(x, mean, var, w, b, use_input_stats=False),
        lambda x, w, b: torch.nn.functional.instance_norm(x, torch.tensor(mean), torch.tensor(var), w, b,
                                                          use_input_stats=False),
        [_array((2, 3, 4, 4)), weight, bias], **TOLERANCES[np.float64],
    )


def test_float32_inputs_far_from_zero_keep_their_precision():
    torch = _torch()
    x = _array((2, 4, 8, 8), dtype=np.float32, scale=1.0, offset=1000.0)
    expected = torch.nn.functional.group_norm(torch.tensor(x, dtype=torch.float64), 2).numpy()
    np.testing.assert_allclose(F.group_norm(cs.tensor(x), 2).numpy(), expected, rtol=1e-3, atol=1e-3)


FINITE_DIFFERENCES = {
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (3, 4), w, b), [(2, 3, 4), (3, 4), (3, 4)]),
    "group_norm": (lambda x, w, b: F.group_norm(x, 2, w, b), [(2, 4, 3), (4,), (4,)]),
    "instance_norm": (lambda x, w, b: F.instance_norm(x, None, None, w, b), [(2, 3, 2, 3), (3,), (3,)]),
}


@pytest.mark.parametrize("name", FINITE_DIFFERENCES)
def test_finite_differences(name):
    fn, shapes = FINITE_DIFFERENCES[name]
    check_gradients(fn, [_array(shape, seed=i) for i, shape in enumerate(shapes)])


def test_each_sample_is_normalised_on_its_own():
    x = cs.tensor(_array((3, 4, 5, 5)))
    whole = F.group_norm(x, 2).numpy()
    alone = F.group_norm(x[1:2], 2).numpy()
    np.testing.assert_allclose(whole[1:2], alone, rtol=1e-12)
    groups = whole.reshape(3, 2, -1)
    np.testing.assert_allclose(groups.mean(axis=2), 0, atol=1e-12)
    np.testing.assert_allclose(groups.var(axis=2), 1, rtol=1e-4)


ERRORS = {
    "layer_norm-shape": (
        lambda: F.layer_norm(cs.zeros(2, 3), (4,)),
        "layer_norm: invalid value for argument `normalized_shape`: expected the input's trailing sizes, e.g. (3,), "
        "received (4,) (input shape (2, 3))",
    ),
    "layer_norm-weight": (
        lambda: F.layer_norm(cs.zeros(2, 3), 3, cs.ones(2)),
        "layer_norm: invalid value for argument `weight`: expected a float32 tensor of shape (3,), received "
        "'float32 of shape (2,)' (input shape (2, 3))",
    ),
    "group_norm-groups": (
        lambda: F.group_norm(cs.zeros(2, 6, 3), 4),
        "group_norm: invalid value for argument `num_groups`: expected a positive divisor of the 6 channels, "
        "received 4 (input shape (2, 6, 3))",
    ),
    "group_norm-rank": (
        lambda: F.group_norm(cs.zeros(6), 2),
        "group_norm: expected an input of at least 2 dimensions (N, C, *), received shape (6,)",
    ),
    "group_norm-eps": (
        lambda: F.group_norm(cs.zeros(2, 6), 2, eps=-1.0),
        "group_norm: invalid value for argument `eps`: expected a non-negative number, received -1.0",
    ),
    "instance_norm-rank": (
        lambda: F.instance_norm(cs.zeros(2, 3)),
        "instance_norm: expected an input of at least 3 dimensions (N, C, *spatial), received shape (2, 3)",
    ),
    "instance_norm-single-element": (
        lambda: F.instance_norm(cs.zeros(1, 3, 1)),
        "instance_norm: expected more than 1 spatial element when training, received input shape (1, 3, 1)",
    ),
    "instance_norm-running": (
        lambda: F.instance_norm(cs.zeros(2, 3, 4), cs.zeros(2), cs.ones(3)),
        "instance_norm: invalid value for argument `running_mean`: expected a float tensor of shape (3,), "
        "received (2,)",
    ),
    "instance_norm-no-stats": (
        lambda: F.instance_norm(cs.zeros(2, 3, 4), use_input_stats=False),
        "instance_norm: invalid value for argument `running_mean`: expected running statistics when "
        "use_input_stats=False, received None",
    ),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="layer_norm: expected a floating point input, received dtype int64"):
        F.layer_norm(cs.tensor([[1, 2]]), 2)


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.per_sample_normalization")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
