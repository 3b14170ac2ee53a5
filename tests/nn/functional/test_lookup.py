"""one_hot and embedding: parity with PyTorch (values and the weight's gradient with repeated indices,
padding_idx, scale_grad_by_freq, max_norm renormalisation), 0-D and empty inputs, errors."""

import doctest
import importlib
import math

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
import convstack.nn.functional as F


def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("indices, num_classes", [([0, 2, 1], -1), ([[1, 3], [0, 0]], 5), (2, 4), ([], 3),
                                                  (np.zeros((2, 0), dtype=np.int64), 2)])
def test_one_hot_matches_torch(indices, num_classes):
    torch = _torch()
    indices = np.asarray(indices, dtype=np.int64)
    ours = F.one_hot(cs.tensor(indices), num_classes)
    theirs = torch.nn.functional.one_hot(torch.tensor(indices), num_classes)
    assert ours.dtype == np.int64
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert ours.shape == tuple(theirs.shape)


def test_one_hot_takes_any_integer_dtype():
    np.testing.assert_array_equal(F.one_hot(cs.tensor(np.array([1], dtype=np.int32)), 3).numpy(), [[0, 1, 0]])


CASES = {
    "plain": dict(),
    "padding": dict(padding_idx=1),
    "padding-negative": dict(padding_idx=-2),
    "scale-by-frequency": dict(scale_grad_by_freq=True),
    "padding-and-frequency": dict(padding_idx=0, scale_grad_by_freq=True),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("indices", [[[1, 4, 1], [0, 1, 3]], [2, 2, 2, 0], 3, np.zeros((0, 2), dtype=np.int64)],
                         ids=["2-d", "repeats", "0-d", "empty"])
def test_embedding_matches_torch(case, indices, rng):
    torch = _torch()
    options = CASES[case]
    indices = np.asarray(indices, dtype=np.int64)
    check_against_torch(lambda w: F.embedding(cs.tensor(indices), w, **options),
                        lambda w: torch.nn.functional.embedding(torch.tensor(indices), w, **options),
                        [rng.standard_normal((5, 3))], rtol=1e-12, atol=1e-12)


def test_embedding_finite_differences(rng):
    # padding_idx and scale_grad_by_freq alter the gradient on purpose: checked against PyTorch above
    indices = cs.tensor([[1, 4, 1], [0, 1, 3]])
    check_gradients(lambda w: F.embedding(indices, w), [rng.standard_normal((5, 3))])


@pytest.mark.parametrize("max_norm, norm_type", [(1.0, 2.0), (0.5, 1.0), (2.0, math.inf), (1.0, 3.0)])
def test_embedding_max_norm_renormalises_like_torch(max_norm, norm_type, rng):
    torch = _torch()
    weight = rng.standard_normal((6, 4)) * 2
    indices = np.array([[1, 1, 2], [5, 0, 2]])
    ours, theirs = cs.tensor(weight.copy(), requires_grad=True), torch.tensor(weight.copy(), requires_grad=True)
    out = F.embedding(cs.tensor(indices), ours, max_norm=max_norm, norm_type=norm_type)
    with torch.no_grad():  # PyTorch renormalises a leaf in place only outside autograd's view
        reference = torch.nn.functional.embedding(torch.tensor(indices), theirs, max_norm=max_norm,
                                                  norm_type=norm_type)
    np.testing.assert_allclose(out.detach().numpy(), reference.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)  # same rows rescaled
    np.testing.assert_array_equal(ours.detach().numpy()[[3, 4]], weight[[3, 4]])  # rows not looked up: untouched


def test_embedding_gradient_adds_repeated_rows():
    weight = cs.zeros(3, 2, requires_grad=True)
    F.embedding(cs.tensor([2, 2, 0, 2]), weight).sum().backward()
    np.testing.assert_array_equal(weight.grad.numpy(), [[1, 1], [0, 0], [3, 3]])


ERRORS = {
    "one-hot-negative": (lambda: F.one_hot(cs.tensor([-1, 2]), 4),
                         "one_hot: class values must be non-negative, received -1"),
    "one-hot-large": (lambda: F.one_hot(cs.tensor([5, 2]), 4),
                      "one_hot: class values must be smaller than num_classes 4, received 5"),
    "one-hot-empty": (lambda: F.one_hot(cs.tensor(np.zeros(0, dtype=np.int64))),
                      "one_hot: cannot infer the number of classes from an empty tensor; pass num_classes"),
    "one-hot-classes": (lambda: F.one_hot(cs.tensor([1]), -2),
                        "one_hot: invalid value for argument `num_classes`: expected a non-negative integer, or -1 to "
                        "infer it, received -2"),
    "embedding-weight": (lambda: F.embedding(cs.tensor([1]), cs.ones(5)),
                         "embedding: expected a 2-D weight (num_embeddings, embedding_dim), received weight shape "
                         "(5,)"),
    "embedding-padding": (lambda: F.embedding(cs.tensor([1]), cs.ones(5, 3), padding_idx=5),
                          "embedding: invalid value for argument `padding_idx`: expected None or an integer in [-5, 4] "
                          "(within num_embeddings 5), received 5"),
    "embedding-sparse": (lambda: F.embedding(cs.tensor([1]), cs.ones(5, 3), sparse=True),
                         "embedding: invalid value for argument `sparse`: expected False (convstack has dense "
                         "gradients only), received True"),
    "embedding-norm-type": (lambda: F.embedding(cs.tensor([1]), cs.ones(5, 3), max_norm=1.0, norm_type=0),
                            "embedding: invalid value for argument `norm_type`: expected a non-zero number (or inf), "
                            "received 0"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors_are_pinned(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message


def test_index_and_dtype_errors():
    with pytest.raises(IndexError, match=r"embedding: index 5 is out of range for 5 embeddings \(expected indices in "
                                         r"\[0, 5\)\)"):
        F.embedding(cs.tensor([1, 5]), cs.ones(5, 3))
    with pytest.raises(IndexError, match="embedding: index -1 is out of range"):
        F.embedding(cs.tensor([-1]), cs.ones(5, 3))
    with pytest.raises(TypeError, match="embedding: expected integer indices, received dtype float32"):
        F.embedding(cs.tensor([1.0]), cs.ones(5, 3))
    with pytest.raises(TypeError, match="one_hot: expected integer indices, received dtype float32"):
        F.one_hot(cs.tensor([1.0]), 3)


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.lookup")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
