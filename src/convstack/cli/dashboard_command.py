"""``convstack dashboard RUN_DIR...``: the live page over run folders, finished or still training."""

from __future__ import annotations

import sys
from pathlib import Path

from convstack.cli.watch_options import add_server_arguments, open_server


def add_parser(subparsers):
    p = subparsers.add_parser(
        "dashboard",
        help="serve the live page over run folders (finished or still training), several overlaid",
        description="Serve a local, read-only page showing one or more run folders written by "
        "`convstack train` (per-step curves and pictures need --live there; else the per-epoch history). "
        "It follows the folders as they grow. Stop it with Ctrl-C.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders to show, overlaid")
    add_server_arguments(p)
    p.set_defaults(run=run)


def run(args) -> int:
    for folder in args.runs:
        if not Path(folder).is_dir():
            raise ValueError(f"RUN_DIR {folder}: no such folder")
    server = open_server(args.runs, args.host, args.port, "convstack dashboard")
    print(f"dashboard of {len(args.runs)} run(s): {server.url}  (Ctrl-C stops it)", file=sys.stderr)
    try:
        while not server.stopping.wait(1.0):
            pass
    except KeyboardInterrupt:  # Ctrl-C: the way to stop it
        print("convstack dashboard: stopped", file=sys.stderr)
    finally:
        server.close(drain=0.5)
    return 0
