"""Time the vision functional ops against PyTorch: forward + backward, medians, ratios from one run.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python3 benchmarks/vision_functional.py [--repeat 7]

Both frameworks on one thread (these ops are NumPy element work in convstack, not BLAS), the
two timed alternately, case by case. Results: docs/vision_functional.md.
"""

import argparse
import time

import numpy as np
import torch

import convstack as cs
import convstack.nn.functional as F


def median_ms(run, repeat: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def cases(rng):
    """(name, convstack run, PyTorch run): each builds leaves that require grad, runs forward and backward."""
    images = rng.standard_normal((64, 32, 28, 28)).astype(np.float32)
    grid = rng.uniform(-1.1, 1.1, (64, 28, 28, 2)).astype(np.float32)
    for mode in ("bilinear", "nearest", "bicubic"):
        def ours(mode=mode):
            F.grid_sample(cs.tensor(images, requires_grad=True), cs.tensor(grid, requires_grad=True), mode,
                          align_corners=False).sum().backward()

        def theirs(mode=mode):
            torch.nn.functional.grid_sample(torch.tensor(images, requires_grad=True),
                                            torch.tensor(grid, requires_grad=True), mode,
                                            align_corners=False).sum().backward()
        yield f"grid_sample {mode}, (64, 32, 28, 28)", ours, theirs
    yield ("unfold 3x3 padding 1, (64, 32, 28, 28)",
           lambda: F.unfold(cs.tensor(images, requires_grad=True), 3, padding=1).sum().backward(),
           lambda: torch.nn.functional.unfold(torch.tensor(images, requires_grad=True), 3, padding=1).sum().backward())
    small = rng.standard_normal((16, 16, 32, 32)).astype(np.float32)
    yield ("interpolate bicubic x2, (16, 16, 32, 32)",
           lambda: F.interpolate(cs.tensor(small, requires_grad=True), scale_factor=2, mode="bicubic").sum().backward(),
           lambda: torch.nn.functional.interpolate(torch.tensor(small, requires_grad=True), scale_factor=2,
                                                   mode="bicubic").sum().backward())
    table, indices = rng.standard_normal((10000, 64)).astype(np.float32), rng.integers(0, 10000, (256, 32))
    yield ("embedding (10000, 64), indices (256, 32)",
           lambda: F.embedding(cs.tensor(indices), cs.tensor(table, requires_grad=True)).sum().backward(),
           lambda: torch.nn.functional.embedding(torch.tensor(indices),
                                                 torch.tensor(table, requires_grad=True)).sum().backward())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args().repeat
    torch.set_num_threads(1)
    print(f"{'forward + backward':44s} {'convstack':>10s} {'PyTorch':>10s} {'ratio':>6s}")
    for name, ours, theirs in cases(np.random.default_rng(0)):
        ours_ms, theirs_ms = median_ms(ours, repeat), median_ms(theirs, repeat)
        print(f"{name:44s} {ours_ms:8.1f}ms {theirs_ms:8.1f}ms {ours_ms / theirs_ms:6.2f}")


if __name__ == "__main__":
    main()
