"""Predicted data-parallel scaling over N machines: the ring-allreduce cost model.

A ring allreduce of S bytes over N nodes sends 2(N-1) messages of S/N bytes from each
node (a reduce-scatter, then an allgather), so with bandwidth B and per-message latency a:

    T_allreduce(N) = sum over buckets b of 2(N-1) * (a + S_b / (N * B))
                   = 2(N-1)/N * S / B  +  2(N-1) * k * a          (k buckets, S = sum S_b)

With the batch per node fixed (weak scaling) and a compute time T_c per step per node, a
step takes T_c + (1 - h) T_allreduce(N), h the share of the allreduce hidden behind
backward, and the speedup over one node is N T_c / (T_c + (1 - h) T_allreduce(N)).

The buckets are the ones DistributedDataParallel makes for the model (first 1 MiB, then
``--bucket-cap-mb``); T_c comes from images/s measured on one node (``--images-per-s``)
or, for models not measured, from their training FLOPs at the measured model's rate.

    python3 benchmarks/allreduce_cost_model.py --measured resnet20=IMAGES_PER_S [--batch resnet20=128]
        [--compute-ms resnet50=MS] [--hidden 0] [--bandwidths 10 25 100] [--latency-us 30 30 5]
        [--nodes 1 2 4 8 16 32 64]
"""

from __future__ import annotations

import argparse

# Multiply-accumulates of one forward pass per image (the models' usual figures: ResNet-20 on
# 32x32 CIFAR images, He et al. 2016; ResNet-50 on 224x224 ImageNet images). Training costs
# about three forwards (forward, input gradient, weight gradient).
FORWARD_MACS = {"resnet20": 40.8e6, "resnet50": 4.09e9, "lenet5": 0.42e6}
BATCH = {"resnet20": 128, "resnet50": 32, "lenet5": 64}


def bucket_bytes(model_name: str, bucket_cap_mb: float) -> list:
    """The sizes in bytes of the gradient buckets DistributedDataParallel makes for ``model_name``."""
    from convstack import models
    from convstack.nn.parallel.distributed import FIRST_BUCKET_BYTES
    from convstack.nn.parallel.reducer import assign_buckets

    model = models.get_model(model_name, num_classes=1000 if model_name == "resnet50" else 10)
    params = [p for p in model.parameters() if p.requires_grad]
    cap = int(bucket_cap_mb * 1024 * 1024)
    return [b.nbytes for b in assign_buckets(params, min(FIRST_BUCKET_BYTES, cap), cap)]


def allreduce_seconds(buckets: list, nodes: int, bandwidth_bytes: float, latency_s: float) -> float:
    if nodes == 1:
        return 0.0
    return sum(2 * (nodes - 1) * (latency_s + size / (nodes * bandwidth_bytes)) for size in buckets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet20", "resnet50"])
    parser.add_argument("--measured", required=True, metavar="MODEL=IMAGES_PER_S",
                        help="training images/s of one node for one model (the others scale by FLOPs)")
    parser.add_argument("--batch", nargs="*", default=[], metavar="MODEL=BATCH", help="batch per node")
    parser.add_argument("--compute-ms", nargs="*", default=[], metavar="MODEL=MS",
                        help="a step's compute time per node, instead of the one scaled from --measured")
    parser.add_argument("--hidden", type=float, default=0.0, help="share of the allreduce hidden behind backward")
    parser.add_argument("--bandwidths", nargs="+", type=float, default=[10, 25, 100], help="Gb/s")
    parser.add_argument("--latency-us", nargs="+", type=float, default=[30, 30, 5],
                        help="per-message latency for each bandwidth (us)")
    parser.add_argument("--nodes", nargs="+", type=int, default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--bucket-cap-mb", type=float, default=25.0)
    args = parser.parse_args()
    measured_model, measured_rate = args.measured.split("=")
    macs_per_s = float(measured_rate) * 3 * FORWARD_MACS[measured_model]  # the node's training rate
    batch = dict(BATCH, **{k: int(v) for k, v in (item.split("=") for item in args.batch)})
    given = {k: float(v) / 1e3 for k, v in (item.split("=") for item in args.compute_ms)}
    print(f"one node trains at {macs_per_s / 1e9:.1f} GMAC/s ({measured_model}, {float(measured_rate):.0f} images/s)"
          f"; {args.hidden:.0%} of the allreduce hidden; latency per message "
          + ", ".join(f"{a:g} us at {b:g} Gb/s" for a, b in zip(args.latency_us, args.bandwidths)))
    for name in args.models:
        buckets = bucket_bytes(name, args.bucket_cap_mb)
        compute = given.get(name, batch[name] * 3 * FORWARD_MACS[name] / macs_per_s)
        print(f"\n{name}: {sum(buckets) / 1e6:.2f} MB of gradients in {len(buckets)} buckets; batch {batch[name]} "
              f"per node, compute {compute * 1e3:.0f} ms per step")
        header = " ".join(f"{f'{b:g} Gb/s: allreduce':>20} {'speedup':>8}" for b in args.bandwidths)
        print(f"{'nodes':>5} {header}")
        for nodes in args.nodes:
            cells = []
            for gbits, latency_us in zip(args.bandwidths, args.latency_us):
                communication = allreduce_seconds(buckets, nodes, gbits * 1e9 / 8, latency_us * 1e-6)
                step = compute + (1 - args.hidden) * communication
                cells.append(f"{communication * 1e3:17.2f} ms {nodes * compute / step:8.2f}")
            print(f"{nodes:>5} {' '.join(cells)}")


if __name__ == "__main__":
    main()
