"""Where a LeNet-5 training epoch spends its time: how much of it is Python.

Three estimates, each with what it can and cannot see:

1. cProfile over the epoch: the time inside the NumPy C functions and methods it reports
   (``ndarray`` methods, ``ufunc.reduce``, ``numpy.*`` built-ins), inside NumPy's own Python
   wrappers, and everywhere else. cProfile cannot see a ufunc called directly or through an
   operator (``a + b``, ``a @ b``, ``numpy.add(...)`` are vectorcalls, not profiled calls), so
   that array work is counted in the calling Python function: its "Python" share is an
   *upper bound*, and its own overhead inflates every Python call.
2. Fixed per-step cost: the same training steps at batch 1, where arrays are tiny, against
   batch 64, without any profiler. The batch-1 step is almost all per-op cost (Python, and
   NumPy's per-call dispatch and allocation); their ratio estimates that share of the epoch.
3. ``--native`` (needs ``py-spy`` on the PATH, not a dependency): py-spy samples the stack
   with native frames; a sample whose innermost frame is in NumPy's or OpenBLAS's shared
   library (or in libc/libm called from them) is NumPy time, one in the interpreter is Python.

    python3 benchmarks/profile_lenet.py [--fraction 1.0] [--top 15] [--native]
"""

from __future__ import annotations

import argparse
import cProfile
import math
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time

BATCH = 64


def training_steps(fraction: float, batch: int = BATCH, context=None):
    """A callable that runs ``fraction`` of a LeNet-5 epoch on Fashion-MNIST; and the number of steps."""
    import convstack as cs
    import convstack.nn.functional as F
    from convstack import models
    from convstack.bench.model_workloads import LENET_LR, LENET_MOMENTUM, fashion_mnist_arrays

    context = {} if context is None else context
    images, labels = fashion_mnist_arrays(context)
    steps = max(1, math.ceil(math.ceil(len(images) / batch) * fraction))
    cs.manual_seed(0)
    model = models.lenet5()
    model.train()
    optimizer = cs.optim.SGD(model.parameters(), lr=LENET_LR, momentum=LENET_MOMENTUM)

    def run():
        for step in range(steps):
            begin = (step * batch) % len(images)
            end = min(begin + batch, len(images))
            optimizer.zero_grad()
            loss = F.cross_entropy(model(cs.Tensor._make(images[begin:end])), cs.Tensor._make(labels[begin:end]))
            loss.backward()
            optimizer.step()

    return run, steps


def classify_cprofile(stats: pstats.Stats) -> dict:
    """Own time (seconds) in NumPy's C calls, NumPy's Python wrappers, and the rest."""
    buckets = {"numpy_c": 0.0, "numpy_python": 0.0, "python": 0.0}
    for (filename, _, function), (_, _, own, _, _) in stats.stats.items():
        if filename == "~":
            builtin_numpy = "numpy" in function or "ndarray" in function or "ufunc" in function
            buckets["numpy_c" if builtin_numpy else "python"] += own
        elif f"{os.sep}numpy{os.sep}" in filename:
            buckets["numpy_python"] += own
        else:
            buckets["python"] += own
    return buckets


def profile_epoch(fraction: float, top: int, out=sys.stdout) -> dict:
    run, steps = training_steps(fraction)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    run()
    profiler.disable()
    elapsed = time.perf_counter() - start
    stats = pstats.Stats(profiler, stream=out)
    buckets = classify_cprofile(stats)
    total = sum(buckets.values())
    print(f"cProfile: {steps} steps of batch {BATCH} in {elapsed:.1f} s (profiled)", file=out)
    for name, words in (("numpy_c", "NumPy C calls cProfile sees"), ("numpy_python", "NumPy's Python wrappers"),
                        ("python", "Python elsewhere (incl. array operators cProfile cannot see)")):
        print(f"  {words:62s} {buckets[name]:7.2f} s  {buckets[name] / total:6.1%}", file=out)
    print(f"  top {top} functions by own time:", file=out)
    stats.sort_stats("tottime").print_stats(top)
    return {"steps": steps, "seconds": elapsed, **{f"{k}_s": v for k, v in buckets.items()}}


def fixed_cost_share(steps: int = 200, out=sys.stdout) -> dict:
    """Per-step time at batch 1 over per-step time at batch 64 (no profiler)."""
    timings = {}
    for batch in (1, BATCH):
        run, count = training_steps(steps / math.ceil(60000 / batch), batch)
        run()  # warm-up
        start = time.perf_counter()
        run()
        timings[batch] = (time.perf_counter() - start) / count
    share = timings[1] / timings[BATCH]
    print(f"fixed per-step cost: batch 1 {timings[1] * 1e3:.2f} ms/step, batch {BATCH} "
          f"{timings[BATCH] * 1e3:.2f} ms/step: {share:.0%} of a batch-{BATCH} step is per-op cost "
          "(Python, NumPy dispatch and allocation) that does not grow with the batch", file=out)
    return {"batch1_step_s": timings[1], f"batch{BATCH}_step_s": timings[BATCH], "share": share}


_NATIVE_NUMPY = ("_multiarray_umath", "openblas", "_umath_linalg", "numpy")


def native_share(fraction: float, out=sys.stdout) -> dict | None:
    """py-spy --native samples of the epoch in a child process, split by the innermost frame."""
    if shutil.which("py-spy") is None:
        print("--native: py-spy is not on the PATH; skipped", file=out)
        return None
    with tempfile.TemporaryDirectory() as folder:
        raw = os.path.join(folder, "samples.txt")
        command = ["py-spy", "record", "--native", "--rate", "250", "--format", "raw", "--output", raw, "--",
                   sys.executable, "-m", "convstack.bench.profile_lenet", "--run-only", "--fraction", str(fraction)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not os.path.exists(raw):
            print(f"--native: py-spy failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}", file=out)
            return None
        counts = {"numpy": 0, "python": 0, "other_native": 0}
        with open(raw) as samples:
            for line in samples:
                stack, _, count = line.rstrip().rpartition(" ")
                if "training_steps" not in stack:  # imports and set-up
                    continue
                frames = stack.split(";")
                # The innermost frames that are native: NumPy's if any of them is in NumPy/OpenBLAS.
                native = []
                for frame in reversed(frames):
                    if ".py:" in frame:
                        break
                    native.append(frame)
                if any(key in frame for frame in native for key in _NATIVE_NUMPY):
                    counts["numpy"] += int(count)
                elif not native or any("libpython" in frame or "python3" in frame for frame in native):
                    counts["python"] += int(count)
                else:
                    counts["other_native"] += int(count)
    total = sum(counts.values()) or 1
    print("py-spy --native, innermost frame: " + ", ".join(f"{k} {v / total:.0%}" for k, v in counts.items())
          + f" of {total} samples", file=out)
    return {k: v / total for k, v in counts.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="profile a LeNet-5 training epoch: how much of it is Python")
    parser.add_argument("--fraction", type=float, default=1.0, help="fraction of the epoch to profile (default 1)")
    parser.add_argument("--top", type=int, default=15, help="functions listed by own time")
    parser.add_argument("--threads", type=int, default=None, help="NumPy BLAS threads (default: the cores available)")
    parser.add_argument("--native", action="store_true", help="also sample native frames with py-spy")
    parser.add_argument("--run-only", action="store_true", help=argparse.SUPPRESS)  # the child py-spy samples
    args = parser.parse_args(argv)
    from convstack import blas
    from convstack.bench.threads import available_cores

    blas.set_threads(args.threads or available_cores())
    if args.run_only:
        training_steps(args.fraction)[0]()
        return 0
    profile_epoch(args.fraction, args.top)
    fixed_cost_share()
    if args.native:
        native_share(args.fraction)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
