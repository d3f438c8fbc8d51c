"""Reaching the imsg service on its Unix socket: checked, patient, and able to heal it once.

Every client imsg ships (``imsg rpc --connect``, ``imsg doctor``, ``imsg service install``
waiting for access, and the gateway) connects through here:

- ``connect_checked``: connect, then ask the kernel who serves the socket (peer credentials);
  a server run by another user is refused before a byte is sent (``SocketInUse``: the path
  was taken over).
- ``open_service``: ``connect_checked``, retrying while the socket is missing (ENOENT) or
  nobody accepts on it (ECONNREFUSED), with exponential ``Backoff``. When that is still the
  case after ``Backoff.attempts`` tries and an installed service serves that path, it is
  kicked once (``imsg service restart``) and waited for up to ``Backoff.after_kick_s``.
  Then it raises ``ServiceError`` saying what failed, what was tried, and what to run next.
  Any other failure (permission, a path that is not a socket) is raised at once.
- ``open_service_async``: the same for asyncio clients (the waiting runs on a thread), as a
  stream pair.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from imsg.errors import ServiceError, SocketInUse
from imsg.rpc.peercred import peer_uid

RETRYABLE = (errno.ENOENT, errno.ECONNREFUSED)
Kick = Callable[[str], str | None]


@dataclass(frozen=True)
class Backoff:
    """How patiently ``open_service`` retries: ``attempts`` tries ``first_s`` apart, growing
    by ``factor`` up to ``max_s``; after a kick, up to ``after_kick_s`` more."""

    attempts: int = 6
    first_s: float = 0.05
    factor: float = 2.0
    max_s: float = 1.0
    after_kick_s: float = 10.0

    def delays(self) -> list[float]:
        delay, out = self.first_s, []
        for _ in range(max(0, self.attempts - 1)):
            out.append(delay)
            delay = min(self.max_s, delay * self.factor)
        return out


def connect_checked(path: str, timeout: float | None = None) -> socket.socket:
    """A socket connected to ``path`` whose server runs as this user. Raises OSError from
    ``connect``, or SocketInUse when another user serves the path."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        try:
            owner: int | None = peer_uid(sock)
        except OSError:
            owner = None
        if owner != os.getuid():
            raise SocketInUse(
                f"{path} is served by another user (uid {owner}), not by you: the path was "
                "taken over. Refusing to talk to it; check the socket directory and run "
                "`imsg doctor`.")
        sock.settimeout(None)
        return sock
    except BaseException:
        sock.close()
        raise


def default_kick(path: str) -> str | None:
    """Restart the installed service when it serves ``path``; what was done, or None."""
    from imsg.service import kick

    return kick(path)


def open_service(path: str, *, backoff: Backoff = Backoff(), kick: Kick | None = default_kick,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> socket.socket:
    """Connect to the service at ``path`` (see the module docstring). Raises SocketInUse,
    ServiceError."""
    for delay in [*backoff.delays(), None]:
        outcome = _attempt(path)
        if isinstance(outcome, socket.socket):
            return outcome
        if delay is not None:
            sleep(delay)
    assert isinstance(outcome, OSError)  # the loop ran at least once and did not return
    kicked = kick(path) if kick is not None else None
    if kicked is None:
        raise _unreachable(path, outcome, " Start it with `imsg service install` or "
                                          "`imsg rpc --socket`.")
    deadline = clock() + backoff.after_kick_s
    delay = backoff.first_s
    while True:
        outcome = _attempt(path)
        if isinstance(outcome, socket.socket):
            return outcome
        if clock() >= deadline:
            raise _unreachable(path, outcome, f" {kicked}, but it is still down after "
                                              f"{backoff.after_kick_s:g}s: see `imsg "
                                              "service logs` and `imsg doctor`.")
        sleep(delay)
        delay = min(backoff.max_s, delay * backoff.factor)


def _attempt(path: str) -> socket.socket | OSError:
    """One ``connect_checked``: the socket, or the retryable error (ENOENT, ECONNREFUSED) it
    failed with. Raises ServiceError for any other OSError, and SocketInUse."""
    try:
        return connect_checked(path)
    except OSError as exc:
        if exc.errno not in RETRYABLE:
            raise _unreachable(path, exc, "") from None
        return exc


def _unreachable(path: str, exc: OSError, advice: str) -> ServiceError:
    return ServiceError(f"No imsg service at {path} ({exc.strerror or exc}).{advice}")


async def open_service_async(
        path: str, *, backoff: Backoff = Backoff(), kick: Kick | None = default_kick,
        limit: int = 2 ** 20) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``open_service`` for asyncio: a (reader, writer) pair with line buffers of ``limit``
    bytes."""
    sock = await asyncio.to_thread(open_service, path, backoff=backoff, kick=kick)
    sock.setblocking(False)
    return await asyncio.open_unix_connection(sock=sock, limit=limit)
