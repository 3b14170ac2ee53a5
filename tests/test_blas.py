"""NumPy's OpenBLAS seen from convstack: thread count, and the idle workers' spin time (opt-in)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from convstack import blas

PROBE = """
import sys
import numpy as np
from convstack import blas
before = blas.thread_timeout()
applied = blas.tune_thread_timeout(*[int(a) for a in sys.argv[1:]])
a = np.random.default_rng(0).standard_normal((300, 300)).astype(np.float32)
error = float(np.abs(a @ a - (a.astype(np.float64) @ a.astype(np.float64))).max())
print(before, applied, blas.thread_timeout(), error < 1e-2)
"""


def _probe(*args, **variables):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    env.update(variables)
    output = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], env=env, capture_output=True, text=True,
                            check=True)
    before, applied, after, correct = output.stdout.split()
    return int(before), applied == "True", int(after), correct == "True"


def _openblas_or_skip():
    if blas.loaded_openblas() is None or blas.thread_timeout() is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS exposing its thread server here")


def test_tune_restarts_the_workers_with_the_shorter_spin_and_gemm_still_agrees():
    _openblas_or_skip()
    assert _probe() == (0, True, blas.THREAD_TIMEOUT, True)  # 0: OpenBLAS's built-in 2**28 cycles
    assert _probe(16) == (0, True, 16, True)


def test_the_users_variable_wins():
    _openblas_or_skip()
    assert _probe(OPENBLAS_THREAD_TIMEOUT="15") == (15, False, 15, True)
    assert _probe(15, OPENBLAS_THREAD_TIMEOUT="15")[1:3] == (True, 15)  # the same value: nothing to refuse


def test_exponent_outside_openblas_range_is_refused_by_name():
    with pytest.raises(ValueError, match=r"tune_thread_timeout: invalid value for argument `exponent`.*received 40"):
        blas.tune_thread_timeout(40)


def test_thread_count_round_trips():
    before = blas.threads()
    if before is None:
        pytest.skip("NumPy's BLAS does not expose its thread count here")
    try:
        assert blas.set_threads(1) and blas.threads() == 1
        a = np.ones((64, 64), np.float32)
        assert (a @ a == 64).all()
    finally:
        blas.set_threads(before)
    assert blas.threads() == before
