"""Run every benchmark workload, convstack against PyTorch: the same as ``convstack bench``.

    python3 benchmarks/run_all.py [--filter SUBSTRING] [--repeat N] [--warmup N] [--json FILE|-]
                                  [--quick] [--threads N] [--no-memory] [--no-torch] [--list]

The harness lives in ``convstack.bench`` (so that an installed convstack has it too).
"""

from convstack.cli.bench_command import main

if __name__ == "__main__":
    raise SystemExit(main())
