"""convstack.set_num_threads: one setting for Numba's and OpenBLAS's threads."""

import re

import pytest

import convstack as cs
from convstack import blas


def test_sets_both_pools_and_reads_back():
    numba = pytest.importorskip("numba")
    before = cs.get_num_threads()
    try:
        assert cs.set_num_threads(1) == 1
        assert cs.get_num_threads() == 1
        assert numba.get_num_threads() == 1
        if blas.threads() is not None:
            assert blas.threads() == 1
        assert cs.set_num_threads() == cs.threads.available_cores()  # None: the cores available
        assert numba.get_num_threads() == min(cs.threads.available_cores(), numba.config.NUMBA_NUM_THREADS)
    finally:
        cs.set_num_threads(before)


@pytest.mark.parametrize("count", [0, -2, 1.5, True, "2"])
def test_refuses_what_is_not_a_positive_integer(count):
    message = ("set_num_threads: invalid value for argument `count`: expected a positive integer or None, "
               f"received {count!r}")
    with pytest.raises(ValueError, match=re.escape(message)):
        cs.set_num_threads(count)
