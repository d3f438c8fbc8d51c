"""``imsg rpc --socket``: the same protocol for many clients at once on a Unix socket.

Each connection is its own ``Session`` (its own subscriptions); all share one ``Server`` (the
database connection and the worker threads).

Who may connect, and how many:

- The path and its directories are checked first (``imsg.rpc.sockpath``: our own directory,
  not writable by others, no symbolic link as the directory). The socket is bound under umask
  0177, so it is mode 0600 from its first instant.
- Every accepted connection's peer uid (``SO_PEERCRED`` / ``LOCAL_PEERCRED``) must be ours;
  others are closed at once, unanswered.
- At most ``Limits.max_clients`` clients (lowered to a quarter of the open-file limit, which
  is first raised towards ``FD_TARGET``); one more gets a ``-32000 Server busy`` line and is
  closed. A client that sends nothing within ``Limits.first_request_s`` of connecting is
  closed, so idle connections cannot lock others out.
- ``accept`` failing with EMFILE/ENFILE (out of descriptors) logs ``TooManyOpenFiles`` and
  retries after ``Limits.accept_backoff_s``; every repeated log line is rate-limited
  (``imsg.rpc.logsetup.RepeatFilter``), and none carries a traceback.
- The listen backlog is ``BACKLOG`` (the kernel may clamp it), so bursts of connects are not
  refused.

Keeping the path (checked every ``Limits.check_s``):

- removed (a tmp cleaner, the directory deleted): the socket is bound again at the same path
  (after the same checks); connected clients are unaffected;
- replaced by something that is not a socket (a regular file…): logged, and watched; once it
  is removed, the socket is bound again;
- replaced by another socket (another server, or someone who took the path over): clients
  can no longer reach us there, so the server stops and ``serve_socket`` raises
  ``SocketInUse`` (exit code 21), letting the supervisor (launchd, systemd) restart it.

Startup refusals: a live server of ours at the path (``SocketInUse``), a socket of another
user (``SocketInUse``), a path that is not a socket (``InvalidInput``; never touched), an
unsafe directory (``InvalidInput``). SIGTERM/SIGINT: stop accepting, end every session,
remove the socket file if it is still ours, return 0. With ``exit_with_parent``, the server
also stops when the process that started it (the service's launcher) is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import signal
import socket
import stat
from dataclasses import dataclass
from typing import Any

from imsg.errors import ImsgError, SocketInUse, TooManyOpenFiles
from imsg.rpc.peercred import peer_uid
from imsg.rpc.server import Server, Session
from imsg.rpc.sockpath import default_socket_path, prepare_path
from imsg.rpc.transport import READ_CHUNK, StreamSink

log = logging.getLogger("imsg.rpc")

BACKLOG = 4096
FD_TARGET = 4096
OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
BUSY_FRAME = (b'{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Server busy",'
              b'"data":"client limit exceeded; try again later"}}\n')


@dataclass(frozen=True)
class Limits:
    """The listener's bounds (see the module docstring)."""

    max_clients: int = 128
    first_request_s: float = 60.0
    check_s: float = 0.5
    accept_backoff_s: float = 0.5


def raise_open_file_limit(target: int = FD_TARGET) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``target`` (never above the hard limit); returns
    the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    return int(soft) if soft != resource.RLIM_INFINITY else target


class Listener:
    """The listening socket at ``path``, its accept loop and its clients' sessions."""

    def __init__(self, path: str, server: Server, *, own_dir: bool = False,
                 limits: Limits = Limits(), max_clients: int | None = None) -> None:
        self.path = path
        self.server = server
        self.limits = limits
        self.max_clients = max_clients or limits.max_clients
        self.sessions: set[Session] = set()
        self._own_dir = own_dir
        self._uid = os.getuid()
        self._sock: socket.socket | None = None
        self._identity: tuple[int, int] | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._displaced = False

    def start(self) -> None:
        """Check the path, bind, listen and start accepting. Raises SocketInUse, InvalidInput
        or ImsgError (the bind failed)."""
        try:
            prepare_path(self.path, own_dir=self._own_dir)
        except OSError as exc:  # a directory that cannot be created or examined
            raise ImsgError(f"Cannot listen on {self.path}: {exc.strerror or exc}"
                            f"{f' ({exc.filename})' if exc.filename else ''}") from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(self.path)
            sock.listen(BACKLOG)
        except OSError as exc:
            sock.close()
            raise ImsgError(f"Cannot listen on {self.path}: {exc.strerror or exc}") from None
        finally:
            os.umask(old_umask)
        sock.setblocking(False)
        st = os.lstat(self.path)
        self._sock = sock
        self._identity = (st.st_dev, st.st_ino)
        self._accepting = asyncio.get_running_loop().create_task(self._accept_loop())
        log.info("listening on %s", self.path)

    async def keep_path(self) -> None:
        """Watch the path every ``check_s`` (see the module docstring); returns only when it
        was taken over by another socket (after closing the listening socket)."""
        while True:
            await asyncio.sleep(self.limits.check_s)
            try:
                st = os.lstat(self.path)
            except FileNotFoundError:
                self._rebind("was removed")
                continue
            except OSError as exc:  # e.g. a component replaced by a file
                log.warning("cannot check %s: %s", self.path, exc.strerror or exc)
                continue
            if (st.st_dev, st.st_ino) == self._identity:
                self._displaced = False
                continue
            if stat.S_ISSOCK(st.st_mode):
                self._stop_listening()
                return
            if not self._displaced:
                log.warning("%s was replaced by a file that is not a socket; waiting for it "
                            "to be removed", self.path)
                self._displaced = True

    def _rebind(self, why: str) -> None:
        log.warning("%s %s; re-creating it", self.path, why)
        self._stop_listening()
        try:
            self.start()
        except (ImsgError, OSError) as exc:
            log.error("cannot re-create %s: %s", self.path, getattr(exc, "message", exc))

    def close(self) -> None:
        """Stop accepting and remove the socket file if it is still ours."""
        self._stop_listening()
        with contextlib.suppress(OSError):
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self._identity:
                os.unlink(self.path)

    async def end_sessions(self) -> None:
        """Interrupt and close every session (at shutdown)."""
        for session in list(self.sessions):
            session.interrupt()
        await asyncio.gather(*(session.close() for session in list(self.sessions)))
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)

    def _stop_listening(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        listening = self._sock
        assert listening is not None
        while True:
            try:
                conn, _ = await loop.sock_accept(listening)
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EINTR, errno.EAGAIN, errno.EPROTO):
                    continue
                if exc.errno in OUT_OF_DESCRIPTORS:
                    log.error(TooManyOpenFiles("accepting a client").message)
                else:
                    log.error("accepting a client failed: %s", exc.strerror or exc)
                await asyncio.sleep(self.limits.accept_backoff_s)
                continue
            self._admit(conn)

    def _admit(self, conn: socket.socket) -> None:
        try:
            uid: int | None = peer_uid(conn)
        except OSError:
            uid = None
        if uid != self._uid:
            log.warning("refused a client of another user (uid %s): only uid %d may connect",
                        uid, self._uid)
            conn.close()
            return
        if len(self._clients) >= self.max_clients:
            log.warning("refused a client: %d clients are connected (the limit)",
                        len(self._clients))
            with contextlib.suppress(OSError):
                conn.setblocking(False)
                conn.send(BUSY_FRAME)
            conn.close()
            return
        task = asyncio.get_running_loop().create_task(self._serve_client(conn))
        self._clients.add(task)
        task.add_done_callback(self._clients.discard)

    async def _serve_client(self, conn: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(sock=conn, limit=READ_CHUNK)
        except OSError:
            conn.close()
            return
        session = Session(self.server, StreamSink(writer))
        self.sessions.add(session)
        try:
            await self._pump(reader, session)
        finally:
            await session.close()
            self.sessions.discard(session)
            writer.close()

    async def _pump(self, reader: asyncio.StreamReader, session: Session) -> None:
        first = True
        while not session.sink.lost.is_set():
            try:
                if first:
                    data = await asyncio.wait_for(reader.read(READ_CHUNK),
                                                  self.limits.first_request_s)
                else:
                    data = await reader.read(READ_CHUNK)
            except TimeoutError:
                log.info("closed a client that sent nothing for %gs",
                         self.limits.first_request_s)
                return
            except (ConnectionError, OSError):
                data = b""
            first = False
            await session.feed(data)
            if not data:
                return


def serve_socket(path: str | None, db_path: str | None, *, exit_with_parent: bool = False,
                 limits: Limits = Limits()) -> int:
    """Serve on ``path`` (None: ``default_socket_path()``) until SIGTERM/SIGINT, then return 0.
    Raises SocketInUse (at start, or when the path was taken over while serving),
    InvalidInput (see ``imsg.rpc.sockpath``), or ImsgError when the socket cannot be bound."""
    where = os.path.abspath(os.path.expanduser(path)) if path else default_socket_path()
    soft = raise_open_file_limit()
    max_clients = max(1, min(limits.max_clients, soft // 4))

    async def main() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await serve(where, db_path, stop, own_dir=not path, limits=limits,
                           max_clients=max_clients, exit_with_parent=exit_with_parent)

    return asyncio.run(main())


async def serve(path: str, db_path: str | None, stop: asyncio.Event, *, own_dir: bool = False,
                limits: Limits = Limits(), max_clients: int | None = None,
                exit_with_parent: bool = False) -> int:
    """Serve on ``path`` until ``stop`` is set (returns 0) or the path is taken over (raises
    SocketInUse). See ``serve_socket``."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_log_loop_error)
    server = Server(db_path, "socket")
    listener = Listener(path, server, own_dir=own_dir, limits=limits, max_clients=max_clients)
    try:
        listener.start()
    except ImsgError:
        server.close()
        raise
    watchers = [loop.create_task(listener.keep_path()), loop.create_task(stop.wait())]
    if exit_with_parent:
        watchers.append(loop.create_task(_parent_gone(os.getppid(), limits.check_s)))
    done, pending = await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    keeper = watchers[0]
    taken_over = keeper in done and not keeper.cancelled() and keeper.exception() is None
    listener.close()
    await listener.end_sessions()
    server.close()
    if taken_over:
        raise SocketInUse(f"{path} was replaced by another socket (owner uid "
                          f"{_owner(path)}), so clients can no longer reach this server; "
                          "exiting so the supervisor restarts it")
    return 0


async def _parent_gone(parent: int, every_s: float) -> None:
    while os.getppid() == parent:
        await asyncio.sleep(every_s)
    log.warning("the process that started this server (pid %d) is gone; stopping", parent)


def _owner(path: str) -> str:
    try:
        return str(os.lstat(path).st_uid)
    except OSError:
        return "unknown"


def _log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """One rate-limited line per event-loop error; the traceback only at debug level."""
    exc = context.get("exception")
    detail = f": {exc!r}" if exc is not None else ""
    log.error("event loop: %s%s", context.get("message", "error"), detail)
    if exc is not None and log.isEnabledFor(logging.DEBUG):
        log.debug("traceback", exc_info=exc)
