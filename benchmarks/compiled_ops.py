"""Time the non-convolution ops on both kernel tiers against PyTorch, in one process, interleaved.

    python3 benchmarks/compiled_ops.py [--reps 30] [--threads 2] [--filter bn] [--cpu] [--settle 0.25]

For each op: convstack on the NumPy tier, convstack on the compiled tier and PyTorch, one rep of
each in turn (so that load from other processes slows all alike), medians of the reps.
Forward and backward are timed separately: a backward rep builds its graph untimed.

Two clocks: by default wall time with ``--threads`` threads for every pool (convstack's
``set_num_threads`` and PyTorch's); with ``--cpu``, one thread everywhere and the calling
thread's CPU time (``time.thread_time``), which other processes on a loaded machine disturb
far less than the wall clock (they still share its caches and memory bandwidth). The allocator
is tuned as ``convstack bench`` tunes it (``convstack.allocator.tune``).

OpenMP's workers are made to sleep as soon as a parallel kernel ends (``OMP_WAIT_POLICY=passive``) unless
``--omp-wait-policy inherit``: by default GNU OpenMP's workers spin for a while after each region, and on
two cores they then take the CPU from OpenBLAS's threads in the GEMMs that follow (see
docs/compiled_kernels.md). Numba's kernels run on the process's GNU OpenMP, which is PyTorch's own copy
when PyTorch is imported (one soname): the policy then applies to both; ``--no-torch`` leaves it out.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy

import convstack as cs
import convstack.nn.functional as F
from convstack import allocator, models, nn, optim
from convstack.nn.kernels import tiers

TIERS = ("numpy", "numba")


def _inputs(shape, seed=0, scale=1.0, offset=0.0):
    return (numpy.random.default_rng(seed).standard_normal(shape) * scale + offset).astype(numpy.float32)


def _module_op(make_cs, make_torch, shape):
    """A forward (and backward) workload of a module on an input of ``shape``: convstack, torch callables."""
    data = _inputs(shape)

    def convstack_run(direction):
        module = make_cs()
        x = cs.tensor(data, requires_grad=True)
        grad = cs.tensor(_inputs(module(x).shape, seed=1))
        return _rep(lambda: module(x), lambda y: y.backward(grad), direction, lambda: setattr(x, "grad", None))

    def torch_run(direction, torch):
        module = make_torch(torch)
        x = torch.tensor(data, requires_grad=True)
        grad = torch.tensor(_inputs(tuple(module(x).shape), seed=1))
        return _rep(lambda: module(x), lambda y: y.backward(grad), direction, lambda: setattr(x, "grad", None))

    return convstack_run, torch_run


def _rep(forward, backward, direction, reset):
    """A zero-argument callable that runs one rep and returns (wall seconds, thread CPU seconds) of its timed part."""
    def rep():
        reset()
        if direction == "fwd":
            wall, cpu = time.perf_counter(), time.thread_time()
            forward()
            return time.perf_counter() - wall, time.thread_time() - cpu
        y = forward()
        wall, cpu = time.perf_counter(), time.thread_time()
        if direction == "bwd":
            backward(y)
        else:  # fwd+bwd: the forward above was a warm-up of the same graph
            backward(forward())
        return time.perf_counter() - wall, time.thread_time() - cpu
    return rep


def _optimizer_op(make_cs_optimizer, make_torch_optimizer, model_name):
    def parameters():
        cs.manual_seed(0)
        model = getattr(models, model_name)()
        return [p.data for p in model.parameters()]

    arrays = parameters()
    grads = [_inputs(a.shape, seed=i) for i, a in enumerate(arrays)]

    def convstack_run(direction):
        params = [cs.tensor(a.copy(), requires_grad=True) for a in arrays]
        for p, g in zip(params, grads):
            p.grad = cs.tensor(g)
        optimizer = make_cs_optimizer(params)
        return _timed(optimizer.step)

    def torch_run(direction, torch):
        params = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g)
        optimizer = make_torch_optimizer(torch, params)
        return _timed(optimizer.step)

    return convstack_run, torch_run


def _timed(fn):
    def rep():
        wall, cpu = time.perf_counter(), time.thread_time()
        fn()
        return time.perf_counter() - wall, time.thread_time() - cpu
    return rep


def _cross_entropy_op(batch, classes):
    scores, labels = _inputs((batch, classes)), numpy.random.default_rng(2).integers(0, classes, batch)

    def convstack_run(direction):
        x, t = cs.tensor(scores, requires_grad=True), cs.tensor(labels)
        return _rep(lambda: F.cross_entropy(x, t), lambda y: y.backward(), direction, lambda: setattr(x, "grad", None))

    def torch_run(direction, torch):
        x, t = torch.tensor(scores, requires_grad=True), torch.tensor(labels)
        loss = torch.nn.functional.cross_entropy
        return _rep(lambda: loss(x, t), lambda y: y.backward(), direction, lambda: setattr(x, "grad", None))

    return convstack_run, torch_run


def _training_step_op(model_name, twin_name, batch, image_shape, lr):
    """One SGD (momentum 0.9) training step of a zoo model on a fixed random batch; PyTorch's twin alike."""
    rng = numpy.random.default_rng(3)
    images, labels = _inputs((batch,) + image_shape, seed=3), rng.integers(0, 10, batch)

    def convstack_run(direction):
        cs.manual_seed(0)
        model = getattr(models, model_name)().train()
        optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        x, t = cs.Tensor._make(images), cs.Tensor._make(labels)

        def step():
            optimizer.zero_grad()
            F.cross_entropy(model(x), t).backward()
            optimizer.step()
        return _timed(step)

    def torch_run(direction, torch):
        from convstack.bench import twins

        model = getattr(twins, twin_name)().train()
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        x, t = torch.from_numpy(images), torch.from_numpy(labels)

        def step():
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), t).backward()
            optimizer.step()
        return _timed(step)

    return convstack_run, torch_run


def workloads():
    """``(name, directions, (convstack setup, torch setup))`` for every row."""
    bn = _module_op(lambda: nn.BatchNorm2d(16), lambda torch: torch.nn.BatchNorm2d(16), (128, 16, 32, 32))
    bn_relu = _module_op(lambda: nn.Sequential(nn.BatchNorm2d(16), nn.ReLU()),
                         lambda torch: torch.nn.Sequential(torch.nn.BatchNorm2d(16), torch.nn.ReLU()),
                         (128, 16, 32, 32))
    relu = _module_op(nn.ReLU, lambda torch: torch.nn.ReLU(), (128, 16, 32, 32))
    lenet_relu = _module_op(nn.ReLU, lambda torch: torch.nn.ReLU(), (64, 6, 28, 28))
    pool2 = _module_op(lambda: nn.MaxPool2d(2), lambda torch: torch.nn.MaxPool2d(2), (128, 16, 32, 32))
    pool3 = _module_op(lambda: nn.MaxPool2d(3, 2, 1), lambda torch: torch.nn.MaxPool2d(3, 2, 1), (8, 64, 112, 112))
    lenet_pool = _module_op(lambda: nn.MaxPool2d(2), lambda torch: torch.nn.MaxPool2d(2), (64, 6, 28, 28))
    avg2 = _module_op(lambda: nn.AvgPool2d(2), lambda torch: torch.nn.AvgPool2d(2), (128, 16, 32, 32))
    avg3 = _module_op(lambda: nn.AvgPool2d(3, 2, 1), lambda torch: torch.nn.AvgPool2d(3, 2, 1), (8, 64, 112, 112))
    sgd = _optimizer_op(lambda p: optim.SGD(p, lr=0.05, momentum=0.9),
                        lambda torch, p: torch.optim.SGD(p, lr=0.05, momentum=0.9, foreach=False), "lenet5")
    sgd_resnet = _optimizer_op(lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4),
                               lambda torch, p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4),
                               "resnet20")
    adam = _optimizer_op(lambda p: optim.Adam(p), lambda torch, p: torch.optim.Adam(p), "resnet20")
    return [
        ("batchnorm2d (128,16,32,32)", ("fwd", "bwd", "fwd+bwd"), bn),
        ("batchnorm2d+relu (128,16,32,32)", ("fwd", "bwd", "fwd+bwd"), bn_relu),
        ("relu (128,16,32,32)", ("fwd", "bwd"), relu),
        ("relu (64,6,28,28) lenet", ("fwd", "bwd"), lenet_relu),
        ("maxpool2d 2x2 (128,16,32,32)", ("fwd", "bwd"), pool2),
        ("maxpool2d 3x3s2p1 (8,64,112,112)", ("fwd", "bwd"), pool3),
        ("maxpool2d 2x2 (64,6,28,28) lenet", ("fwd", "bwd"), lenet_pool),
        ("avgpool2d 2x2 (128,16,32,32)", ("fwd", "bwd"), avg2),
        ("avgpool2d 3x3s2p1 (8,64,112,112)", ("fwd", "bwd"), avg3),
        ("cross_entropy (64,10)", ("fwd+bwd",), _cross_entropy_op(64, 10)),
        ("sgd momentum step, lenet5 params", ("step",), sgd),
        ("sgd momentum+wd step, resnet20 params", ("step",), sgd_resnet),
        ("adam step, resnet20 params", ("step",), adam),
        ("lenet5 training step, batch 64", ("step",), _training_step_op("lenet5", "LeNet5", 64, (1, 28, 28), 0.05)),
        ("resnet20 training step, batch 128", ("step",),
         _training_step_op("resnet20", "CifarResNet", 128, (3, 32, 32), 0.1)),
    ]


def measure(run_setups, reps, cpu, torch, settle, statistic=statistics.median):
    """``statistic`` (the median) of each contender's reps in ms: numpy tier, numba tier, torch (interleaved)."""
    contenders = []
    for tier in TIERS:
        with tiers.kernel_tier(tier):
            contenders.append((tier, run_setups[0]()))
    if torch is not None:
        contenders.append(("torch", run_setups[1](torch)))
    times = {name: [] for name, _ in contenders}
    for rep_index in range(reps + 2):
        for name, rep in contenders:
            with tiers.kernel_tier(name if name in TIERS else tiers.get_kernel_tier()):
                if settle:  # let the other contenders' spinning workers sleep, then wake this one's
                    time.sleep(settle)
                    rep()
                wall, thread = rep()
            if rep_index >= 2:  # two warm-ups: compilation, caches, allocator
                times[name].append(thread if cpu else wall)
    return {name: statistic(values) * 1e3 for name, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cpu", action="store_true", help="one thread, thread CPU time")
    parser.add_argument("--filter", default="")
    parser.add_argument("--no-torch", action="store_true", help="time the two tiers only, without PyTorch in the "
                        "process (its OpenMP runtime is then not the one Numba's kernels share)")
    parser.add_argument("--omp-wait-policy", choices=("passive", "inherit"), default="passive",
                        help="OMP_WAIT_POLICY of the process's OpenMP runtime (Numba's, which is PyTorch's when both "
                             "are loaded): passive (default) or the environment's (GNU OpenMP's default spins)")
    parser.add_argument("--fastest", action="store_true",
                        help="report each contender's fastest rep instead of the median (bursts of load from other "
                             "processes on a shared machine lengthen some reps, never shorten one)")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="pause before each rep (then one untimed call), as convstack bench's --settle")
    args = parser.parse_args(argv)
    if args.omp_wait_policy == "passive":
        # GNU OpenMP reads it when it loads: with PyTorch imported, Numba's kernels share PyTorch's copy of the
        # runtime (one soname), so both run passive; without, Numba's alone
        os.environ["OMP_WAIT_POLICY"] = "passive"
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            pass
    threads = 1 if args.cpu else args.threads
    allocator.tune()  # as convstack bench and train: arrays reuse mapped heap instead of faulting in fresh pages
    cs.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    clock = "thread CPU time, 1 thread" if args.cpu else f"wall time, {threads} threads"
    pause = f", {args.settle} s pause and one untimed call before each" if args.settle else ""
    policy = os.environ.get("OMP_WAIT_POLICY", "unset (GNU OpenMP spins a while after each parallel region)")
    summary = "fastest" if args.fastest else "medians"
    print(f"{summary} of {args.reps} interleaved reps{pause}, {clock}; OMP_WAIT_POLICY {policy}; ms")
    print(f"{'op':42s} {'pass':8s} {'numpy':>9s} {'numba':>9s} {'torch':>9s} {'numba/numpy':>12s} {'numba/torch':>12s}")
    for name, directions, setups in workloads():
        if args.filter not in name:
            continue
        for direction in directions:
            result = measure((lambda s=setups[0], d=direction: s(d),
                              lambda t, s=setups[1], d=direction: s(d, t)), args.reps, args.cpu, torch, args.settle,
                             min if args.fastest else statistics.median)
            theirs = result.get("torch", float("nan"))
            print(f"{name:42s} {direction:8s} {result['numpy']:9.3f} {result['numba']:9.3f} {theirs:9.3f} "
                  f"{result['numba'] / result['numpy']:12.2f} {result['numba'] / theirs:12.2f}", flush=True)


if __name__ == "__main__":
    main()
