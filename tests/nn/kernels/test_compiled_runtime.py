"""The compiled tier's runtime: kernels called from two Python threads at once, under every threading layer."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")

# Two Python threads (a DataLoader's prefetch thread beside the training loop) run compiled
# convolutions at the same time; each checks its results against the NumPy reference.
SCRIPT = """
import sys, threading
import numpy as np
import numba
import convstack as cs
import convstack.nn.functional as F
rng = np.random.default_rng(0)
x = rng.standard_normal((8, 8, 16, 16)).astype(np.float32)
w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
with cs.kernel_tier("numpy"):
    expected = F.conv2d(cs.tensor(x), cs.tensor(w), padding=1).numpy()
errors = []
def work():
    try:
        for _ in range(40):
            out = F.conv2d(cs.tensor(x), cs.tensor(w), padding=1).numpy()
            assert np.allclose(out, expected, rtol=1e-4, atol=1e-4)
    except BaseException as error:
        errors.append(repr(error))
threads = [threading.Thread(target=work) for _ in range(2)]
for t in threads: t.start()
work()
for t in threads: t.join()
print(cs.get_kernel_tier(), numba.threading_layer(), len(errors))
sys.exit(1 if errors else 0)
"""


@pytest.mark.parametrize("layer", ["workqueue", "default"])
def test_kernels_from_several_python_threads_at_once(layer):
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
    env.pop("CONVSTACK_KERNELS", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    tier, used, errors = done.stdout.split()
    assert tier == "numba" and errors == "0"
    if layer == "workqueue":
        assert used == "workqueue"  # the layer that aborts on concurrent entry: convstack serialises launches
