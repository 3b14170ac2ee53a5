"""What ``convstack train`` offers for watching a run: ``--live`` (a page) and ``--tensorboard DIR``.

Kept apart from the training command: ``add_arguments`` adds the options, and ``Watchers``
gives the Trainer its callbacks and runs the page's server beside training.
"""

from __future__ import annotations

import argparse
import errno
import sys
import warnings

import numpy

from convstack.dashboard import DEFAULT_HOST, DEFAULT_PORT, DashboardExposedWarning, DashboardServer, LiveRecorder
from convstack.vis._plot import to_numpy


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, received {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, received {text!r}")
    return value


def add_server_arguments(parser) -> None:
    parser.add_argument(
        "--port",
        type=port_number,
        default=None,
        help=f"port of the page (default {DEFAULT_PORT}, or a free one when it is taken; 0: any free port)",
    )
    parser.add_argument(
        "--host",
        default=None,
        help=f"address to listen on (default {DEFAULT_HOST}: this machine only; another address warns)",
    )


def add_arguments(parser) -> None:
    group = parser.add_argument_group("watching training")
    group.add_argument(
        "--live", action="store_true", help="serve a live page of the run while it trains (prints its URL)"
    )
    add_server_arguments(group)
    group.add_argument(
        "--tensorboard",
        metavar="DIR",
        default=None,
        help="also write TensorBoard event files to DIR (pip install 'convstack[tensorboard]')",
    )


def open_server(runs, host, port, prog: str) -> DashboardServer:
    """Start a ``DashboardServer`` over ``runs``; the default port falls back to a free one.

    Raises:
        ValueError: naming the address when it cannot be listened on.
    """
    host = host or DEFAULT_HOST
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DashboardExposedWarning)
        try:
            try:
                server = DashboardServer(runs, host=host, port=DEFAULT_PORT if port is None else port)
            except OSError as error:
                if port is not None or error.errno != errno.EADDRINUSE:
                    raise
                server = DashboardServer(runs, host=host, port=0)  # the default port is taken: any free one
        except OSError as error:
            shown = DEFAULT_PORT if port is None else port
            raise ValueError(f"--host {host} --port {shown}: cannot listen there ({error.strerror or error})") from None
    for warning in caught:
        print(f"{prog}: warning: {warning.message}", file=sys.stderr)
    return server.start()


def check(args) -> None:
    """Refuse server options without ``--live`` before any work is done."""
    if not args.live and (args.port is not None or args.host is not None):
        raise ValueError("--port and --host set the address of the live page: add --live")


class Watchers:
    """The callbacks and the server that ``--live`` and ``--tensorboard`` ask for.

    Args:
        args: the parsed ``convstack train`` arguments.
        run_dir: the run folder.
        test_set: the test (validation) dataset as the model takes it; its first four
            inputs are the fixed samples of the pictures (read by index: no random draws).
        images: the whole test set for display (raw uint8), in the test loader's order.
        class_names: a name per class.
    """

    def __init__(self, args, run_dir, test_set, images, class_names):
        check(args)
        self.callbacks, self.server = [], None
        if args.live or args.tensorboard:
            samples = numpy.stack([to_numpy(test_set[index][0]) for index in range(min(4, len(test_set)))])
        if args.live:
            self.callbacks.append(LiveRecorder(run_dir, sample=samples[0], images=images, class_names=class_names))
        if args.tensorboard:
            from convstack.train.tensorboard import TensorBoardLogger

            self.callbacks.append(TensorBoardLogger(args.tensorboard, samples=samples[:4], images=images[:4]))
            print(f"TensorBoard: tensorboard --logdir {args.tensorboard}", file=sys.stderr)
        if args.live:
            self.server = open_server([run_dir], args.host, args.port, "convstack train")
            print(f"live page: {self.server.url}", file=sys.stderr)

    def close(self) -> None:
        """Let open pages read the last records (results, report), then stop the server."""
        if self.server is not None:
            self.server.close()
            self.server = None
