"""One benchmark run: thread settings, the interleaved rows, the memory row, the table and the JSON."""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass
from typing import Optional

from convstack import allocator, blas
from convstack import threads as cs_threads
from convstack.atomic import write_text
from convstack.bench import memory, runner, threads
from convstack.bench.workloads import all_workloads
from convstack.nn.kernels import tiers

#: Fraction of the LeNet-5 epoch that ``--quick`` runs (and extrapolates from).
QUICK_EPOCH_FRACTION = 0.1
MEMORY_ROW = "memory"  # --filter matches it against "resnet20 ... memory"


@dataclass
class Settings:
    filter: Optional[str] = None
    repeat: int = 5
    warmup: int = 1
    quick: bool = False
    threads: Optional[int] = None  # None: every core this process may use
    memory: bool = True
    torch: bool = True  # False: convstack only, even when PyTorch is installed
    settle: float = runner.SETTLE_S  # seconds of pause before each rep (see ``runner``)
    kernels: Optional[str] = None  # the kernel tier: None keeps the one in use ("numba" or "numpy")


def import_torch():
    """PyTorch when installed, else None: it is the peer raced, never a dependency."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def kernel_info() -> dict:
    """The kernel tier in use and, for the compiled tier, Numba's version and threading layer."""
    info = {"tier": tiers.get_kernel_tier(), "numba": None, "threading_layer": None, "numba_threads": None}
    if info["tier"] == "numba":
        import numba

        from convstack.nn.kernels.compiled import runtime

        info.update(numba=numba.__version__, threading_layer=runtime.threading_layer(start=True),
                    numba_threads=numba.get_num_threads())
    return info


def machine_info(torch, thread_count: int, blas_set: bool) -> dict:
    import numpy

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "python": sys.version.split()[0], "numpy": numpy.__version__,
            "kernels": kernel_info(), "malloc_tuned": allocator.is_tuned(),
            "blas": dict(threads.blas_info(), set_by_bench=blas_set),
            "torch": None if torch is None else torch.__version__,
            "torch_threads": None if torch is None else torch.get_num_threads(),
            "cores_available": threads.available_cores(), "threads": thread_count}


def run(settings: Settings, workloads=None, out=None) -> dict:
    """Run the selected workloads and the memory row; print progress and the table; return the JSON."""
    out = out or sys.stdout
    torch = import_torch() if settings.torch else None
    thread_count = settings.threads or threads.available_cores()
    if settings.kernels is not None:
        tiers.set_kernel_tier(settings.kernels)
    allocator.tune()  # as `convstack train` runs: the step's arrays stay mapped between steps
    cs_threads.set_num_threads(thread_count)  # the compiled kernels' threads and OpenBLAS's
    blas_set = blas.threads() == thread_count
    if torch is not None:
        threads.set_torch_threads(torch, thread_count)
        torch.manual_seed(0)
    machine = machine_info(torch, thread_count, blas_set)
    context = {"epoch_fraction": QUICK_EPOCH_FRACTION if settings.quick else 1.0}
    selected = runner.select(workloads if workloads is not None else all_workloads(settings.quick), settings.filter)
    print(header(machine, settings), file=out, flush=True)

    def progress(result):
        ratio = "" if result.ratio is None else f"  ratio {result.ratio:.2f}"
        medians = "  ".join(f"{name} {runner._ms(result.stats(name)['median_s'])} ms"
                            for name in runner.FRAMEWORKS if result.stats(name))
        print(f"  {result.name}: {medians}{ratio}", file=out, flush=True)

    results = [runner.run_workload(w, context, torch, settings.repeat, settings.warmup, progress, settings.settle)
               for w in selected]
    memory_rows = []
    if settings.memory and (not settings.filter or settings.filter.lower() in f"resnet20 {MEMORY_ROW}"):
        memory_rows.append(memory.resnet20_peak_memory(thread_count, with_torch=torch is not None))
    if "lenet_data" in context:
        machine["lenet_data"] = context["lenet_data"]
    print("", file=out)
    print(runner.format_table(results, memory_rows), file=out, flush=True)
    if "lenet_data" in context:
        print(f"LeNet-5 data: {context['lenet_data']}"
              + (f"; --quick timed {QUICK_EPOCH_FRACTION:.0%} of the epoch and extrapolated" if settings.quick else ""),
              file=out)
    return runner.to_json(results, memory_rows, machine, vars(settings).copy())


def header(machine: dict, settings: Settings) -> str:
    info = machine["blas"]
    forced = info["environment"].get("OPENBLAS_CORETYPE")
    core_words = "" if info.get("core") is None else \
        f", {info['core']} kernels" + (" (forced by OPENBLAS_CORETYPE)" if forced else "")
    blas_words = (f"{info['library'] or 'unknown BLAS'}{core_words}, "
                  f"{info['threads'] if info['threads'] is not None else '?'} "
                  f"threads ({'set by convstack bench' if info['set_by_bench'] else 'as the environment set it'})")
    torch_words = "not installed: convstack only" if machine["torch"] is None else \
        f"{machine['torch']}, {machine['torch_threads']} threads"
    kernels = machine["kernels"]
    kernel_words = (f"compiled kernels (Numba {kernels['numba']}, {kernels['threading_layer']} threading layer, "
                    f"{kernels['numba_threads']} threads)" if kernels["tier"] == "numba" else "NumPy reference kernels")
    malloc_words = "glibc malloc tuned (convstack.allocator.tune)" if machine["malloc_tuned"] else "malloc as it is"
    return (f"convstack bench: {settings.repeat} reps after {settings.warmup} warm-up, interleaved, "
            f"{settings.settle:g} s pause before each; medians, "
            f"interquartile range; ratio = convstack / PyTorch (lower is better)\n"
            f"convstack: {kernel_words}; {malloc_words}\n"
            f"NumPy {machine['numpy']} on {blas_words}; PyTorch {torch_words}; "
            f"{machine['cores_available']} cores available")


def write_json(document: dict, destination: str) -> None:
    text = json.dumps(document, indent=2)
    if destination == "-":
        print(text)
    else:
        write_text(destination, text + "\n")
