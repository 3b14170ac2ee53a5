"""``convstack train`` on several processes: ``--nproc N`` starts them, each rank joins the group.

``convstack train --nproc N ...`` runs ``mpiexec -n N python -m convstack train ... --out OUT``
(the same options but ``--nproc``, and the run folder decided once, here) and waits; when
the run fails (a rank killed, an error on one of them), it says so and whether the last
checkpoint is there to resume from. ``mpiexec -n N convstack train ...`` starts the ranks
directly; each finds the world in the launcher's variables and joins it
(``join_ranks``), with its share of the machine's cores as compute threads.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy

from convstack import distributed
from convstack.distributed import launch
from convstack.io.checkpoint import CheckpointError, load_checkpoint

# Options the parent handles itself and does not pass on to the ranks.
_PARENT_ONLY = ("nproc", "out")


def default_run_folder(model: str | None, when: float | None = None) -> Path:
    """``runs/MODEL-YYYYmmdd-HHMMSS`` (MODEL: ``convstack train``'s default when None)."""
    from convstack.cli.train_command import DEFAULTS

    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    return Path("runs") / f"{(model or DEFAULTS['model']).replace(':', '_')}-{stamp}"


def rank_arguments(parser, args) -> list:
    """The options of ``args`` that differ from ``parser``'s defaults, as a command line (for the ranks)."""
    arguments = []
    for action in parser._actions:
        if not action.option_strings or action.dest in _PARENT_ONLY or action.dest == "help":
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default:
            continue
        flag = max(action.option_strings, key=len)
        if action.nargs == 0:  # store_true
            arguments.append(flag)
        elif isinstance(value, list):
            for item in value:
                arguments += [flag, str(item)]
        else:
            arguments += [flag, str(value)]
    return arguments


def _checkpoint_note(out: Path) -> str:
    last = out / "last.ckpt"
    if not last.exists():
        return f"no checkpoint was written in {out} yet"
    try:
        state = load_checkpoint(last)  # verifies the checksum
    except CheckpointError as error:
        return f"{last} cannot be used: {error}"
    epochs = state.get("config", {}).get("hyperparameters", {}).get("epochs")
    of = f" of {epochs}" if epochs else ""
    return f"the last checkpoint, {last} (epoch {state['epoch']}{of}), is intact: add --resume to continue from it"


def launch_ranks(args) -> int:
    """Run this training on ``args.nproc`` processes under mpiexec; the exit status for the command."""
    if not distributed.is_available():
        print("convstack train: error: --nproc needs mpi4py and an MPI: pip install \"convstack[mpi]\"",
              file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else default_run_folder(args.model)
    arguments = ["train", *rank_arguments(args.train_parser, args), "--out", str(out)]
    command = launch.mpiexec_command(args.nproc, arguments)
    from convstack.cli.train_command import DEFAULTS

    batch = args.batch_size or DEFAULTS["batch_size"]
    print(f"convstack train: {args.nproc} processes ({' '.join(command[:3])}), {batch} images per "
          f"process per step", file=sys.stderr, flush=True)
    process = subprocess.Popen(command, env=launch.mpiexec_environment())
    try:
        code = process.wait()
    except KeyboardInterrupt:  # mpiexec got the same SIGINT and stops the ranks
        process.wait()
        print("convstack train: interrupted; " + _checkpoint_note(out), file=sys.stderr)
        return 130
    if code == 0:
        return 0
    print(
        f"convstack train: the run on {args.nproc} processes failed: mpiexec exited with status {code} (the messages "
        f"above say which process stopped first; the others were stopped with it); " + _checkpoint_note(out),
        file=sys.stderr,
    )
    return 1


def started_by_launcher() -> bool:
    """Whether a launcher started this process as one of several."""
    started = launch.launcher_world_size()
    return started is not None and started > 1


def join_ranks(args):
    """Under a launcher of several processes: join the default group and take this rank's threads.

    Returns the group, or None for a single process (then only ``--threads`` applies).
    """
    if not started_by_launcher():
        if args.threads is not None:
            launch.set_rank_threads(args.threads)
        return None
    if args.nproc is not None:
        raise ValueError("--nproc starts mpiexec itself: leave it out when running under mpiexec")
    # mpiexec forwards each rank's two streams separately: a line written in two pieces (print's
    # text, then its newline) or held in a block buffer would come out torn or late.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True, write_through=False)
    distributed.init_process_group("mpi", timeout=args.timeout)
    group = distributed.default_group()
    launch.set_rank_threads(args.threads or launch.threads_per_rank(group.local_size))
    return group


def shared_run_folder(args, group) -> Path:
    """The run folder: ``--out``, else rank 0's default one (its clock, broadcast to every rank)."""
    if args.out:
        return Path(args.out)
    when = numpy.array([int(time.time())], dtype=numpy.int64)
    if group is not None:
        distributed.broadcast(when, 0, group)
    return default_run_folder(args.model, float(when[0]))
