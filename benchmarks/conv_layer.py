"""Time the convolution rows only (forward, backward-data, backward-weights of every layer).

    python3 benchmarks/conv_layer.py [other convstack bench options: --repeat, --threads, --json ...]

The same as ``convstack bench --filter conv --no-memory``; see ``benchmarks/run_all.py``.
"""

import sys

from convstack.cli.bench_command import main

if __name__ == "__main__":
    raise SystemExit(main(["--filter", "conv", "--no-memory", *sys.argv[1:]]))
