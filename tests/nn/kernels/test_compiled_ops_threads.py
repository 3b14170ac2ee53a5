"""The compiled tier's parallel kernels called from several Python threads at once (a DataLoader's prefetch
thread beside the training loop): each call's result as when called alone."""

import threading

import numpy as np
import pytest
from tests.helpers import kernel_tiers

from convstack.nn.kernels import tiers
from convstack.nn.kernels.reference import activation, max_pooling, normalization

pytestmark = pytest.mark.skipif("numba" not in kernel_tiers(), reason="the compiled tier needs Numba")


def _calls(rng):
    """(kernel, arguments) pairs that each take a parallel kernel of the compiled tier."""
    implementation = tiers.get_tier("numba").implementation
    x = rng.standard_normal((32, 8, 24, 24)).astype(np.float32)
    return [
        (implementation(activation.relu_forward), (rng.standard_normal(400_000).astype(np.float32),)),
        (implementation(max_pooling.max_pool_forward), (x, (3, 3), (2, 2), (1, 1), (1, 1), (12, 12), True, True)),
        (implementation(normalization.batch_norm_forward),
         (x, None, None, None, None, True, 0.1, 1e-5, (False, False, False), True)),
    ]


def _first_array(result):
    return result[0] if isinstance(result, tuple) else result


def test_parallel_kernels_from_two_python_threads_at_once(rng):
    calls = _calls(rng)
    alone = [_first_array(kernel(*arguments)) for kernel, arguments in calls]
    failures = []

    def worker(order):
        try:
            for _ in range(15):
                for position in order:
                    kernel, arguments = calls[position]
                    np.testing.assert_array_equal(_first_array(kernel(*arguments)), alone[position])
        except Exception as error:  # noqa: BLE001  (reported by the main thread)
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(order,)) for order in ([0, 1, 2], [2, 1, 0])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[0]
