"""Timing, interleaving and statistics of the side-by-side benchmark.

A ``Workload`` holds two setups, one per framework. A setup builds its inputs once and returns
a *rep*: a zero-argument callable that runs one repetition and returns the seconds it measured
(each rep times only its own region, so that a backward-only row can build its graph untimed).
The runner warms both reps up, then alternates them (convstack, PyTorch, convstack, ...) so
that a burst of load from other processes slows both alike, and reduces each list of times to
its median and interquartile range. The ratio is convstack's median over PyTorch's.

Before each rep the runner pauses for ``settle`` seconds (``convstack bench`` uses
``SETTLE_S``). Both frameworks keep their worker threads spinning for a while after a call
(OpenBLAS for about 2^28 cycles, a tenth of a second here; PyTorch's OpenMP pool for its
spin count) before they sleep, and on two cores a rep timed while the other framework's
workers still spin runs up to twice as slow (measured: the ResNet 32@16x16 forward, 6.3 ms
alone against 11.5-12.5 ms right after a PyTorch call, and PyTorch's 1.3 ms against 3.3-30 ms
right after a convstack call). After the pause, a rep shorter than ``REWARM_BELOW_S`` is
preceded by untimed reps of the same framework for ``REWARM_S`` (at least one), which wake
its own workers and warm the caches: the timed rep then runs as it would in a training loop
in a process of its own, back to back with the previous call, with the other framework's
threads asleep. (A single untimed rep was not enough on this VM: the LeNet C1 forward, 0.5 ms
back to back, timed 1.0-4.2 ms right after a pause and one rep.)
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

FRAMEWORKS = ("convstack", "pytorch")
SETTLE_S = 0.25
REWARM_BELOW_S = 0.5
REWARM_S = 0.05


@dataclass
class Workload:
    """One row of the table.

    Args:
        name: short unique name, matched by ``--filter``.
        group: ``"layer"`` (counted in the geometric mean) or ``"model"``.
        description: what is run and timed, in words (shapes, batch, what the time covers).
        convstack: ``setup(context) -> rep`` for convstack.
        pytorch: ``setup(context, torch) -> rep`` for PyTorch, or None.
        scale: factor applied to every measured time (e.g. a fraction of an epoch
            extrapolated to the whole epoch); 1 when the rep is the whole workload.
    """

    name: str
    group: str
    description: str
    convstack: Callable
    pytorch: Optional[Callable] = None
    scale: float = 1.0
    note: str = ""


@dataclass
class Result:
    name: str
    group: str
    description: str
    times: dict = field(default_factory=dict)  # framework -> list of seconds (scaled)
    errors: dict = field(default_factory=dict)  # framework -> one-line error
    note: str = ""

    def stats(self, framework: str) -> Optional[dict]:
        times = self.times.get(framework)
        return summarise(times) if times else None

    @property
    def ratio(self) -> Optional[float]:
        ours, theirs = self.stats("convstack"), self.stats("pytorch")
        if ours is None or theirs is None or theirs["median_s"] <= 0:
            return None
        return ours["median_s"] / theirs["median_s"]


def summarise(times: list) -> dict:
    """Median, quartiles (inclusive method), extremes and count of a list of seconds."""
    ordered = sorted(times)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {"median_s": statistics.median(ordered), "q1_s": q1, "q3_s": q3, "min_s": ordered[0],
            "max_s": ordered[-1], "count": len(ordered), "times_s": list(times)}


def geometric_mean(values) -> Optional[float]:
    values = [v for v in values if v is not None and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def timed(function: Callable) -> Callable:
    """A rep that times the whole of ``function()``."""

    def rep() -> float:
        start = time.perf_counter()
        function()
        return time.perf_counter() - start

    return rep


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:200]


def run_workload(workload: Workload, context: dict, torch=None, repeat: int = 5, warmup: int = 1,
                 progress: Optional[Callable] = None, settle: float = 0.0) -> Result:
    """Set both frameworks up, warm them up, then time them interleaved, ``repeat`` reps each.

    ``settle``: seconds of pause before every rep, so that the other framework's worker
    threads have stopped spinning (see the module's docstring).
    """
    result = Result(workload.name, workload.group, workload.description, note=workload.note)
    reps = {}
    setups = {"convstack": lambda: workload.convstack(context)}
    if torch is not None and workload.pytorch is not None:
        setups["pytorch"] = lambda: workload.pytorch(context, torch)
    for framework, setup in setups.items():
        try:
            reps[framework] = setup()
        except Exception as error:  # a broken op in one framework must not stop the whole run
            result.errors[framework] = _one_line(error)
    for framework in reps:
        result.times[framework] = []
    last = {}
    for iteration in range(warmup + repeat):
        for framework in list(reps):
            try:
                if settle > 0:
                    time.sleep(settle)
                    if last.get(framework, 0.0) < REWARM_BELOW_S and iteration > 0:
                        until = time.perf_counter() + REWARM_S
                        reps[framework]()
                        while time.perf_counter() < until:
                            reps[framework]()
                seconds = last[framework] = reps[framework]()
            except Exception as error:
                result.errors[framework] = _one_line(error)
                result.times.pop(framework, None)
                del reps[framework]
                continue
            if iteration >= warmup:
                result.times[framework].append(seconds * workload.scale)
    reps.clear()  # free the workload's arrays before the next one
    if progress is not None:
        progress(result)
    return result


def select(workloads, pattern: Optional[str]):
    """Workloads whose name contains ``pattern`` (case-insensitive); all when it is None."""
    if not pattern:
        return list(workloads)
    return [w for w in workloads if pattern.lower() in w.name.lower()]


# ------------------------------------------------------------------------------------ output
def _ms(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    milliseconds = seconds * 1e3
    return f"{milliseconds:.3f}" if milliseconds < 1 else f"{milliseconds:.2f}" if milliseconds < 100 else \
        f"{milliseconds:.0f}"


def _spread(stats: Optional[dict]) -> str:
    return "-" if stats is None else f"{_ms(stats['q1_s'])}-{_ms(stats['q3_s'])}"


def format_table(results, memory=None) -> str:
    """The plain-text table: one row per workload, then geometric means, then peak memory."""
    header = ("workload", "convstack ms", "IQR", "pytorch ms", "IQR", "ratio")
    rows = []
    for result in results:
        ours, theirs = result.stats("convstack"), result.stats("pytorch")
        ratio = result.ratio
        rows.append((result.name, _ms(ours and ours["median_s"]), _spread(ours),
                     _ms(theirs and theirs["median_s"]), _spread(theirs), "-" if ratio is None else f"{ratio:.2f}"))
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(widths[0]) if i == 0 else str(cell).rjust(widths[i])
                       for i, cell in enumerate(row)) for row in [header] + rows]
    lines.insert(1, "-" * len(lines[0]))
    for result in results:
        for framework, error in result.errors.items():
            lines.append(f"  {result.name}: {framework} failed: {error}")
    summary = summarise_ratios(results)
    if summary["geomean_layer_ratio"] is not None:
        conv = summary["geomean_conv_ratio"]
        lines.append(f"geometric mean of the {summary['layer_rows_with_ratio']} per-layer ratios: "
                     f"{summary['geomean_layer_ratio']:.2f}"
                     + ("" if conv is None else f" ({summary['conv_rows_with_ratio']} convolution rows: {conv:.2f})"))
    for entry in memory or ():
        lines.append(format_memory(entry))
    return "\n".join(lines)


def format_memory(entry: dict) -> str:
    def mib(value):
        return "-" if value is None else f"{value / 2**20:.0f} MiB"

    ratio = "-" if entry.get("ratio") is None else f"{entry['ratio']:.2f}"
    text = (f"peak memory, {entry['name']}: convstack {mib(entry.get('convstack_bytes'))}, "
            f"pytorch {mib(entry.get('pytorch_bytes'))}, ratio {ratio}")
    for framework in FRAMEWORKS:
        if entry.get(f"{framework}_error"):
            text += f"\n  {framework} failed: {entry[framework + '_error']}"
    return text


def summarise_ratios(results) -> dict:
    layer = [r.ratio for r in results if r.group == "layer" and r.ratio is not None]
    conv = [r.ratio for r in results if r.group == "layer" and r.name.startswith("conv") and r.ratio is not None]
    return {"geomean_layer_ratio": geometric_mean(layer), "layer_rows_with_ratio": len(layer),
            "geomean_conv_ratio": geometric_mean(conv), "conv_rows_with_ratio": len(conv)}


def to_json(results, memory, machine: dict, settings: dict) -> dict:
    """The machine-readable results (schema ``convstack-bench/1``, described in ``convstack.bench``)."""
    rows = []
    for result in results:
        row = {"name": result.name, "group": result.group, "description": result.description, "note": result.note,
               "ratio": result.ratio, "errors": dict(result.errors)}
        for framework in FRAMEWORKS:
            row[framework] = result.stats(framework)
        rows.append(row)
    return {"schema": "convstack-bench/1", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine,
            "settings": settings, "results": rows, "memory": list(memory or ()), "summary": summarise_ratios(results)}
