"""NumPy's OpenBLAS seen from convstack: thread count, and the idle workers' spin time set on import."""

import os
import subprocess
import sys

import numpy as np
import pytest

from convstack import blas

PROBE = """
import numpy as np
import convstack
from convstack import blas
a = np.random.default_rng(0).standard_normal((300, 300)).astype(np.float32)
error = float(np.abs(a @ a - (a.astype(np.float64) @ a.astype(np.float64))).max())
print(blas._timeout_tuned, blas.thread_timeout(), error < 1e-2)
"""


def _probe(**variables):
    env = {k: v for k, v in os.environ.items() if k not in ("CONVSTACK_BLAS", "OPENBLAS_THREAD_TIMEOUT")}
    env.update(variables)
    output = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    tuned, timeout, correct = output.stdout.split()
    return tuned == "True", None if timeout == "None" else int(timeout), correct == "True"


def _openblas_or_skip():
    if blas.loaded_openblas() is None or blas.thread_timeout() is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS exposing its thread server here")


def test_import_shortens_the_workers_spin_and_gemm_still_agrees():
    _openblas_or_skip()
    tuned, timeout, correct = _probe()
    assert tuned and timeout == blas.THREAD_TIMEOUT and correct


def test_the_users_variable_and_the_opt_out_leave_openblas_alone():
    _openblas_or_skip()
    assert _probe(OPENBLAS_THREAD_TIMEOUT="15")[:2] == (False, 15)
    tuned, timeout, correct = _probe(CONVSTACK_BLAS="default")
    assert not tuned and timeout == 0 and correct  # 0: OpenBLAS's built-in 2**28 cycles


def test_tune_refuses_when_the_user_chose(monkeypatch):
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "24")
    assert blas.tune_thread_timeout() is False
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT")
    monkeypatch.setenv("CONVSTACK_BLAS", "default")
    assert blas.tune_thread_timeout() is False


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
