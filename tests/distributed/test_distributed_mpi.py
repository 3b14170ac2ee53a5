"""Two ranks under mpiexec against one process: collectives, DistributedDataParallel (a plain convnet
within 1e-5, SyncBatchNorm within 1e-4, identical parameters on every rank), no_sync, unused
parameters, sharded evaluation. One mpiexec run (mpi_worker.py) feeds every test."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import convstack as cs
import convstack.nn.functional as F
from convstack import data
from convstack.distributed import launch
from convstack.train import evaluate

pytest.importorskip("mpi4py")
if launch.find_mpiexec() is None:
    pytest.skip("no mpiexec (pip install 'convstack[mpi]')", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parent))
import scenarios  # noqa: E402

WORKER = Path(__file__).parent / "mpi_worker.py"
SOURCE = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """What each of the two ranks saw: [(arrays, notes) of rank 0, of rank 1]."""
    out = tmp_path_factory.mktemp("ranks")
    environment = launch.mpiexec_environment()
    environment["PYTHONPATH"] = f"{SOURCE}:{environment.get('PYTHONPATH', '')}"
    command = [launch.find_mpiexec(), "-n", "2", sys.executable, str(WORKER), str(out)]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return [(dict(np.load(out / f"rank{r}.npz")), json.loads((out / f"rank{r}.json").read_text())) for r in (0, 1)]


def test_collectives(ranks):
    for arrays, notes in ranks:
        assert notes["world"] == 2 and notes["local_size"] == 2
        np.testing.assert_array_equal(arrays["sum"], [3.0, 30.0])
        np.testing.assert_array_equal(arrays["avg"], [1.5])
        np.testing.assert_array_equal(arrays["max"], [2, 0])
        np.testing.assert_array_equal(arrays["gathered"], [[0, 0.5, 0], [1, 1.5, -1]])
        np.testing.assert_array_equal(arrays["broadcast"], [1.0] * 4)


def _reference(model):
    images, labels = scenarios.global_batch()
    return scenarios.state_arrays(scenarios.train(model, images, labels))


@pytest.mark.parametrize("case, build, tolerance", [
    ("plain", scenarios.plain_net, 1e-5),
    ("sync_bn", scenarios.batch_norm_net, 1e-4),
])
def test_two_ranks_on_halves_equal_one_process_on_the_whole_batch(ranks, case, build, tolerance):
    expected = _reference(build())
    (rank0, notes), (rank1, _) = ranks
    assert notes["buckets"] > 1
    for name, value in expected.items():
        key = f"{case}/{name}"
        np.testing.assert_array_equal(rank0[key], rank1[key], err_msg=f"{key} differs between the ranks")
        np.testing.assert_allclose(rank0[key], value, rtol=tolerance, atol=tolerance, err_msg=key)
    moved = [name for name, value in expected.items() if not np.array_equal(value, build().state_dict()[name].numpy())]
    assert len(moved) == len(expected)  # every parameter and statistic trained, none left as built


def _accumulated_on(rank):
    """Rank ``rank``'s first-layer gradient after its first quarter of the batch, and after both quarters."""
    images, labels = scenarios.global_batch()
    quarter = scenarios.GLOBAL_BATCH // 4
    model = scenarios.plain_net()
    grads = []
    for start in (2 * rank * quarter, (2 * rank + 1) * quarter):
        part = slice(start, start + quarter)
        F.cross_entropy(model(cs.tensor(images[part])), cs.tensor(labels[part])).backward()
        grads.append(model[0].weight.grad.numpy().copy())
    return grads


def test_no_sync_accumulates_locally_then_averages_the_sum(ranks):
    (first0, both0), (first1, both1) = _accumulated_on(0), _accumulated_on(1)
    for (arrays, _), first in zip(ranks, (first0, first1)):
        np.testing.assert_allclose(arrays["no_sync/local"], first, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(arrays["no_sync/synced"], (both0 + both1) / 2, rtol=1e-5, atol=1e-6)


def test_a_parameter_one_rank_leaves_unused_is_averaged_and_one_nobody_uses_keeps_no_gradient(ranks):
    for arrays, notes in ranks:
        np.testing.assert_allclose(arrays["branches/shared"], np.full((2, 4), (3 * 1 + 3 * 2) / 2))
        np.testing.assert_allclose(arrays["branches/rank0_only"], np.full((2, 4), 3 / 2))  # rank 1 adds 0
        assert notes["unused_grad_is_none"]


def test_ranks_with_different_models_refuse_to_start(ranks):
    for _, notes in ranks:
        assert notes["mismatch"].startswith("DistributedDataParallel: the model on rank(s) [1] differs from rank 0's")


def test_sharded_evaluation_equals_one_process(ranks):
    evaluation = data.TensorDataset(np.random.default_rng(5).standard_normal((37, 1, 8, 8)).astype(np.float32),
                                    np.arange(37) % 10)
    expected = evaluate(scenarios.plain_net(), data.DataLoader(evaluation, batch_size=8), num_classes=10)
    for arrays, _ in ranks:
        np.testing.assert_array_equal(arrays["eval/predictions"], expected["predictions"])
        np.testing.assert_array_equal(arrays["eval/confusion"], expected["confusion"])
        np.testing.assert_allclose(arrays["eval/figures"], [expected["loss"], expected["acc"], expected["top5"]],
                                   rtol=1e-6)
