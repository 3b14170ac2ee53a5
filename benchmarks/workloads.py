"""List the benchmark workloads and what each times (definitions: ``convstack.bench.workloads``).

    python3 benchmarks/workloads.py [--filter SUBSTRING]
"""

import sys

from convstack.cli.bench_command import main

if __name__ == "__main__":
    raise SystemExit(main(["--list", *sys.argv[1:]]))
