"""The glibc allocator settings: opt-in (never on import), opt-out by environment, and what they are for."""

import os
import subprocess
import sys

import pytest

from convstack import allocator

# Allocate and free a step-like mix of array sizes (200 KiB to 8 MiB) and count the page faults per round.
PROBE = """
import resource, sys
import numpy as np
import convstack, convstack.allocator
tune = sys.argv[1] == "tune"
if tune:
    convstack.allocator.tune()
def step():
    arrays = [np.ones(n, np.float32) for n in (300_000, 2_000_000, 50_000, 1_000_000)]
    del arrays
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(convstack.allocator.is_tuned(), (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def _probe(env_value, tune=True):
    env = dict(os.environ)
    env.pop("CONVSTACK_MALLOC", None)
    if env_value is not None:
        env["CONVSTACK_MALLOC"] = env_value
    command = [sys.executable, "-c", PROBE, "tune" if tune else "leave"]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    tuned, faults = out.split()
    return tuned == "True", float(faults)


@pytest.mark.skipif(allocator._glibc() is None, reason="the settings are glibc's")
def test_tuned_on_request_so_a_repeated_step_maps_no_new_pages():
    tuned, faults = _probe(None)
    assert tuned
    assert faults < 8  # glibc's defaults unmap and re-fault these arrays: ~80 faults a round


@pytest.mark.skipif(allocator._glibc() is None, reason="the settings are glibc's")
def test_importing_convstack_leaves_the_allocator_alone():
    tuned, faults = _probe(None, tune=False)
    assert not tuned
    assert faults > 20  # glibc's defaults: the arrays are mapped afresh every round


def test_environment_opts_out():
    tuned, _ = _probe("default")
    assert not tuned
