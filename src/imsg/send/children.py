"""The osascript children of this process: each in its own process group, all stoppable at once.

Every osascript imsg starts goes through ``spawn`` and is registered until it has been reaped.
``terminate_all`` (the RPC server calls it at shutdown; the CLI on SIGINT/SIGTERM/SIGHUP)
refuses new children from then on and kills the process group of every live one, so nothing
imsg started can go on sending after imsg is gone. The thread waiting for a killed child sees
``stop_reason`` and reports the send as interrupted (``imsg.send.applescript``); a send that
has not started its child yet is refused (``not_started``); a send confirming its row in
chat.db stops waiting (``check_stopped``).

Thread-safe; ``terminate_all(wait_s=0)`` is also safe inside a signal handler of the thread
that is waiting for a child (the lock is re-entrant and nothing there blocks).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from types import FrameType

from imsg.errors import Disposition, SendInterrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Child:
    """One running osascript. ``stop_reason`` is set when ``terminate_all`` killed it."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.stop_reason: str | None = None

    def kill_group(self) -> None:
        """SIGKILL the child's whole process group (it leads one); gone already is fine."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


class Registry:
    """The live children of one process, and whether it is shutting down."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._reaped = threading.Condition(self._lock)
        self._live: set[Child] = set()
        self._closed: str | None = None

    @property
    def stop_reason(self) -> str | None:
        """Why sends are being stopped (None while they are not)."""
        return self._closed

    def spawn(self, args: Sequence[str]) -> Child:
        """Start ``args`` with stdin/stdout/stderr piped, as the leader of a new session (so of
        its own process group), and register it. Raises SendInterrupted (``not_started``)
        once ``terminate_all`` has run, and OSError when the binary cannot be started."""
        with self._lock:
            if self._closed is not None:
                raise SendInterrupted(f"{self._closed}; the send was not started",
                                      disposition="not_started")
            process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, start_new_session=True)
            child = Child(process)
            self._live.add(child)
            if self.stop_reason is not None:  # a signal handler ran terminate_all in Popen
                child.stop_reason = self.stop_reason
                child.kill_group()
        return child

    def release(self, child: Child) -> None:
        """Forget a child that has been reaped."""
        with self._lock:
            self._live.discard(child)
            self._reaped.notify_all()

    def terminate_all(self, reason: str, wait_s: float = 2.0) -> int:
        """Refuse new children, kill every live one's process group, and wait up to ``wait_s``
        for their threads to reap them. Returns how many were killed. Idempotent."""
        with self._lock:
            if self._closed is None:
                self._closed = reason
            live = [child for child in self._live if child.stop_reason is None]
            for child in live:
                child.stop_reason = self._closed
                child.kill_group()
            deadline = time.monotonic() + wait_s
            while self._live and (left := deadline - time.monotonic()) > 0:
                self._reaped.wait(left)
        return len(live)

    def check_stopped(self, disposition: Disposition, doing: str) -> None:
        """Raise SendInterrupted(``disposition``) if sends are being stopped; ``doing`` says
        what the send was doing (e.g. "confirming the row in chat.db")."""
        reason = self._closed
        if reason is not None:
            raise SendInterrupted(f"{reason} while {doing}; the outcome is unknown: check the "
                                  "chat before sending again", disposition=disposition)


REGISTRY = Registry()


def spawn(args: Sequence[str]) -> Child:
    return REGISTRY.spawn(args)


def release(child: Child) -> None:
    REGISTRY.release(child)


def terminate_all(reason: str = "imsg is shutting down", wait_s: float = 2.0) -> int:
    """Stop every in-flight osascript of this process and refuse new ones (see the module
    docstring). The RPC server calls this once at shutdown; pending sends then fail with
    SendInterrupted (``still_in_flight`` for a killed osascript, ``may_have_completed`` while
    confirming, ``not_started`` before osascript ran)."""
    return REGISTRY.terminate_all(reason, wait_s)


def check_stopped(disposition: Disposition, doing: str) -> None:
    REGISTRY.check_stopped(disposition, doing)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While active (main thread only), SIGINT, SIGTERM and SIGHUP stop the sends of this
    process instead of killing it outright: the pending send fails with SendInterrupted and
    the command exits with that error. Previous handlers are restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        terminate_all(f"imsg received {signal.Signals(signum).name}", wait_s=0)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# A normal exit with a sender thread still waiting (e.g. a daemon worker) must not leave its
# osascript behind.
atexit.register(lambda: REGISTRY.terminate_all("imsg exited", wait_s=0))
