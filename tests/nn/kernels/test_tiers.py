"""Kernel tiers: which tier runs, how it is chosen, and how a tier's implementations fall back."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from tests.helpers import kernel_tiers

import convstack as cs
from convstack.nn.kernels import tiers


def test_the_default_tier_is_compiled_where_numba_imports():
    expected = "numba" if tiers.numba_available() else "numpy"
    out = subprocess.run([sys.executable, "-c", "import convstack; print(convstack.get_kernel_tier())"],
                         env={k: v for k, v in os.environ.items() if k != "CONVSTACK_KERNELS"},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == expected


@pytest.mark.parametrize("value", ["numpy", "NumPy "])
def test_environment_selects_the_reference(value):
    out = subprocess.run([sys.executable, "-c", "import convstack; print(convstack.get_kernel_tier())"],
                         env=dict(os.environ, CONVSTACK_KERNELS=value), capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "numpy"


def test_environment_with_an_unknown_tier_names_it():
    done = subprocess.run(
        [sys.executable, "-c", "import convstack as cs; cs.nn.functional.relu(cs.ones(2)); cs.get_kernel_tier()"],
        env=dict(os.environ, CONVSTACK_KERNELS="cuda"), capture_output=True, text=True)
    assert done.returncode != 0
    assert "CONVSTACK_KERNELS: expected one of numba, numpy, received 'cuda'" in done.stderr


@pytest.mark.parametrize("tier", kernel_tiers())
def test_context_switches_and_restores(tier):
    before = cs.get_kernel_tier()
    with cs.kernel_tier(tier):
        assert cs.get_kernel_tier() == tier
        with cs.kernel_tier("numpy"):
            assert cs.get_kernel_tier() == "numpy"
        assert cs.get_kernel_tier() == tier
    assert cs.get_kernel_tier() == before


def test_unknown_tier_is_refused():
    with pytest.raises(ValueError, match=re.escape("expected one of numba, numpy, received 'gpu'")):
        cs.set_kernel_tier("gpu")


def test_implementations_fall_back_to_the_reference_tier():
    def reference(x):
        return x + 1

    def compiled(x):
        return x + 1.0

    base = tiers.KernelTier("reference-test")
    derived = tiers.KernelTier("derived-test", fallback=base)
    assert derived.implementation(reference) is reference and not derived.implements(reference)
    derived.register(reference, compiled)
    assert derived.implementation(reference) is compiled and derived.implements(reference)
    assert base.implementation(reference) is reference


@pytest.mark.parametrize("tier", kernel_tiers())
def test_a_small_network_agrees_across_tiers(tier, rng):
    model = cs.nn.Sequential(cs.nn.Conv2d(3, 8, 3, padding=1), cs.nn.ReLU(), cs.nn.Conv2d(8, 8, 3, stride=2),
                             cs.nn.Flatten(), cs.nn.Linear(8 * 7 * 7, 5))
    x = rng.standard_normal((4, 3, 16, 16)).astype(np.float32)
    with cs.kernel_tier("numpy"):
        expected = model(cs.tensor(x)).detach().numpy()
    with cs.kernel_tier(tier):
        np.testing.assert_allclose(model(cs.tensor(x)).detach().numpy(), expected, rtol=1e-4, atol=1e-5)
