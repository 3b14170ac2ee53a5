"""Peak memory of a ResNet-20 training step (batch 128, 3x32x32) in convstack and PyTorch.

Each framework runs in a fresh subprocess; the figure is the peak resident set size reached
during two training steps minus the resident set size after imports, model, optimizer and input
were built (see ``convstack.bench.memory`` for the details).

    python3 benchmarks/memory.py [--threads N]
"""

import argparse

from convstack.bench.memory import resnet20_peak_memory
from convstack.bench.runner import format_memory
from convstack.bench.suite import import_torch
from convstack.bench.threads import available_cores

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=available_cores())
    args = parser.parse_args()
    print(format_memory(resnet20_peak_memory(args.threads, with_torch=import_torch() is not None)))
