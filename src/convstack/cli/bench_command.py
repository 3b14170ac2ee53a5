"""``convstack bench``: convstack against PyTorch (when installed), side by side, interleaved.

Threads: NumPy's OpenBLAS and PyTorch are both set to ``--threads`` (default: every core this
process may use). OpenBLAS reads its environment variables only when NumPy loads, which has
happened by the time this command runs, so the count is set through OpenBLAS's own
``openblas_set_num_threads`` instead; the table's header says what was set, or what the
environment left when it could not be set. The memory row runs in subprocesses that also get
``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import sys

from convstack.cli import args as A


def add_parser(subparsers):
    p = subparsers.add_parser("bench", help="time convstack against PyTorch on the benchmark workloads")
    add_arguments(p)
    p.set_defaults(run=run)


def add_arguments(p) -> None:
    p.add_argument(
        "--filter",
        default=None,
        metavar="SUBSTRING",
        help="run only the workloads whose name contains SUBSTRING (case-insensitive; see --list)",
    )
    p.add_argument(
        "--repeat", type=A.positive_int, default=None, help="timed repetitions per framework (default 5; --quick: 3)"
    )
    p.add_argument("--warmup", type=A.non_negative_int, default=1, help="untimed repetitions first (default 1)")
    p.add_argument(
        "--json",
        default=None,
        metavar="FILE",
        help="also write the results as JSON to FILE ('-': stdout, and the table goes to stderr)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="3 repetitions and a tenth of the LeNet-5 epoch, extrapolated to the whole epoch",
    )
    p.add_argument(
        "--threads",
        type=A.positive_int,
        default=None,
        help="threads for convstack's compiled kernels and NumPy's BLAS, and for PyTorch (default: the cores "
        "available)",
    )
    p.add_argument(
        "--settle",
        type=A.non_negative_float,
        default=None,
        metavar="SECONDS",
        help="pause before each rep so the other framework's spinning worker threads go to sleep (default 0.25)",
    )
    p.add_argument("--kernels", choices=("numba", "numpy"), default=None,
                   help="kernel tier: compiled (numba) or the NumPy reference (default: the one in use, "
                   "CONVSTACK_KERNELS or numba where installed)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory row (two subprocesses)")
    p.add_argument("--no-torch", action="store_true", help="time convstack only, even when PyTorch is installed")
    p.add_argument("--list", action="store_true", help="list the workloads (after --filter) and exit")


def main(argv=None) -> int:
    """``convstack bench`` without the rest of the command line (for the scripts in ``benchmarks/``)."""
    parser = A.Parser(prog="convstack bench", description="convstack against PyTorch, side by side, interleaved")
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args) -> int:
    from convstack.bench import suite
    from convstack.bench.runner import select
    from convstack.bench.workloads import all_workloads

    if args.list:
        for workload in select(all_workloads(args.quick), args.filter):
            print(f"{workload.name}\n    {workload.description}")
        return 0
    settings = suite.Settings(
        filter=args.filter,
        repeat=args.repeat or (3 if args.quick else 5),
        warmup=args.warmup,
        quick=args.quick,
        threads=args.threads,
        memory=not args.no_memory,
        torch=not args.no_torch,
        kernels=args.kernels,
    )
    if args.settle is not None:
        settings.settle = args.settle
    out = sys.stderr if args.json == "-" else sys.stdout
    document = suite.run(settings, out=out)
    if args.json:
        suite.write_json(document, args.json)
    return 0
