"""Training throughput on one machine: 1 process x N threads against N processes x 1 thread (MPI).

Each round also runs 1 process x 1 thread, the baseline both are to be N times as fast as.
For each model, the configurations run one after the other, alternating, ``--rounds`` times,
each in fresh processes (so that every round sees the machine's load of that moment, and a
ratio compares neighbours). In each run, after warm-up steps, ``--steps`` training steps
(SGD with momentum on random data of the model's input shape) alternate with as many
steps under ``no_sync()`` (the same work without gradient communication), and the
gradient's allreduces are also timed alone. Per run it reports (medians over steps):

    images/s        the global batch over the time of a synchronised step (median step; "best":
                    the fastest step, what the machine gives between other users' bursts)
    step, compute   a synchronised step, a step under no_sync (ms)
    allreduce       every bucket's allreduce, one after the other, alone (ms)
    wait            what the synchronised backward waited for at its end (ms): the allreduce
                    time not hidden behind backward (and any wait for a slower rank)
    done            the share of the gradient bytes already averaged when backward's walk ended

    python3 benchmarks/distributed_scaling.py [--models lenet5 resnet20] [--rounds 3] [--steps 20]
        [--global-batch lenet5=64 resnet20=128] [--weak] [--json FILE]

``--weak`` keeps the batch per process (N processes take N times the batch) instead of
the global batch. Needs mpi4py and mpiexec (``pip install "convstack[mpi]"``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy

SHAPES = {"lenet5": (1, 28, 28), "resnet20": (3, 32, 32), "resnet50": (3, 224, 224)}
BATCHES = {"lenet5": 64, "resnet20": 128, "resnet50": 8}


def worker(args) -> None:
    """One rank: time synchronised and no_sync steps and the allreduces alone; rank 0 prints JSON."""
    import convstack as cs
    import convstack.distributed as dist
    import convstack.nn.functional as F
    from convstack import models, optim
    from convstack.distributed import launch
    from convstack.nn.parallel import DistributedDataParallel

    launch.set_rank_threads(args.threads)
    dist.init_process_group("mpi")
    group = dist.default_group()
    cs.manual_seed(0)
    model = DistributedDataParallel(models.get_model(args.model, num_classes=10), bucket_cap_mb=args.bucket_cap_mb)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = numpy.random.default_rng(group.rank)
    images = cs.tensor(rng.standard_normal((args.batch, *SHAPES[args.model])).astype(numpy.float32))
    labels = cs.tensor(rng.integers(0, 10, args.batch))

    def step(synchronised: bool) -> tuple:
        dist.barrier()  # every rank starts the step together: one slow step does not spill into the next
        start = time.perf_counter()
        with contextlib.nullcontext() if synchronised else model.no_sync():
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
        optimizer.step()
        reducer = model.reducer
        done = reducer.last_bytes_done_in_backward / max(1, sum(b.nbytes for b in reducer.buckets))
        return time.perf_counter() - start, reducer.last_wait_seconds if synchronised else 0.0, done

    for _ in range(args.warmup):
        step(True)
    synced, alone, waits, done = [], [], [], []
    for _ in range(args.steps):
        seconds, wait, share = step(True)
        synced.append(seconds)
        waits.append(wait)
        done.append(share)
        if group.size > 1:
            alone.append(step(False)[0])
    buffers = [numpy.zeros_like(bucket.flat) for bucket in model.reducer.buckets]
    allreduce = []
    for _ in range(args.steps if group.size > 1 else 0):
        dist.barrier()
        start = time.perf_counter()
        for buffer in buffers:
            dist.all_reduce(buffer)
        allreduce.append(time.perf_counter() - start)
    if group.rank == 0:
        median = statistics.median
        step_s = median(synced)
        compute_s = median(alone) if alone else step_s
        allreduce_s = median(allreduce) if allreduce else 0.0
        print(json.dumps({
            "images_per_s": args.batch * group.size / step_s,
            "images_per_s_best": args.batch * group.size / min(synced),
            "step_ms": 1e3 * step_s,
            "compute_ms": 1e3 * compute_s,
            "allreduce_ms": 1e3 * allreduce_s,
            "wait_ms": 1e3 * median(waits),
            "done_in_backward": statistics.mean(done) if group.size > 1 else None,
            "buckets": len(model.reducer.buckets),
            "gradient_bytes": int(sum(b.nbytes for b in model.reducer.buckets)),
        }))
    dist.destroy_process_group()


def run_configuration(model: str, processes: int, threads: int, batch: int, args) -> dict:
    from convstack.distributed import launch

    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--model", model, "--threads",
               str(threads), "--batch", str(batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--bucket-cap-mb", str(args.bucket_cap_mb)]
    if processes > 1:
        command = [launch.find_mpiexec(), "-n", str(processes), *command]
    done = subprocess.run(command, capture_output=True, text=True, env=launch.mpiexec_environment())
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="lenet5", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--models", nargs="+", default=["lenet5", "resnet20"], choices=sorted(SHAPES))
    parser.add_argument("--processes", type=int, default=2, help="N: N processes x 1 thread against 1 x N")
    parser.add_argument("--global-batch", nargs="*", default=[], metavar="MODEL=BATCH")
    parser.add_argument("--weak", action="store_true", help="the batch per process stays, the global one grows")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--bucket-cap-mb", type=float, default=25.0)
    parser.add_argument("--json", default=None, help="write every run's figures to this file")
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    batches = dict(BATCHES, **{k: int(v) for k, v in (item.split("=") for item in args.global_batch)})
    n = args.processes
    runs = []
    print(f"{'model':10} {'config':6} {'batch':>9} {'images/s':>9} {'best':>6} {'step ms':>8} {'compute':>8} "
          f"{'allreduce':>9} {'wait':>6} {'done':>6}  round")
    for model in args.models:
        configurations = [("1x1", 1, 1, batches[model]), (f"1x{n}", 1, n, batches[model]),
                          (f"{n}x1", n, 1, batches[model] // (1 if args.weak else n))]
        for round_index in range(args.rounds):
            for name, processes, threads, batch in configurations:
                figures = run_configuration(model, processes, threads, batch, args)
                runs.append(dict(figures, model=model, config=name, batch=batch, round=round_index))
                done = "" if figures["done_in_backward"] is None else f"{figures['done_in_backward']:6.0%}"
                print(f"{model:10} {name:6} {f'{batch}x{processes}':>9} {figures['images_per_s']:9.0f} "
                      f"{figures['images_per_s_best']:6.0f} "
                      f"{figures['step_ms']:8.1f} {figures['compute_ms']:8.1f} {figures['allreduce_ms']:9.2f} "
                      f"{figures['wait_ms']:6.2f} {done:>6}  {round_index + 1}", flush=True)
        def of(config, model=model):
            return [r for r in runs if r["model"] == model and r["config"] == config]

        for key in ("images_per_s", "images_per_s_best"):
            for top, bottom in ((f"{n}x1", f"1x{n}"), (f"{n}x1", "1x1"), (f"1x{n}", "1x1")):
                ratios = [b[key] / a[key] for a, b in zip(of(bottom), of(top))]
                print(f"{model}: {key} of {top} over {bottom}, round by round: "
                      f"{', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
