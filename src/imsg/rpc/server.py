"""Serving sessions: request lines in, frames out, many requests and subscriptions at once.

A ``Session`` is one client (stdio, or one socket connection). Each request line is answered
by its own task, so a slow ``send`` (on a sender thread) never holds up reads (on the reader
thread), new subscriptions (on watcher threads), instant methods (on the loop) or watch
notifications (each subscription has its own thread); responses may therefore leave out of
order, each with its id. At most ``MAX_INFLIGHT`` requests run at once per session;
beyond that the session stops reading input until one finishes, and responses wait for the
client to read (the sink's backpressure), so a client that pipelines without reading cannot
grow the server's memory.

Startup failure (no Full Disk Access, no database, not a Messages database): the server stays
up and answers every well-formed request with -32603 whose ``data`` is the error and its fix.

``serve_stdio`` is the ``imsg rpc`` process: fd 1 is moved to a private descriptor for frames
and fd 1/``sys.stdout`` are pointed at stderr, so no stray print can corrupt the stream. It
returns 0:

- on stdin EOF: subscriptions end at once; requests still running answer first (reads take
  milliseconds; a send in flight is finished, up to its 30 s timeout, so ``printf '<send>' |
  imsg rpc`` gets its answer); then the queued frames are written while the client reads;
- when stdout is closed: at once;
- on SIGTERM/SIGINT: like EOF, but running requests get ``GRACE_S`` at most.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable
from dataclasses import dataclass

from imsg.chatdb.reader import ChatDB
from imsg.errors import ImsgError
from imsg.rpc import protocol
from imsg.rpc.errors import InternalError, MethodNotFound, ParseError, to_rpc_error
from imsg.rpc.methods import METHODS, Context, Permissions, WatchSpec
from imsg.rpc.params import Params
from imsg.rpc.subscriptions import STALL_S, Subscription, SubscriptionSet
from imsg.rpc.transport import (
    MAX_LINE,
    FdSink,
    Line,
    LineSplitter,
    Overlong,
    PeerGone,
    Sink,
    read_fd,
)
from imsg.rpc.workers import Workers

log = logging.getLogger("imsg.rpc")

MAX_INFLIGHT = 64  # per session; each holds at most one response in memory
GRACE_S = 0.5  # after a signal: how long requests still running may take to answer
FLUSH_S = 0.3  # at shutdown: how long the client may go without reading before we give up


class Server:
    """What every session shares: the database, the worker threads, permission knowledge."""

    def __init__(self, db_path: str | None, transport: str,
                 failure: ImsgError | None = None, *, stall_s: float = STALL_S) -> None:
        """Opens the database; if that fails (or ``failure`` is given: the service is not
        reachable), every request is answered with that error and its fix. ``stall_s``: see
        ``imsg.rpc.subscriptions``."""
        self.transport = transport
        self.stall_s = stall_s
        self.pools = {"reader": Workers(1, "imsg-read"),
                      "watcher": Workers(2, "imsg-subscribe"),
                      "sender": Workers(4, "imsg-send")}
        self.permissions = Permissions()
        self.db: ChatDB | None = None
        self.startup_error: InternalError | None = None
        if failure is None:
            try:
                self.db = ChatDB(db_path)
            except ImsgError as err:
                failure = err
        if failure is not None:
            log.error("cannot serve: %s", failure.message)
            self.startup_error = InternalError(f"imsg rpc cannot serve: {failure.message}")

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


@dataclass(slots=True)
class _Reply:
    frame: bytes | None
    subscription: Subscription | None = None


class Session:
    """One client: request lines in (``feed``), frames out (its sink), its own subscriptions."""

    def __init__(self, server: Server, sink: Sink) -> None:
        self.server = server
        self.sink = sink
        self.subscriptions = SubscriptionSet(sink, server.stall_s)
        self.eof = asyncio.Event()
        self._ctx = None if server.db is None else Context(
            server.db, self.subscriptions, server.transport, server.permissions)
        self._splitter = LineSplitter()
        self._slots = asyncio.Semaphore(MAX_INFLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._closed: asyncio.Task[None] | None = None
        self._interrupted = asyncio.Event()
        self._cut: asyncio.TimerHandle | None = None

    async def feed(self, data: bytes) -> None:
        """Dispatch the complete lines in ``data``; ``b""`` is end of input. Waits while
        ``MAX_INFLIGHT`` requests are running (so input is read no faster than answered)."""
        if self._closing:
            return
        lines = self._splitter.feed(data) if data else self._splitter.finish()
        for line in lines:
            await self._line(line)
        if not data:
            self.eof.set()

    def interrupt(self) -> None:
        """Cut ``close`` short (a signal): requests still running get ``GRACE_S`` to answer,
        then they are abandoned (a send may still complete in Messages)."""
        if self._cut is None:
            self._cut = asyncio.get_running_loop().call_later(GRACE_S, self._interrupted.set)

    async def close(self) -> None:
        """Unsubscribe all; let every running request answer (reads take milliseconds, a send
        at most its timeout) unless ``interrupt`` was called; then write what is queued for as
        long as the client keeps reading it. When the client is gone nothing is waited for.
        Idempotent."""
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closed)

    async def _close(self) -> None:
        self._closing = True
        self.subscriptions.close()
        await self._settle()
        for task in list(self._tasks):
            task.cancel()
        self.subscriptions.close()
        if not self.sink.lost.is_set():
            await self._flush()

    async def _settle(self) -> None:
        if not self._tasks:
            return
        stops = [asyncio.ensure_future(self._interrupted.wait()),
                 asyncio.ensure_future(self.sink.lost.wait())]
        try:
            while self._tasks and not any(stop.done() for stop in stops):
                await asyncio.wait([*self._tasks, *stops], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for stop in stops:
                stop.cancel()

    async def _flush(self) -> None:
        closing = asyncio.ensure_future(self.sink.aclose())
        backlog = self.sink.backlog()
        while not (await asyncio.wait([closing], timeout=FLUSH_S))[0]:
            now = self.sink.backlog()
            if now >= backlog:
                log.warning("the client stopped reading; %d bytes of responses dropped", now)
                closing.cancel()
                return
            backlog = now

    async def _line(self, line: Line) -> None:
        if isinstance(line, Overlong):
            frame = protocol.Frame(
                [protocol.Rejected(ParseError(f"line longer than {MAX_LINE} bytes"))], False)
        elif not line or line.isspace():
            return
        else:
            frame = protocol.parse(line)
        await self._slots.acquire()
        task = asyncio.get_running_loop().create_task(self._answer(frame))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, frame: protocol.Frame) -> None:
        try:
            if frame.is_batch:
                replies = await asyncio.gather(*(self._reply(item) for item in frame.items))
            else:
                replies = [await self._reply(frame.items[0])]
            frames = [r.frame for r in replies if r.frame is not None]
            if frames:
                await self.sink.send(protocol.batch(frames) if frame.is_batch else frames[0])
            for reply in replies:
                if reply.subscription is None:
                    continue
                if self._closing:  # subscribed while closing: never streams
                    self.subscriptions.cancel(reply.subscription.id)
                else:
                    reply.subscription.start()
        except PeerGone:
            pass
        finally:
            self._slots.release()

    async def _reply(self, item: protocol.Item) -> _Reply:
        if isinstance(item, protocol.Rejected):
            return _Reply(protocol.error(item.id, item.error))
        try:
            value = await self._run(item)
            subscription = None
            if isinstance(value, WatchSpec):
                subscription = self.subscriptions.add(value)
                value = {"subscription": subscription.id}
            if item.is_notification:
                return _Reply(None, subscription)
            return _Reply(protocol.result(item.id, value), subscription)
        except Exception as exc:
            if item.is_notification:
                return _Reply(None)
            return _Reply(protocol.error(item.id, to_rpc_error(exc)))

    async def _run(self, call: protocol.Call) -> object:
        if self._ctx is None:
            assert self.server.startup_error is not None
            raise self.server.startup_error
        method = METHODS.get(call.method)
        if method is None:
            name = call.method if len(call.method) <= 100 else call.method[:100] + "…"
            raise MethodNotFound(name)
        params = Params(call.params)
        if method.runs_on == "loop":
            return method.handler(self._ctx, params)
        return await self.server.pools[method.runs_on].run(method.handler, self._ctx, params)


async def _first_of(*waits: Awaitable[object]) -> None:
    """Return when the first of ``waits`` completes; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def serve_stdio(db_path: str | None, failure: ImsgError | None = None) -> int:
    """Run ``imsg rpc`` on stdin/stdout until EOF, a closed stdout or a signal; returns 0.
    With ``failure``, answer every request with it (see ``Server``)."""
    frames_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return asyncio.run(_serve_stdio(db_path, failure, 0, frames_fd))


async def _serve_stdio(db_path: str | None, failure: ImsgError | None, in_fd: int,
                       out_fd: int) -> int:
    loop = asyncio.get_running_loop()
    server = Server(db_path, "stdio", failure)
    sink = FdSink(out_fd, loop)
    session = Session(server, sink)
    stop = asyncio.Event()

    def on_signal() -> None:
        stop.set()
        session.interrupt()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    read_fd(in_fd, loop, session.feed)
    await _first_of(session.eof.wait(), sink.lost.wait(), stop.wait())
    await session.close()
    server.close()
    return 0
