"""normalize, cosine_similarity and pairwise_distance: parity with PyTorch (values and gradients) over
norms, dims, broadcasting, 0-D, empty and near-zero inputs; finite differences; errors."""

import doctest
import importlib
import math

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
import convstack.nn.functional as F

EXACT = dict(rtol=1e-10, atol=1e-12)
NORMS = [2.0, 1.0, 3.0, 0.5, math.inf, -math.inf, 0.0, -1.5]


def _torch_functional():
    return pytest.importorskip("torch").nn.functional


@pytest.mark.parametrize("p", NORMS)
@pytest.mark.parametrize("dim, shape", [(1, (3, 4)), (0, (4, 3)), (-1, (2, 3, 5)), (0, (5,)), (0, ()), (-1, ())])
def test_normalize_matches_torch(p, dim, shape, rng):
    TF = _torch_functional()
    check_against_torch(lambda x: F.normalize(x, p, dim), lambda x: TF.normalize(x, p, dim),
                        [np.asarray(rng.standard_normal(shape) + 0.1)], **EXACT)


def test_normalize_zero_vectors_and_empty_inputs_match_torch(rng):
    TF = _torch_functional()
    x = rng.standard_normal((4, 3))
    x[1] = 0.0  # a zero row: stays zero, gradient divided by eps
    x[2] = [1e-13, 0.0, 0.0]  # a row shorter than eps
    for p in (2.0, 1.0, 3.0):
        check_against_torch(lambda t, p=p: F.normalize(t, p), lambda t, p=p: TF.normalize(t, p), [x], **EXACT)
    check_against_torch(lambda t: F.normalize(t), lambda t: TF.normalize(t), [np.zeros((0, 4))])
    check_against_torch(lambda t: F.normalize(t, dim=0), lambda t: TF.normalize(t, dim=0), [np.zeros((3, 0))])


def test_normalize_ties_share_the_infinity_norm_gradient():
    TF = _torch_functional()
    check_against_torch(lambda t: F.normalize(t, math.inf), lambda t: TF.normalize(t, math.inf),
                        [np.array([[3.0, -3.0, 1.0], [0.5, 2.0, 2.0]])], **EXACT)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, math.inf])
def test_normalize_finite_differences(p, rng):
    check_gradients(lambda x: F.normalize(x, p, 0), [rng.standard_normal((4, 3))])


@pytest.mark.parametrize("shapes, dim", [(((3, 4), (3, 4)), 1), (((3, 4, 1), (1, 4, 5)), 1), (((4,), (4,)), 0),
                                         (((2, 3, 4), (4,)), -1), (((), ()), 0), (((0, 4), (0, 4)), 1),
                                         (((3, 0), (3, 0)), 1)])
def test_cosine_similarity_matches_torch(shapes, dim, rng):
    TF = _torch_functional()
    inputs = [np.asarray(rng.standard_normal(shape)) for shape in shapes]
    check_against_torch(lambda a, b: F.cosine_similarity(a, b, dim), lambda a, b: TF.cosine_similarity(a, b, dim),
                        inputs, **EXACT)


@pytest.mark.parametrize("scale", [1e-5, 1e-10, 0.0])
def test_cosine_similarity_near_zero_vectors_match_torch(scale, rng):
    """Below eps the norm is clamped in value, but PyTorch's gradient still flows through it: so does ours."""
    TF = _torch_functional()
    tiny = rng.standard_normal((3, 4)) * scale
    check_against_torch(lambda a, b: F.cosine_similarity(a, b), lambda a, b: TF.cosine_similarity(a, b),
                        [tiny, rng.standard_normal((3, 4))], rtol=1e-9, atol=1e-12)


def test_cosine_similarity_finite_differences(rng):
    check_gradients(lambda a, b: F.cosine_similarity(a, b, 0),
                    [rng.standard_normal((4, 3)), rng.standard_normal((4, 1))])


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, math.inf, 0.5])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 4), (2, 3, 4)), ((4,), (4,)),
                                    ((), ()), ((0, 4), (0, 4))])
def test_pairwise_distance_matches_torch(shapes, p, keepdim, rng):
    TF = _torch_functional()
    inputs = [np.asarray(rng.standard_normal(shape)) for shape in shapes]
    check_against_torch(lambda a, b: F.pairwise_distance(a, b, p, keepdim=keepdim),
                        lambda a, b: TF.pairwise_distance(a, b, p, keepdim=keepdim), inputs, **EXACT)


def test_pairwise_distance_finite_differences(rng):
    check_gradients(lambda a, b: F.pairwise_distance(a, b, 3.0),
                    [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))])


def test_worked_values():
    np.testing.assert_allclose(F.normalize(cs.tensor([[3.0, 4.0]]), p=1).numpy(), [[3 / 7, 4 / 7]])
    np.testing.assert_allclose(F.cosine_similarity(cs.tensor([1.0, 1.0]), cs.tensor([-2.0, -2.0]), 0).item(), -1.0)
    distance = F.pairwise_distance(cs.tensor([[0.0, 0.0]]), cs.tensor([[3.0, 4.0]]), p=math.inf, eps=0.0)
    np.testing.assert_allclose(distance.numpy(), [4.0])


ERRORS = {
    "normalize-dim": (lambda: F.normalize(cs.ones(4)),
                      "normalize: invalid value for argument `dim`: expected an integer in [-1, 0], received 1 "
                      "(input shape (4,))"),
    "normalize-p": (lambda: F.normalize(cs.ones(2, 2), p="fro"),
                    "normalize: invalid value for argument `p`: expected a real number (or inf), received 'fro'"),
    "normalize-out": (lambda: F.normalize(cs.ones(2, 2), out=cs.ones(2, 2)),
                      "normalize: invalid value for argument `out`: expected None (convstack returns a new tensor), "
                      "received tensor([[1., 1.],\n        [1., 1.]])"),
    "normalize-eps": (lambda: F.normalize(cs.ones(2, 2), eps=-1.0),
                      "normalize: invalid value for argument `eps`: expected a non-negative number, received -1.0"),
    "normalize-empty-inf": (lambda: F.normalize(cs.ones(3, 0), math.inf),
                            "normalize: cannot take the inf norm along dimension 1 of size 0 (it has no identity) "
                            "(input shape (3, 0))"),
    "cosine-broadcast": (lambda: F.cosine_similarity(cs.ones(3, 4), cs.ones(3, 5)),
                         "cosine_similarity: x1 and x2 must broadcast to one shape, received x1 shape (3, 4), x2 "
                         "shape (3, 5)"),
    "cosine-dim": (lambda: F.cosine_similarity(cs.ones(4), cs.ones(4)),
                   "cosine_similarity: invalid value for argument `dim`: expected an integer in [-1, 0], received 1 "
                   "(input shape (4,))"),
    "pairwise-keepdim": (lambda: F.pairwise_distance(cs.ones(3), cs.ones(3), keepdim=1),
                         "pairwise_distance: invalid value for argument `keepdim`: expected True or False, received 1"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors_are_pinned(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message


def test_integer_inputs_are_refused():
    with pytest.raises(TypeError, match="normalize: expected a floating point input, received dtype int64"):
        F.normalize(cs.tensor([[1, 2]]))
    with pytest.raises(TypeError, match="pairwise_distance: expected a floating point x2, received dtype int64"):
        F.pairwise_distance(cs.ones(2), cs.tensor([1, 2]))


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.distance")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
