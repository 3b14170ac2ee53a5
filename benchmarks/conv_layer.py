"""Time one ResNet-style conv2d layer, forward + backward, in convstack and in PyTorch.

Batch 64, 64 -> 64 channels, 32x32, 3x3 kernel, padding 1, float32, with bias. The two
frameworks run interleaved (one repetition of each in turn) after a warm-up, so that a
busy machine slows both alike; the medians and their ratio are printed.

    python3 benchmarks/conv_layer.py [--repeats 7] [--threads 2] [--batch 64]

PyTorch is told to use ``--threads`` threads (the number NumPy's BLAS uses on the
benchmark machine, 2 cores). It is optional: without it only convstack is timed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import convstack as cs
import convstack.nn.functional as F


def convstack_step(x, weight, bias, grad):
    """One forward + backward of the layer; returns the output array (keeps the work observable)."""
    x, weight, bias = (cs.Tensor(a, requires_grad=True) for a in (x, weight, bias))  # no copy, as from_numpy
    out = F.conv2d(x, weight, bias, padding=1)
    out.backward(grad)
    return x.grad, weight.grad, bias.grad


def torch_step(torch, x, weight, bias, grad):
    x, weight, bias = (torch.from_numpy(a).requires_grad_(True) for a in (x, weight, bias))
    out = torch.nn.functional.conv2d(x, weight, bias, padding=1)
    out.backward(torch.from_numpy(grad))
    return x.grad, weight.grad, bias.grad


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 64, 32, 32), dtype=np.float32)
    weight = (rng.standard_normal((64, 64, 3, 3), dtype=np.float32) * 0.05).astype(np.float32)
    bias = rng.standard_normal(64, dtype=np.float32)
    grad = rng.standard_normal((args.batch, 64, 32, 32), dtype=np.float32)

    try:
        import torch
    except ImportError:
        torch = None
    runners = {"convstack": lambda: convstack_step(x, weight, bias, grad)}
    if torch is not None:
        torch.set_num_threads(args.threads)
        runners["pytorch"] = lambda: torch_step(torch, x, weight, bias, grad)
        ours = [g.numpy() for g in runners["convstack"]()]
        theirs = [g.numpy() for g in runners["pytorch"]()]
        for name, a, b in zip(("input", "weight", "bias"), ours, theirs):
            scale = float(np.abs(b).max())
            if not np.allclose(a, b, rtol=1e-3, atol=1e-3 * scale):
                raise SystemExit(f"gradient of {name} differs from PyTorch: max error {np.abs(a - b).max()}")

    times = {name: [] for name in runners}
    for _ in range(args.warmup):
        for run in runners.values():
            run()
    for _ in range(args.repeats):
        for name, run in runners.items():
            times[name].append(timed(run))

    print(f"conv2d forward+backward, N={args.batch}, 64->64 channels, 32x32, 3x3, padding 1, float32")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(f"  {name:10s} median {median * 1e3:8.1f} ms  (min {min(times[name]) * 1e3:.1f}, {args.repeats} runs)")
    if "pytorch" in medians:
        print(f"  ratio convstack / pytorch: {medians['convstack'] / medians['pytorch']:.2f}")


if __name__ == "__main__":
    main()
