"""Time the practitioner's-toolbox ops (forward + backward) in convstack and in PyTorch, alternating rep by rep.

    python3 benchmarks/toolbox_ops.py [--repeat 7] [--threads 2]

Prints the median milliseconds of each (forward and backward from a dense upstream gradient; the inputs
are made outside the timed region) and the ratio convstack / PyTorch (lower is better).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import convstack as cs
import convstack.nn.functional as F

rng = np.random.default_rng(0)
X = rng.standard_normal((32, 64, 32, 32)).astype(np.float32)  # a ResNet-20 stage at batch 32
ROWS = rng.standard_normal((256, 1000)).astype(np.float32)
INDEX = rng.integers(0, 1000, (256, 64))
POOLED, POOL_INDEX = (t.numpy() for t in torch.nn.functional.max_pool2d(torch.tensor(X), 2, return_indices=True))
WEIGHT = np.ones(64, np.float32)


_UPSTREAM: dict = {}


def _upstream(shape):
    """A dense upstream gradient of ``shape`` (as a network's would be), the same array for both libraries."""
    if shape not in _UPSTREAM:
        _UPSTREAM[shape] = rng.standard_normal(shape).astype(np.float32)
    return _UPSTREAM[shape]


def _pair(ours, theirs, arrays):
    """Functions running forward and backward (from a dense upstream gradient) on leaves of each library.

    The leaves and the upstream gradients are made outside the timed region."""
    def prepare(lib):
        leaves = [lib.tensor(a, requires_grad=a.dtype.kind == "f") if i == 0 else lib.tensor(a)
                  for i, a in enumerate(arrays)]
        return leaves

    def run(fn, lib, leaves):
        out = fn(*leaves)
        out = out[0] if isinstance(out, tuple) else out
        out.backward(lib.tensor(_upstream(tuple(out.shape))))

    return (lambda: prepare(cs), lambda leaves: run(ours, cs, leaves)), \
        (lambda: prepare(torch), lambda leaves: run(theirs, torch, leaves))


TF = torch.nn.functional
WORKLOADS = {
    "group_norm 32x64x32x32 G=8": _pair(lambda x, w: F.group_norm(x, 8, w), lambda x, w: TF.group_norm(x, 8, w),
                                        [X, WEIGHT]),
    "layer_norm 32x64x32x32 over (64,32,32)": _pair(lambda x: F.layer_norm(x, X.shape[1:]),
                                                    lambda x: TF.layer_norm(x, X.shape[1:]), [X]),
    "instance_norm 32x64x32x32": _pair(F.instance_norm, TF.instance_norm, [X]),
    "silu 32x64x32x32": _pair(F.silu, TF.silu, [X]),
    "hardswish 32x64x32x32": _pair(F.hardswish, TF.hardswish, [X]),
    "max_unpool2d 32x64x16x16 -> 32x32": _pair(lambda v, i: F.max_unpool2d(v, i, 2),
                                               lambda v, i: TF.max_unpool2d(v, i, 2), [POOLED, POOL_INDEX]),
    "gather 256x1000 -> 256x64": _pair(lambda x, i: x.gather(1, i), lambda x, i: x.gather(1, i), [ROWS, INDEX]),
    "sort 256x1000 dim 1": _pair(lambda x: x.sort(1), lambda x: x.sort(1), [ROWS]),
    "topk 256x1000 k=5": _pair(lambda x: x.topk(5), lambda x: x.topk(5), [ROWS]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{'workload':42s} {'convstack ms':>12s} {'pytorch ms':>10s} {'ratio':>6s}")
    for name, (ours, theirs) in WORKLOADS.items():
        for prepare, run in (ours, theirs):  # warm up
            run(prepare())
        times = {"ours": [], "theirs": []}
        for _ in range(args.repeat):
            for key, (prepare, run) in (("ours", ours), ("theirs", theirs)):
                leaves = prepare()
                time.sleep(0.05)  # let the other library's worker threads go to sleep
                start = time.perf_counter()
                run(leaves)
                times[key].append((time.perf_counter() - start) * 1e3)
        mine, their = statistics.median(times["ours"]), statistics.median(times["theirs"])
        print(f"{name:42s} {mine:12.2f} {their:10.2f} {mine / their:6.2f}")


if __name__ == "__main__":
    main()
