"""What watching costs: training with the live page open against training without it.

Two measurements, both LeNet-5 on Fashion-MNIST (as found) with the page open in headless
Chromium (Selenium), so that the recorder, the server's thread and the browser all take
their share:

1. Interleaved, in this process (the figure to trust on a shared machine): two Trainers,
   one plain and one with ``LiveRecorder`` and a ``DashboardServer`` whose page is open,
   train one epoch each in turn (ABBA...), so that both see the same moments of the
   machine; the page has nothing to draw during the plain Trainer's epochs. Reported:
   the medians of the epoch times (training steps only, the Trainer's ``time``) and of the
   whole epoch (with validation, checkpoint and the recorder's pictures), the median of
   the ratios of neighbouring epochs, and the CPU time of the browser during each.
   Before it, the recorder's own CPU time per step and per epoch, and the stream thread's.
2. ``--process-pairs N``: fresh ``convstack train`` and ``convstack train --live``
   processes, alternating; on a loaded machine their wall times vary far more than the
   difference sought.

    python3 benchmarks/dashboard_overhead.py [--epochs 10] [--limit-train 10000] [--process-pairs 0]
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


def thread_cpu_seconds(native_id: int) -> float:
    with open(f"/proc/self/task/{native_id}/stat") as stream:
        fields = stream.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parts(limit_train: int, epochs: int) -> None:
    """The recorder's CPU per step and per epoch, and the stream thread's, in one run in this process."""
    import threading

    import convstack as cs
    from convstack import data, models, optim
    from convstack.dashboard import DashboardServer, LiveRecorder
    from convstack.train import Trainer

    class TimedRecorder(LiveRecorder):
        seconds = {"on_batch_end": 0.0, "on_epoch_end": 0.0}

        def on_batch_end(self, trainer, batch, logs):
            start = time.thread_time()
            super().on_batch_end(trainer, batch, logs)
            self.seconds["on_batch_end"] += time.thread_time() - start

        def on_epoch_end(self, trainer, epoch, logs):
            start = time.thread_time()
            super().on_epoch_end(trainer, epoch, logs)
            self.seconds["on_epoch_end"] += time.thread_time() - start

    cs.manual_seed(0)
    train, test = data.fashion_mnist("train"), data.fashion_mnist("test")
    model = models.get_model("lenet5", num_classes=10, in_channels=1, input_size=28)
    with tempfile.TemporaryDirectory() as folder:
        recorder = TimedRecorder(folder, images=test.images)
        trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9), callbacks=[recorder],
                          out_dir=folder, progress=False)  # fmt: skip
        with DashboardServer([folder], port=0) as server:
            reader = subprocess.Popen([sys.executable, "-c", READ_STREAM, server.url + "events"])
            time.sleep(1.0)
            started = time.perf_counter()
            loader = data.DataLoader(data.Subset(train, list(range(limit_train))), batch_size=64, shuffle=True)
            trainer.fit(loader, data.DataLoader(test, batch_size=256), epochs=epochs)
            wall = time.perf_counter() - started
            streams = [t for t in threading.enumerate() if "process_request" in t.name]
            stream_seconds = sum(thread_cpu_seconds(t.native_id) for t in streams)
            reader.kill()
    steps = epochs * len(loader)
    times = ", ".join(f"{row['time']:.2f}" for row in trainer.history)
    print(f"in this process, {epochs} epochs of {limit_train} images ({wall:.1f} s; epochs {times} s of training):")
    print(f"  recorder per step {recorder.seconds['on_batch_end'] / steps * 1e6:.1f} us of CPU, "
          f"per epoch {recorder.seconds['on_epoch_end'] / epochs * 1e3:.1f} ms")  # fmt: skip
    print(f"  the page's stream thread: {stream_seconds:.2f} s of CPU ({stream_seconds / wall:.2%} of the run)")
    with tempfile.TemporaryDirectory() as folder:  # the step record alone, called in a loop (warm caches)
        recorder = LiveRecorder(folder)
        recorder.on_fit_start(trainer)
        recorder.on_epoch_start(trainer, 0)
        logs = {"loss": 0.5, "acc": 0.5, "seen": 640, "batches": 938}
        started = time.thread_time()
        for step in range(20000):
            recorder.on_batch_end(trainer, step % 938, logs)
        alone = (time.thread_time() - started) / 20000
        recorder.on_fit_end(trainer)
    print(f"  one step record in a loop: {alone * 1e6:.1f} us of CPU")
    print()


READ_STREAM = "import sys, urllib.request\nwith urllib.request.urlopen(sys.argv[1]) as r:\n    while r.read(4096): pass"


def cpu_seconds(usage) -> float:
    return usage.ru_utime + usage.ru_stime


def interleaved(epochs: int, limit_train: int, driver) -> None:
    """Two Trainers, plain and live with the page open, an epoch each in turn (see the module's docstring)."""
    import convstack as cs
    from convstack import data, models, optim
    from convstack.dashboard import DashboardServer, LiveRecorder
    from convstack.train import Trainer

    train, test = data.fashion_mnist("train"), data.fashion_mnist("test")
    subset = data.Subset(train, list(range(limit_train)))
    validation = data.DataLoader(data.Subset(test, list(range(2000))), batch_size=256)
    with tempfile.TemporaryDirectory() as folder:
        trainers, loaders = {}, {}
        for live in (False, True):
            cs.manual_seed(0)
            model = models.get_model("lenet5", num_classes=10, in_channels=1, input_size=28)
            out = Path(folder) / ("live" if live else "plain")
            callbacks = [LiveRecorder(out, images=test.images)] if live else []
            optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            trainers[live] = Trainer(model, optimizer, callbacks=callbacks, out_dir=out, progress=False)
            loaders[live] = data.DataLoader(subset, batch_size=64, shuffle=True)
        whole = {False: [], True: []}
        browser_cpu = {False: [], True: []}
        with DashboardServer([Path(folder) / "live"], port=0) as server:
            driver.get(server.url)
            for epoch in range(1, epochs + 1):
                for live in (False, True) if epoch % 2 else (True, False):
                    before, started = descendants_cpu_seconds(driver.service.process.pid), time.perf_counter()
                    trainers[live].fit(loaders[live], validation, epochs=epoch)  # one epoch more
                    whole[live].append(time.perf_counter() - started)
                    browser_cpu[live].append(descendants_cpu_seconds(driver.service.process.pid) - before)
            time.sleep(1.5)  # the page draws the last epoch
    steps = {live: [row["time"] for row in trainers[live].history] for live in (False, True)}
    print(f"interleaved in one process, {epochs} epochs of {limit_train} images each, plain and live in turn:")
    for name, times in (("training steps", steps), ("whole epoch", whole)):
        plain, live = statistics.median(times[False]), statistics.median(times[True])
        ratios = [b / a for a, b in zip(times[False], times[True])]
        print(f"  {name:15s} median plain {plain:7.3f} s  live+page {live:7.3f} s  ratio of medians "
              f"{live / plain:.4f}  median of neighbour ratios {statistics.median(ratios):.4f}")  # fmt: skip
        print(f"  {'':15s} plain {' '.join(f'{t:.2f}' for t in times[False])}")
        print(f"  {'':15s} live  {' '.join(f'{t:.2f}' for t in times[True])}")
    print(f"  browser CPU per epoch: during plain epochs {statistics.median(browser_cpu[False]):.3f} s, "
          f"during live epochs {statistics.median(browser_cpu[True]):.3f} s")  # fmt: skip
    print()


def one_run(live: bool, args, driver, folder: Path) -> dict:
    out = folder / f"run-{time.monotonic_ns()}"
    command = [sys.executable, "-m", "convstack", "train", "--epochs", str(args.process_epochs), "--out", str(out),
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
    parser.add_argument("--epochs", type=int, default=10, help="epochs of each Trainer, interleaved")
    parser.add_argument("--limit-train", type=int, default=10000)
    parser.add_argument("--process-pairs", type=int, default=0, help="pairs of fresh `convstack train` processes")
    parser.add_argument("--process-epochs", type=int, default=2)
    args = parser.parse_args()
    parts(min(args.limit_train, 20000), 2)
    driver = browser()
    interleaved(args.epochs, args.limit_train, driver)
    runs = {False: [], True: []}
    with tempfile.TemporaryDirectory() as folder:
        for pair in range(args.process_pairs):
            for live in (False, True) if pair % 2 == 0 else (True, False):
                figures = one_run(live, args, driver, Path(folder))
                runs[live].append(figures)
                label = "live + page" if live else "plain"
                print(f"pair {pair + 1} {label:12s} epoch {figures['epoch_seconds']:7.3f} s   "
                      f"fit {figures['fit_seconds']:7.2f} s   CPU: training process "
                      f"{figures['process_cpu_seconds']:7.2f} s, browser {figures['browser_cpu_seconds']:6.2f} s",
                      flush=True)  # fmt: skip
    driver.quit()
    if not args.process_pairs:
        return
    print()
    for key in ("epoch_seconds", "fit_seconds", "process_cpu_seconds", "browser_cpu_seconds"):
        plain = statistics.median(r[key] for r in runs[False])
        live = statistics.median(r[key] for r in runs[True])
        if plain <= 0 or any(r[key] <= 0 for r in runs[False]):  # the idle browser's CPU can round to 0
            print(f"{key:20s} median plain {plain:8.3f}  live+page {live:8.3f}")
            continue
        ratios = [b[key] / a[key] for a, b in zip(runs[False], runs[True])]
        print(f"{key:20s} median plain {plain:8.3f}  live+page {live:8.3f}  ratio of medians {live / plain:.4f}  "
              f"median of pair ratios {statistics.median(ratios):.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
