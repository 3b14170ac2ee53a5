"""What watching costs: `convstack train` against `convstack train --live` with the page open.

Each run is a fresh `convstack train` process (LeNet-5, Fashion-MNIST as found); the live
runs have the page open in headless Chromium for the whole run (Selenium), so the
recorder, the server's thread and the browser all take their share. Plain and live runs
alternate (ABBA...), and the medians of the per-run mean epoch time (training steps only,
the Trainer's ``time``) and of the fit's wall time (with validation, checkpoints and the
per-epoch pictures) are compared. On a shared machine wall times are noisy; the CPU time
of the training process (all of `convstack train`: loading, training, evaluation, report)
and of the browser's processes during the run say where the extra work goes.

    python3 benchmarks/dashboard_overhead.py [--pairs 5] [--epochs 2] [--limit-train 60000]
"""

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOURCE = str(Path(__file__).resolve().parents[1] / "src")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1700",
)


def browser():
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("google-chrome")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='convstack-bench-')}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=options)


def descendants_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system, own and reaped children's) of ``root``'s process tree, from /proc."""
    parents, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])  # field 4: the parent's id
        times[int(entry)] = sum(int(value) for value in fields[11:15])  # fields 14-17: utime stime cutime cstime
    tree, frontier = {root}, [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier and pid not in tree]
        tree.update(children)
        frontier = children
    return sum(times.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(usage) -> float:
    return usage.ru_utime + usage.ru_stime


def one_run(live: bool, args, driver, folder: Path) -> dict:
    out = folder / f"run-{time.monotonic_ns()}"
    command = [sys.executable, "-m", "convstack", "train", "--epochs", str(args.epochs), "--out", str(out),
               "--no-progress", "--limit-train", str(args.limit_train)]  # fmt: skip
    if live:
        command += ["--live", "--port", "0"]
    environment = dict(os.environ, PYTHONPATH=SOURCE)
    browser_before = descendants_cpu_seconds(driver.service.process.pid)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=environment)
    lines = []
    for line in process.stderr:
        lines.append(line)
        match = re.search(r"live page: (\S+)", line)
        if match:
            driver.get(match.group(1))  # the page stays open, following the run, until it ends
        if line.startswith("training "):
            break
    lines += process.stderr.readlines()
    if process.wait() != 0:
        raise RuntimeError("".join(lines))
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    browser_seconds = descendants_cpu_seconds(driver.service.process.pid) - browser_before
    history = json.loads((out / "history.json").read_text())
    results = json.loads((out / "results.json").read_text())
    if live:
        driver.get("about:blank")
    shutil.rmtree(out)
    return {
        "epoch_seconds": statistics.mean(row["time"] for row in history),
        "fit_seconds": results["wall_seconds"],
        "process_cpu_seconds": cpu_seconds(children) - cpu_seconds(children_before),
        "browser_cpu_seconds": browser_seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit-train", type=int, default=60000)
    args = parser.parse_args()
    driver = browser()
    runs = {False: [], True: []}
    with tempfile.TemporaryDirectory() as folder:
        for pair in range(args.pairs):
            for live in (False, True) if pair % 2 == 0 else (True, False):
                figures = one_run(live, args, driver, Path(folder))
                runs[live].append(figures)
                label = "live + page" if live else "plain"
                print(f"pair {pair + 1} {label:12s} epoch {figures['epoch_seconds']:7.3f} s   "
                      f"fit {figures['fit_seconds']:7.2f} s   CPU: training process "
                      f"{figures['process_cpu_seconds']:7.2f} s, browser {figures['browser_cpu_seconds']:6.2f} s",
                      flush=True)  # fmt: skip
    driver.quit()
    print()
    for key in ("epoch_seconds", "fit_seconds", "process_cpu_seconds", "browser_cpu_seconds"):
        plain = statistics.median(r[key] for r in runs[False])
        live = statistics.median(r[key] for r in runs[True])
        if plain <= 0:
            print(f"{key:20s} median plain {plain:8.3f}  live+page {live:8.3f}")
            continue
        ratios = [b[key] / a[key] for a, b in zip(runs[False], runs[True])]
        print(f"{key:20s} median plain {plain:8.3f}  live+page {live:8.3f}  ratio of medians {live / plain:.4f}  "
              f"median of pair ratios {statistics.median(ratios):.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
