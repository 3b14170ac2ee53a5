"""What the compiled tier adds to the start of a run: a first `convstack train` (cold cache) and later ones (warm).

Runs the same short `convstack train` (LeNet-5, one epoch of ``--limit-train`` images) as fresh
processes: on the NumPy reference tier; on the compiled tier with an empty kernel cache (a new
``NUMBA_CACHE_DIR``: every kernel it uses is compiled); and on the compiled tier again with that
cache filled (the kernels are loaded from disk). The extra start-up is the wall time against the
reference tier's; the runs also report their own training time, so the compiled kernels' speed
during the epoch is visible apart from it.

    python benchmarks/startup.py [--rounds 3] [--limit-train 640]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(out: Path, tier: str, cache: Path, limit: int) -> tuple[float, float]:
    """(wall seconds of the whole command, its own training seconds)."""
    env = dict(os.environ, CONVSTACK_KERNELS=tier, NUMBA_CACHE_DIR=str(cache))
    command = [sys.executable, "-m", "convstack", "train", "--epochs", "1", "--limit-train", str(limit),
               "--no-progress", "--out", str(out)]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    training = float(re.search(r"([0-9.]+)s training", done.stdout + done.stderr).group(1))
    return wall, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit-train", type=int, default=640)
    args = parser.parse_args()
    rows = {"numpy": [], "numba cold": [], "numba warm": []}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for round_ in range(args.rounds):
            cache = folder / f"cache-{round_}"  # empty: everything compiles
            rows["numpy"].append(run(folder / f"numpy-{round_}", "numpy", cache, args.limit_train))
            rows["numba cold"].append(run(folder / f"cold-{round_}", "numba", cache, args.limit_train))
            rows["numba warm"].append(run(folder / f"warm-{round_}", "numba", cache, args.limit_train))
    reference = statistics.median(wall for wall, _ in rows["numpy"])
    summary = {}
    for name, values in rows.items():
        wall = statistics.median(w for w, _ in values)
        training = statistics.median(t for _, t in values)
        summary[name] = {"wall_s": round(wall, 2), "training_s": round(training, 2),
                         "extra_s": round(wall - reference, 2)}
        print(f"{name:12s} wall {wall:6.2f} s  (its epoch {training:5.2f} s)  "
              f"extra against numpy {wall - reference:+6.2f} s")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
