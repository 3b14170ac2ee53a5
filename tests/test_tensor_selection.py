"""gather, scatter, scatter_add, index_select, masked_fill, where, sort, argsort, topk, cumsum and clamp with
tensor bounds: values and gradients against PyTorch, float64 finite differences, NaN and tie orders, errors,
and the free functions equal the methods."""

import re

import numpy as np
import pytest

import convstack as cs
from tests.helpers import check_against_torch, check_gradients


def _torch():
    return pytest.importorskip("torch")


def _array(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _indices(high, shape, seed=1):
    return np.random.default_rng(seed).integers(0, high, shape).astype(np.int64)


GATHER = {
    "dim0": ((4, 5), 0, (3, 5)),
    "dim1": ((4, 5), 1, (4, 7)),  # longer than the input along dim: repeats
    "smaller-elsewhere": ((4, 5, 3), 2, (2, 3, 5)),
    "negative-dim": ((3, 4), -1, (3, 2)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", GATHER)
def test_gather_matches_torch(case, dtype):
    torch = _torch()
    shape, dim, index_shape = GATHER[case]
    index = _indices(shape[dim], index_shape)
    check_against_torch(lambda x, i: x.gather(dim, i), lambda x, i: torch.gather(x, dim, i),
                        [_array(*shape, dtype=dtype), index])


@pytest.mark.parametrize("case", ["scatter", "scatter-value", "scatter_add"])
@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_family_matches_torch(case, dim):
    torch = _torch()
    x = _array(4, 5)
    src = _array(3, 4, seed=2)  # (a larger src, of which the index's block is used, has its own test)
    if case == "scatter":  # distinct positions along dim, so no write order matters
        index = np.argsort(np.random.default_rng(3).random((4, 5)), axis=dim)[:3, :4]
        check_against_torch(lambda a, s: a.scatter(dim, cs.tensor(index), s),
                            lambda a, s: a.scatter(dim, torch.tensor(index), s), [x, src])
    elif case == "scatter-value":
        index = _indices(x.shape[dim], (3, 4))
        check_against_torch(lambda a: a.scatter(dim, cs.tensor(index), 2.5),
                            lambda a: a.scatter(dim, torch.tensor(index), 2.5), [x])
    else:
        index = _indices(x.shape[dim], (3, 4))  # repeats accumulate
        check_against_torch(lambda a, s: a.scatter_add(dim, cs.tensor(index), s),
                            lambda a, s: a.scatter_add(dim, torch.tensor(index), s), [x, src])


@pytest.mark.parametrize("dim, index", [(0, [2, 0, 2, 1]), (1, [3]), (-1, [3, 3, 0]), (2, [1, 0])])
def test_index_select_matches_torch(dim, index):
    torch = _torch()
    check_against_torch(lambda x: x.index_select(dim, cs.tensor(index)),
                        lambda x: x.index_select(dim, torch.tensor(index)), [_array(3, 4, 5)])


@pytest.mark.parametrize("mask_shape", [(3, 4), (4,), (3, 1)])
def test_masked_fill_matches_torch_with_a_number_and_with_a_tensor_value(mask_shape):
    torch = _torch()
    mask = np.random.default_rng(4).random(mask_shape) > 0.5
    check_against_torch(lambda x: x.masked_fill(cs.tensor(mask), -1.5),
                        lambda x: x.masked_fill(torch.tensor(mask), -1.5), [_array(3, 4)])
    check_against_torch(lambda x, v: x.masked_fill(cs.tensor(mask), v),
                        lambda x, v: x.masked_fill(torch.tensor(mask), v), [_array(3, 4), np.array(0.7)])


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4), (3, 4)), ((3, 1), (4,), (3, 4)), ((4,), (3, 4), ())])
def test_where_matches_torch_with_broadcasting(shapes):
    torch = _torch()
    condition = np.random.default_rng(5).random(shapes[0]) > 0.4
    check_against_torch(lambda a, b: cs.where(cs.tensor(condition), a, b),
                        lambda a, b: torch.where(torch.tensor(condition), a, b),
                        [_array(*shapes[1]), _array(*shapes[2], seed=1)])


def test_where_with_a_number_takes_the_tensors_dtype_and_method_form():
    torch = _torch()
    condition = np.array([True, False, True])
    check_against_torch(lambda a: cs.where(cs.tensor(condition), a, 0.0),
                        lambda a: torch.where(torch.tensor(condition), a, 0.0), [_array(3)])
    x = cs.tensor(_array(3))
    assert cs.where(cs.tensor(condition), 1.0, x).dtype == np.float64
    np.testing.assert_array_equal(x.where(cs.tensor(condition), 0.0).numpy(), np.where(condition, x.numpy(), 0))
    rows, cols = cs.where(cs.tensor([[True, False], [False, True]]))
    assert rows.tolist() == [0, 1] and cols.tolist() == [0, 1] and rows.dtype == np.int64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dim, descending", [(-1, False), (0, True), (1, False), (1, True)])
def test_sort_and_argsort_match_torch(dim, descending, dtype):
    torch = _torch()
    x = _array(4, 6, 3, dtype=dtype)
    check_against_torch(lambda t: t.sort(dim, descending), lambda t: t.sort(dim, descending), [x])
    np.testing.assert_array_equal(cs.argsort(cs.tensor(x), dim, descending).numpy(),
                                  torch.argsort(torch.tensor(x), dim, descending).numpy())


def test_sort_is_stable_and_puts_nan_where_torch_does():
    torch = _torch()
    x = np.array([[1.0, np.nan, 3.0, 2.0, 2.0, -np.inf, np.inf, 2.0]])
    for descending in (False, True):
        ours = cs.tensor(x).sort(descending=descending)
        theirs = torch.tensor(x).sort(descending=descending, stable=True)
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    ints = np.array([3, 1, 3, 0, 1], dtype=np.int64)
    assert cs.tensor(ints).sort(descending=True).indices.tolist() == \
        torch.tensor(ints).sort(descending=True, stable=True).indices.tolist()


@pytest.mark.parametrize("k, dim, largest", [(1, -1, True), (3, 1, True), (2, 0, False), (5, 1, False), (0, 1, True)])
def test_topk_matches_torch(k, dim, largest):
    check_against_torch(lambda t: tuple(t.topk(k, dim, largest)), lambda t: tuple(t.topk(k, dim, largest)),
                        [_array(4, 5)])


def test_topk_counts_nan_as_largest_and_returns_kept_ties_in_index_order():
    torch = _torch()
    x = np.array([[0.5, np.nan, 3.0, -1.0, 3.0, 2.0, 3.0, -7.0]])
    for k, largest in ((2, True), (3, False), (7, True)):
        ours, theirs = cs.tensor(x).topk(k, largest=largest), torch.tensor(x).topk(k, largest=largest)
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    assert cs.tensor(x).topk(4).indices.tolist() == [[1, 2, 4, 6]]  # every 3.0 kept: in index order


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum_matches_torch(dim):
    torch = _torch()
    check_against_torch(lambda t: t.cumsum(dim), lambda t: t.cumsum(dim), [_array(3, 4, 2)])
    check_against_torch(lambda t: cs.cumsum(t, dim, dtype=cs.float64),
                        lambda t: torch.cumsum(t, dim, dtype=torch.float64), [_array(3, 4, 2, dtype=np.float32)])


def test_cumsum_of_integers_and_booleans_is_int64_like_torch():
    assert cs.tensor(np.array([200, 100], np.uint8)).cumsum(0).tolist() == [200, 300]
    out = cs.tensor([True, True, False]).cumsum(0)
    assert out.dtype == np.int64 and out.tolist() == [1, 2, 2]


@pytest.mark.parametrize("bounds", ["min", "max", "both", "crossed", "min-number-max-tensor"])
def test_clamp_with_tensor_bounds_matches_torch(bounds):
    torch = _torch()
    x = _array(3, 4) * 2
    low, high = _array(4, seed=1) - 0.5, _array(3, 1, seed=2) + 0.5
    if bounds == "crossed":
        low, high = high + 1.0, low - 1.0  # min > max somewhere: the output is max there
    if bounds == "min":
        check_against_torch(lambda a, lo: a.clamp(min=lo), lambda a, lo: a.clamp(min=lo), [x, low])
    elif bounds == "max":
        check_against_torch(lambda a, hi: a.clamp(max=hi), lambda a, hi: a.clamp(max=hi), [x, high])
    elif bounds == "min-number-max-tensor":
        check_against_torch(lambda a, hi: cs.clamp(a, -0.3, hi),
                            lambda a, hi: torch.clamp(a, torch.tensor(-0.3, dtype=a.dtype), hi), [x, high])
    else:
        check_against_torch(lambda a, lo, hi: a.clamp(lo, hi), lambda a, lo, hi: a.clamp(lo, hi), [x, low, high])


FINITE_DIFFERENCES = {
    "gather": (lambda x: x.gather(1, cs.tensor(_indices(4, (3, 6)))), (3, 4)),
    "scatter": (lambda x, s: x.scatter(0, cs.tensor([[2, 0, 1]]), s), [(3, 3), (2, 4)]),
    "scatter_add": (lambda x, s: x.scatter_add(1, cs.tensor(_indices(3, (2, 5))), s), [(2, 3), (2, 5)]),
    "index_select": (lambda x: x.index_select(0, cs.tensor([1, 1, 0])), (2, 3)),
    "masked_fill": (lambda x, v: x.masked_fill(cs.tensor([[True, False, True]]), v), [(2, 3), ()]),
    "sort": (lambda x: x.sort(1, descending=True).values, (3, 4)),
    "topk": (lambda x: x.topk(2, 0).values, (4, 3)),
    "cumsum": (lambda x: x.cumsum(1), (3, 4)),
    "clamp-tensor": (lambda x, lo, hi: x.clamp(lo, hi), [(3, 4), (4,), (3, 1)]),
}


@pytest.mark.parametrize("name", FINITE_DIFFERENCES)
def test_finite_differences(name):
    fn, shapes = FINITE_DIFFERENCES[name]
    shapes = shapes if isinstance(shapes, list) else [shapes]
    arrays = [_array(*shape, seed=i) if shape else np.array(0.3) for i, shape in enumerate(shapes)]
    if name == "clamp-tensor":  # keep x away from the bounds, where clamp has no derivative
        arrays = [arrays[0] * 3, arrays[1] - 1.0, arrays[2] + 1.0]
    check_gradients(fn, arrays)


def test_scatter_reads_the_leading_block_of_a_larger_src():
    x, src = cs.zeros(2, 3, dtype=cs.float64, requires_grad=True), cs.tensor(_array(3, 4), requires_grad=True)
    index = cs.tensor([[1, 0, 1]])
    out = x.scatter(0, index, src)
    expected = np.zeros((2, 3))
    expected[[1, 0, 1], [0, 1, 2]] = src.detach().numpy()[0, :3]
    np.testing.assert_array_equal(out.detach().numpy(), expected)
    out.sum().backward()
    grad = np.zeros((3, 4))
    grad[0, :3] = 1
    np.testing.assert_array_equal(src.grad.numpy(), grad)
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 0, 1], [0, 1, 0]])


def test_free_functions_equal_the_methods():
    x = cs.tensor(_array(3, 4))
    index = cs.tensor(_indices(3, (2, 4)))
    pairs = [
        (cs.gather(x, 0, index), x.gather(0, index)),
        (cs.scatter(x, 0, index, 1.0), x.scatter(0, index, 1.0)),
        (cs.scatter(x, 0, index, value=1.0), x.scatter(0, index, 1.0)),
        (cs.scatter_add(x, 0, index, x), x.scatter_add(0, index, x)),
        (cs.index_select(x, 1, cs.tensor([0, 2])), x.index_select(1, cs.tensor([0, 2]))),
        (cs.masked_fill(x, x > 0, 0.0), x.masked_fill(x > 0, 0.0)),
        (cs.sort(x).values, x.sort().values),
        (cs.argsort(x, 0), x.argsort(0)),
        (cs.topk(x, 2).indices, x.topk(2).indices),
        (cs.cumsum(x, 1), x.cumsum(1)),
        (cs.clip(x, -0.5, 0.5), x.clamp(-0.5, 0.5)),
    ]
    for free, method in pairs:
        np.testing.assert_array_equal(free.numpy(), method.numpy())


ERRORS = [
    (lambda: cs.zeros(3, 4).gather(1, cs.tensor([[5]])), ValueError,
     "gather: invalid value for argument `index`: expected indices in [0, 4) along dimension 1, received 5"),
    (lambda: cs.zeros(3, 4).gather(1, cs.tensor([0, 1])), ValueError,
     "gather: invalid value for argument `index`: expected a 2-D tensor (as many dimensions as the input), received "
     "'shape (2,)' (input shape (3, 4))"),
    (lambda: cs.zeros(3, 4).gather(0, cs.zeros(2, 5, dtype=cs.int64)), ValueError,
     "gather: invalid value for argument `index`: expected sizes no larger than the input's (except along dim) and "
     "the src's, received 'shape (2, 5)' (input shape (3, 4))"),
    (lambda: cs.zeros(3, 4).gather(2, cs.zeros(3, 4, dtype=cs.int64)), IndexError,
     "gather: dimension out of range (expected to be in range of [-2, 1], but got 2)"),
    (lambda: cs.zeros(3, 4).gather(0, cs.zeros(3, 4)), TypeError,
     "gather: expected an integer tensor as `index`, received dtype float32"),
    (lambda: cs.zeros(3, 4).scatter_add(0, cs.zeros(1, 4, dtype=cs.int64), cs.zeros(1, 3)), ValueError,
     "scatter_add: invalid value for argument `index`: expected sizes no larger than the input's (except along dim) "
     "and the src's, received 'shape (1, 4)' (input shape (3, 4), src shape (1, 3))"),
    (lambda: cs.zeros(3).index_select(0, cs.tensor([[0]])), ValueError,
     "index_select: invalid value for argument `index`: expected a 0-D or 1-D tensor, received 'shape (1, 1)'"),
    (lambda: cs.zeros(3).index_select(0, cs.tensor([-1])), ValueError,
     "index_select: invalid value for argument `index`: expected indices in [0, 3) along dimension 0, received -1"),
    (lambda: cs.zeros(3, 4).masked_fill(cs.zeros(3, dtype=cs.int64) > 0, 1.0), ValueError,
     "masked_fill: invalid value for argument `mask`: expected a boolean tensor that broadcasts to the input's shape "
     "(3, 4), received 'shape (3,)'"),
    (lambda: cs.zeros(3).masked_fill(cs.tensor([1, 0, 1]), 1.0), TypeError,
     "masked_fill: expected a boolean mask, received dtype int64"),
    (lambda: cs.zeros(3).masked_fill(cs.zeros(3) > 0, cs.zeros(2)), ValueError,
     "masked_fill: invalid value for argument `value`: expected a number or a 0-D tensor, received 'a tensor of "
     "shape (2,)'"),
    (lambda: cs.where(cs.tensor([1, 0]), cs.ones(2), cs.zeros(2)), TypeError,
     "where: expected a boolean condition, received dtype int64"),
    (lambda: cs.zeros(2, 3).topk(4), ValueError,
     "topk: invalid value for argument `k`: expected an integer in [0, 3] (the size of dimension 1), received 4 "
     "(input shape (2, 3))"),
    (lambda: cs.zeros(2, 3).sort(descending=1), ValueError,
     "sort: invalid value for argument `descending`: expected True or False, received 1"),
    (lambda: cs.zeros(2, 3).cumsum(3), IndexError,
     "cumsum: dimension out of range (expected to be in range of [-2, 1], but got 3)"),
    (lambda: cs.zeros(2).clamp(), ValueError, "clamp: at least one of `min` and `max` must be given"),
]


@pytest.mark.parametrize("call, kind, message", ERRORS)
def test_errors(call, kind, message):
    with pytest.raises(kind, match=re.escape(message)):
        call()
