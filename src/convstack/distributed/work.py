"""``Work``: one collective in flight, and the deadline every wait for it keeps.

A collective that waits for a rank that has died, hung or lost its network would block
for ever inside MPI. So every collective here is started nonblocking and waited for by
polling its request with a deadline (the process group's ``timeout``): past it, the wait
raises ``DistributedError`` naming the rank, the collective and the timeout, and the job
is stopped (``init_process_group`` makes an uncaught exception abort every rank).

Polling spins on the request for ``SPIN_SECONDS`` (the common case: the peers are a few
microseconds away), then sleeps ``SLEEP_SECONDS`` between tests, so that a rank waiting
for a slow peer (one writing a checkpoint) leaves its core to others.
"""

from __future__ import annotations

import time

#: Seconds a wait tests its request back to back before it starts sleeping between tests.
SPIN_SECONDS = 0.002
#: Seconds slept between two tests after that.
SLEEP_SECONDS = 0.0002


class DistributedError(RuntimeError):
    """A collective failed or did not finish in time: another rank died, hung or cannot be reached."""


class Work:
    """A collective started with ``async_op=True``: ``wait()`` finishes it, ``is_completed()`` asks.

    Args:
        group: the process group it runs in (for its rank, size and timeout).
        test: a callable returning True once the operation has completed (None: complete already).
        description: what it is, for error messages (``all_reduce of 61706 float32 values``).
        on_complete: called once, when the operation is known to be complete (copies results out).
    """

    def __init__(self, group, test=None, description: str = "", on_complete=None):
        self.group = group
        self._test = test
        self.description = description
        self._on_complete = on_complete
        self._done = False
        if test is None:
            self._finish()

    def _finish(self) -> None:
        self._done = True
        self._test = None
        if self._on_complete is not None:
            callback, self._on_complete = self._on_complete, None
            callback()

    def _poll(self) -> bool:
        try:
            done = self._test()
        except DistributedError:
            raise
        except Exception as error:  # MPI reports a failed peer as an exception on the request
            raise DistributedError(
                f"rank {self.group.rank} of {self.group.size}: {self.description} failed: {error}"
            ) from error
        if done:
            self._finish()
        return done

    def is_completed(self) -> bool:
        """Whether the operation has finished (a test that also moves MPI's progress along)."""
        return self._done or self._poll()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the operation completes; ``DistributedError`` past ``timeout`` seconds.

        ``timeout`` defaults to the group's (``init_process_group(timeout=...)``).
        """
        if self._done:
            return True
        limit = self.group.timeout if timeout is None else float(timeout)
        start = time.monotonic()
        spin_until, deadline = start + SPIN_SECONDS, start + limit
        while not self._poll():
            now = time.monotonic()
            if now > deadline:
                raise DistributedError(
                    f"rank {self.group.rank} of {self.group.size}: {self.description} did not complete within "
                    f"{limit:g} s: another rank has died, hung or cannot be reached (see the launcher's output "
                    "above); stopping"
                )
            if now > spin_until:
                time.sleep(SLEEP_SECONDS)
        return True

    def __repr__(self) -> str:
        state = "completed" if self._done else "in flight"
        return f"Work({self.description}, {state})"
