"""The ``convstack`` command: train | evaluate | predict | summary | lr-find | visualize | filter | export | bench
| dashboard."""

from __future__ import annotations

import os
import sys

from convstack.cli import (
    bench_command,
    dashboard_command,
    evaluate_command,
    export_command,
    filter_command,
    lr_find_command,
    predict_command,
    summary_command,
    train_command,
    visualize_command,
)
from convstack.cli.args import Parser

COMMANDS = (
    train_command,
    evaluate_command,
    predict_command,
    summary_command,
    lr_find_command,
    visualize_command,
    filter_command,
    export_command,
    bench_command,
    dashboard_command,
)


def build_parser() -> Parser:
    parser = Parser(prog="convstack", description="convstack: convolutional networks from first principles")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (ValueError, OSError, MemoryError, ImportError) as error:
        # A user's mistake (a bad file, a wrong shape, a size that cannot fit, an optional package
        # not installed): one line, exit code 2, no traceback. CONVSTACK_DEBUG=1 shows the traceback.
        if os.environ.get("CONVSTACK_DEBUG"):
            raise
        message = str(error) or type(error).__name__
        if isinstance(error, MemoryError) and "would need" not in message:  # NumPy's own, not check_allocation's
            message = f"out of memory: {message}"
        print(f"convstack {args.command}: error: {' '.join(message.split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"convstack {args.command}: interrupted", file=sys.stderr)
        return 130
