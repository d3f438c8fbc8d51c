"""``imsg rpc --socket``: the same protocol for many clients at once on a Unix socket.

Each connection is its own session (its own subscriptions); all share one database connection
and the worker threads. The socket is created mode 0600 (bound under umask 0177, so it is never
reachable by others even for an instant); a parent directory the server creates is 0700.

- A stale socket file (nobody accepts on it: a crashed run) is replaced. A live one means
  another server is running: startup fails with ``SocketInUse``. A path that exists but is not
  a socket is never touched.
- Every ``CHECK_S`` the server checks that the path still is its socket; if it was unlinked
  (e.g. a tmp cleaner, or the directory removed), it binds a new one at the same path.
  Connected clients are unaffected.
- SIGTERM/SIGINT: stop accepting, unsubscribe everything, remove the socket file, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import Awaitable, Callable
from typing import Literal

from imsg.errors import ImsgError, InvalidInput
from imsg.rpc.server import Server, Session
from imsg.rpc.transport import READ_CHUNK, StreamSink

log = logging.getLogger("imsg.rpc")

CHECK_S = 0.5
MAX_PATH_BYTES = 103  # sun_path is 104 bytes on macOS (108 on Linux), NUL included
SocketState = Literal["listening", "stale", "missing", "not-a-socket"]


class SocketInUse(ImsgError):
    """Another server already accepts connections on the socket path."""


def default_socket_path() -> str:
    """``$IMSG_SOCKET``, else ``$XDG_RUNTIME_DIR/imsg/rpc.sock``, else on macOS
    ``~/Library/Application Support/imsg/rpc.sock``, else ``/tmp/imsg-<uid>/rpc.sock``."""
    if os.environ.get("IMSG_SOCKET"):
        return os.path.abspath(os.path.expanduser(os.environ["IMSG_SOCKET"]))
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "imsg", "rpc.sock")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Application Support/imsg/rpc.sock")
    return f"/tmp/imsg-{os.getuid()}/rpc.sock"


def probe(path: str, timeout: float = 1.0) -> SocketState:
    """What is at ``path``: a server accepting connections, a stale socket, nothing, or
    something that is not a socket."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    if not stat.S_ISSOCK(mode):
        return "not-a-socket"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except FileNotFoundError:
            return "missing"
        except OSError:
            return "stale"
    return "listening"


def prepare_path(path: str, *, own_dir: bool = False) -> None:
    """Make ``path`` bindable: check its length, create its directory (0700), remove a stale
    socket. With ``own_dir`` (the default path) an existing directory must belong to this user
    and is set to 0700. Raises InvalidInput (too long, not a socket, a foreign directory) or
    SocketInUse."""
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise InvalidInput(f"Socket path too long ({len(os.fsencode(path))} bytes, at most "
                           f"{MAX_PATH_BYTES}): {path}")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o700, exist_ok=True)
        os.chmod(parent, 0o700)
    elif own_dir:
        if os.stat(parent).st_uid != os.getuid():
            raise InvalidInput(f"{parent} belongs to another user; refusing to serve there "
                               "(use --socket PATH or IMSG_SOCKET)")
        os.chmod(parent, 0o700)
    state = probe(path)
    if state == "not-a-socket":
        raise InvalidInput(f"{path} exists and is not a socket; refusing to replace it")
    if state == "listening":
        raise SocketInUse(f"Another imsg rpc is already serving {path}")
    if state == "stale":
        log.warning("replacing stale socket %s", path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class Listener:
    """The listening socket, re-created whenever its path disappears."""

    def __init__(self, path: str, on_client: Callable[[asyncio.StreamReader,
                                                       asyncio.StreamWriter], Awaitable[None]],
                 *, own_dir: bool = False) -> None:
        self.path = path
        self._own_dir = own_dir
        self._on_client = on_client
        self._server: asyncio.AbstractServer | None = None
        self._identity: tuple[int, int] | None = None

    async def start(self) -> None:
        prepare_path(self.path, own_dir=self._own_dir)
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._on_client, path=self.path,
                                                           limit=READ_CHUNK)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        st = os.stat(self.path)
        self._identity = (st.st_dev, st.st_ino)
        log.info("listening on %s", self.path)

    async def keep_alive(self) -> None:
        """Re-create the socket if its path is unlinked; runs until cancelled."""
        while True:
            await asyncio.sleep(CHECK_S)
            try:
                st = os.lstat(self.path)
                if (st.st_dev, st.st_ino) != self._identity:
                    log.warning("%s now belongs to another file; no longer reachable there",
                                self.path)
                    return
            except FileNotFoundError:
                log.warning("%s was removed; re-creating it", self.path)
                self._stop_listening()
                try:
                    await self.start()
                except (ImsgError, OSError) as exc:
                    log.error("cannot re-create %s: %s", self.path, exc)
                    return

    def close(self) -> None:
        """Stop accepting and remove the socket file if it is still ours."""
        self._stop_listening()
        with contextlib.suppress(OSError):
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self._identity:
                os.unlink(self.path)

    def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


def serve_socket(path: str | None, db_path: str | None) -> int:
    """Serve on ``path`` (None: ``default_socket_path()``) until SIGTERM/SIGINT, then return 0.
    Raises SocketInUse/InvalidInput (see ``prepare_path``), or ImsgError when the socket cannot
    be bound."""
    where = os.path.abspath(os.path.expanduser(path)) if path else default_socket_path()
    return asyncio.run(_serve_socket(where, db_path, own_dir=not path))


async def _serve_socket(path: str, db_path: str | None, *, own_dir: bool) -> int:
    loop = asyncio.get_running_loop()
    server = Server(db_path, "socket")
    sessions: set[Session] = set()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(server, StreamSink(writer))
        sessions.add(session)
        try:
            while not session.sink.lost.is_set():
                try:
                    data = await reader.read(READ_CHUNK)
                except (ConnectionError, OSError):
                    data = b""
                await session.feed(data)
                if not data:
                    break
        finally:
            await session.close()
            sessions.discard(session)

    listener = Listener(path, on_client, own_dir=own_dir)
    try:
        await listener.start()
    except OSError as exc:
        server.close()
        raise ImsgError(f"Cannot listen on {path}: {exc.strerror or exc}") from None
    except ImsgError:
        server.close()
        raise
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    keeper = loop.create_task(listener.keep_alive())
    await stop.wait()
    keeper.cancel()
    listener.close()
    for session in sessions:
        session.interrupt()
    await asyncio.gather(*(session.close() for session in list(sessions)))
    server.close()
    return 0
