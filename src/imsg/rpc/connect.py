"""``imsg rpc --connect``: a stdio ↔ Unix-socket bridge to a running ``imsg rpc --socket``.

A gateway that can only spawn a child (``cliPath``) uses the service this way: bytes are
copied both ways unchanged. Stdin EOF half-closes the socket, so the server answers what is
still running and closes; the bridge exits 0 when the server closes, when stdout is closed, and
on SIGTERM/SIGINT. Nothing but the server's frames is ever written to stdout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from types import FrameType

from imsg.errors import ImsgError

CHUNK = 1024 * 1024


def connect(path: str) -> socket.socket:
    """A connected socket; raises ImsgError saying how to start the service."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise ImsgError(
            f"No imsg service at {path} ({exc.strerror or exc}). Start it with "
            "`imsg service install` or `imsg rpc --socket`.") from None
    return sock


def bridge(sock: socket.socket, in_fd: int = 0, out_fd: int = 1) -> int:
    """Copy ``in_fd`` → ``sock`` (on a thread) and ``sock`` → ``out_fd`` until the server
    closes, ``out_fd`` is closed or a signal arrives (in the main thread); returns 0."""
    try:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, _stop)
        threading.Thread(target=_upstream, args=(in_fd, sock), daemon=True,
                         name="imsg-bridge-stdin").start()
        while chunk := sock.recv(CHUNK):
            view = memoryview(chunk)
            while view:
                view = view[os.write(out_fd, view):]
    except (OSError, _Stopped):  # stdout closed, the connection reset, or a signal
        pass
    finally:
        sock.close()
    return 0


class _Stopped(Exception):
    """SIGTERM/SIGINT arrived."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def _upstream(in_fd: int, sock: socket.socket) -> None:
    try:
        while chunk := os.read(in_fd, CHUNK):
            sock.sendall(chunk)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
