"""Peak memory of a ResNet-20 training step, each framework measured in a fresh subprocess.

The child imports its framework, builds ResNet-20 (CIFAR, batch 128 of 3x32x32), its SGD
optimizer and its input, and takes the baseline there: its resident set size (VmRSS). It then
resets the kernel's high-water mark (writing 5 to ``/proc/self/clear_refs``, Linux 4.0+) and
runs two training steps (the first allocates the gradients and the momentum buffers, the
second shows the steady state). The figure reported is the peak resident set size (VmHWM)
minus the baseline: everything the steps allocated, the allocators' caches included. Where the
high-water mark cannot be reset, the baseline is the high-water mark itself (the growth can
then only be under-estimated, never over-estimated) and ``hwm_reset`` is false.

    python3 -m convstack.bench.memory convstack|pytorch [--threads N]   (prints one JSON line)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from convstack.nn.kernels import tiers

STEPS = 2
BATCH = 128


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _convstack_step(threads: int):
    import convstack as cs
    import convstack.nn.functional as F
    from convstack import blas, models
    from convstack.bench.model_workloads import _inputs

    blas.set_threads(threads)
    cs.manual_seed(0)
    model = models.resnet20()
    model.train()
    optimizer = cs.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, labels = _inputs(BATCH, 32, 10)
    x, labels = cs.Tensor._make(x), cs.Tensor._make(labels)

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), labels).backward()
        optimizer.step()

    return step


def _torch_step(threads: int):
    import torch

    from convstack.bench import twins
    from convstack.bench.model_workloads import _inputs

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = twins.CifarResNet()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, labels = (torch.from_numpy(a) for a in _inputs(BATCH, 32, 10))

    def step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), labels).backward()
        optimizer.step()

    return step


def measure_here(framework: str, threads: int) -> dict:
    """Build the step in this process and measure it (call it in a fresh process only)."""
    step = (_convstack_step if framework == "convstack" else _torch_step)(threads)
    baseline_kib = _status_kib("VmRSS")
    reset = _reset_high_water_mark()
    if not reset:
        baseline_kib = _status_kib("VmHWM")
    for _ in range(STEPS):
        step()
    peak_kib = _status_kib("VmHWM")
    return {"framework": framework, "baseline_bytes": baseline_kib * 1024, "peak_bytes": peak_kib * 1024,
            "growth_bytes": (peak_kib - baseline_kib) * 1024, "hwm_reset": reset, "steps": STEPS}


def measure(framework: str, threads: int, timeout: float = 600) -> dict:
    """Run ``measure_here`` in a fresh interpreter; returns its result or ``{'error': ...}``."""
    environment = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
                       NUMBA_NUM_THREADS=str(threads), CONVSTACK_KERNELS=tiers.get_kernel_tier())
    command = [sys.executable, "-m", "convstack.bench.memory", framework, "--threads", str(threads)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit status {done.returncode}: {tail}"[:200]}
    return json.loads(lines[-1])


def resnet20_peak_memory(threads: int, with_torch: bool) -> dict:
    """The memory row: growth of each framework (bytes) and their ratio convstack / PyTorch."""
    entry = {"name": f"resnet20 3x32x32 b{BATCH} train-step ({STEPS} steps, peak RSS growth over baseline)"}
    for framework in ("convstack", "pytorch") if with_torch else ("convstack",):
        result = measure(framework, threads)
        entry[f"{framework}_bytes"] = result.get("growth_bytes")
        entry[f"{framework}_detail"] = result
        if "error" in result:
            entry[f"{framework}_error"] = result["error"]
    ours, theirs = entry.get("convstack_bytes"), entry.get("pytorch_bytes")
    entry["ratio"] = ours / theirs if ours and theirs else None
    return entry


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="peak memory of one framework's ResNet-20 training step")
    parser.add_argument("framework", choices=("convstack", "pytorch"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    print(json.dumps(measure_here(args.framework, args.threads)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
