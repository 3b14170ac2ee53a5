"""convstack.distributed in one process: the world of one, argument errors, the deadline of a wait,
the autograd hooks DistributedDataParallel rests on, SyncBatchNorm without peers."""

import sys
import time

import numpy as np
import pytest

import convstack as cs
import convstack.distributed as dist
import convstack.nn.functional as F
from convstack import autograd, nn
from convstack.distributed.group import SingleProcessGroup
from convstack.distributed.work import DistributedError, Work
from convstack.nn.parallel import DistributedDataParallel


@pytest.fixture
def world_of_one():
    dist.init_process_group("mpi", timeout=30)
    yield
    dist.destroy_process_group()


def test_a_process_without_a_launcher_is_a_world_of_one(world_of_one):
    assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
    assert dist.get_backend() == "mpi"
    values = cs.tensor([1.0, 2.0])
    dist.all_reduce(values)
    dist.all_reduce(values, dist.ReduceOp.AVG)
    np.testing.assert_array_equal(values.numpy(), [1.0, 2.0])
    gathered = [cs.zeros(2)]
    assert dist.all_gather(gathered, values, async_op=True).wait()
    np.testing.assert_array_equal(gathered[0].numpy(), [1.0, 2.0])
    dist.broadcast(values, 0)
    dist.barrier()
    with pytest.raises(RuntimeError, match="trying to initialize the default process group twice"):
        dist.init_process_group("mpi")


def test_without_a_group_the_getters_say_what_to_call():
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        dist.get_rank()
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        dist.destroy_process_group()


def test_bad_arguments_are_named(world_of_one):
    with pytest.raises(ValueError, match=r"all_reduce: invalid value for argument `op`: expected SUM, PRODUCT, MIN or "
                                         r"MAX for an integer tensor"):
        dist.all_reduce(cs.tensor([1, 2]), dist.ReduceOp.AVG)
    with pytest.raises(ValueError, match=r"all_reduce: invalid value for argument `tensor`: expected a contiguous"):
        dist.all_reduce(cs.ones(3, 4).T)
    with pytest.raises(ValueError, match=r"all_reduce: invalid value for argument `tensor`: expected a tensor of"):
        dist.all_reduce(np.ones(2, np.float16))
    with pytest.raises(ValueError, match=r"broadcast: invalid value for argument `src`: expected a rank from 0 to 0"):
        dist.broadcast(cs.ones(2), src=1)
    with pytest.raises(ValueError, match=r"all_gather: invalid value for argument `tensor_list`: expected a list of 1"):
        dist.all_gather([cs.ones(2), cs.ones(2)], cs.ones(2))
    with pytest.raises(ValueError, match=r"DistributedDataParallel: invalid value for argument `bucket_cap_mb`"):
        DistributedDataParallel(nn.Linear(2, 2), bucket_cap_mb=0)


def test_bad_init_arguments_are_named():
    with pytest.raises(ValueError, match=r"argument `backend`: expected one of 'mpi', received 'nccl'"):
        dist.init_process_group("nccl")
    with pytest.raises(ValueError, match=r"argument `timeout`: expected a positive number of seconds"):
        dist.init_process_group("mpi", timeout=0)
    with pytest.raises(ValueError, match=r"argument `world_size`: the launcher started this process with world_size 1"):
        dist.init_process_group("mpi", world_size=4)
    assert not dist.is_initialized()


def test_a_collective_that_never_completes_fails_at_its_deadline():
    group = SingleProcessGroup(timeout=0.2)
    work = Work(group, lambda: False, "all_reduce of 10 float32 values")
    start = time.monotonic()
    with pytest.raises(DistributedError, match=r"rank 0 of 1: all_reduce of 10 float32 values did not complete "
                                               r"within 0.2 s: another rank has died, hung or cannot be reached"):
        work.wait()
    assert 0.2 <= time.monotonic() - start < 2
    assert not work.is_completed()


def test_a_failed_request_becomes_a_distributed_error_and_completion_runs_once():
    group = SingleProcessGroup(timeout=5)

    def broken():
        raise OSError("peer 1 is gone")

    with pytest.raises(DistributedError, match="rank 0 of 1: barrier failed: peer 1 is gone"):
        Work(group, broken, "barrier").wait()
    calls, polls = [], iter([False, False, True])
    work = Work(group, lambda: next(polls), "broadcast", on_complete=lambda: calls.append(1))
    assert work.wait() and work.wait() and work.is_completed() and calls == [1]


def test_post_accumulate_grad_hooks_see_the_final_gradient_and_callbacks_run_after_the_walk():
    w = cs.tensor([1.0, 2.0], requires_grad=True)
    seen, order = [], []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    w.register_post_accumulate_grad_hook(lambda t: autograd.queue_callback(lambda: order.append("callback")))
    ((w * w).sum() + (3 * w).sum()).backward()  # two paths into w: the hook sees their sum, once
    order.append("after")
    np.testing.assert_array_equal(seen, [[5.0, 7.0]])
    assert order == ["callback", "after"]
    handle.remove()
    (w * 1.0).sum().backward()
    assert len(seen) == 1 and order.count("callback") == 2
    with pytest.raises(RuntimeError, match="post accumulate grad hooks cannot be registered on non-leaf tensors"):
        (w * 2).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError, match="queue_callback: no backward pass is running"):
        autograd.queue_callback(print)


def test_a_world_of_one_trains_as_without_the_wrapper(world_of_one):
    x, y = cs.randn(6, 3), cs.tensor([0, 1, 2, 0, 1, 2])
    cs.manual_seed(3)
    plain = nn.Linear(3, 3)
    cs.manual_seed(3)
    wrapped = DistributedDataParallel(nn.Linear(3, 3))
    for model in (plain, wrapped):
        F.cross_entropy(model(x), y).backward()
    np.testing.assert_array_equal(wrapped.module.weight.grad.numpy(), plain.weight.grad.numpy())
    assert list(wrapped.state_dict()) == ["module.weight", "module.bias"]


def test_sync_batch_norm_without_peers_is_batch_norm_and_converts_in_place():
    cs.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Sequential(nn.Flatten(), nn.BatchNorm1d(12)))
    reference = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    x = cs.randn(4, 2, 4, 4)
    expected = model(x).detach().numpy()
    weight = model[1].weight
    for name, value in model.state_dict().items():
        value.data[...] = reference[name]
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(converted[1], nn.SyncBatchNorm) and isinstance(converted[2][1], nn.SyncBatchNorm)
    assert converted[1].weight is weight  # the same tensors: an optimizer built before still trains them
    np.testing.assert_allclose(converted(x).detach().numpy(), expected, rtol=1e-6)
    plain = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Sequential(nn.Flatten(), nn.BatchNorm1d(12)))
    plain.load_state_dict(converted.state_dict())  # the same names: checkpoints exchange
    alone = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm2d(5, momentum=None, affine=False))
    assert isinstance(alone, nn.SyncBatchNorm) and alone.momentum is None and alone.weight is None
    with pytest.raises(ValueError, match=r"SyncBatchNorm: expected an input with 3 channels"):
        nn.SyncBatchNorm(3)(cs.randn(2, 4, 5))


def test_the_ranks_get_the_parent_command_line_but_nproc_and_out():
    from convstack.cli import build_parser
    from convstack.cli.train_distributed import rank_arguments

    argv = ["train", "--nproc", "4", "--model", "spec:conv8-pool-fc16", "--lr", "0.1", "--resume", "--freeze",
            "features.*", "--freeze", "head.*", "--out", "runs/x", "--threads", "2", "--timeout", "30"]
    args = build_parser().parse_args(argv)
    passed = rank_arguments(args.train_parser, args)
    assert "--nproc" not in passed and "--out" not in passed
    again = build_parser().parse_args(["train", *passed, "--out", "runs/x"])
    for name, value in vars(args).items():
        if name not in ("nproc", "train_parser", "run"):
            assert getattr(again, name) == value, name


def test_the_launcher_variables_and_the_threads_of_each_rank(monkeypatch):
    from convstack.distributed import launch

    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert launch.launcher_world_size() is None
    monkeypatch.setenv("PMI_SIZE", "8")
    assert launch.launcher_world_size() == 8
    cores = launch.available_cores()
    assert launch.threads_per_rank(1) == cores and launch.threads_per_rank(cores * 4) == 1
    command = launch.mpiexec_command(3, ["train", "--epochs", "1"], mpiexec="/opt/mpi/bin/mpiexec")
    assert command == ["/opt/mpi/bin/mpiexec", "-n", "3", sys.executable, "-m", "convstack", "train", "--epochs", "1"]
