"""Serving sessions: request lines in, frames out, many requests and subscriptions at once.

A ``Server`` holds what every client shares: the database resource, the lanes and what is known
of permissions. A ``Session`` is one client (stdio, or one socket connection).

Lanes (protocol v1): ``control`` methods (initialize, subscribe, unsubscribe) run on their own
threads, so an unsubscribe never waits behind a read or a send; quick ``read`` methods run one
after another on one thread (Python runs one thread at a time: threads taking turns over quick
reads only slow each other down), and the reads that may take long (``MethodSpec.slow``: whole-
database statistics, a search) on ``SLOW_READERS`` threads of their own, so a quick read never
waits behind them; each thread has its own database connection and replies may leave out of
order;
``mutation`` methods (send) run one at a time, in order, on one worker for the whole server.
After a mutation ends ``still_in_flight`` (it may complete later), further mutations are refused
with -32004 until its outcome is settled or ``LANE_BLOCK_S`` has passed; reads, watches and
unsubscribe keep working.

Admission: at most ``MAX_OUTSTANDING`` requests per session are accepted and not yet answered
(batch elements count one each); beyond that a request is answered -32000 ``outstanding request
limit exceeded`` and a notification is dropped. At most ``MAX_SUBSCRIPTIONS`` subscriptions per
session (-32000 ``subscription limit exceeded``). A batch (an imsg extension) runs its elements
in order and answers with one array; results of reads that would push the array past
``MAX_BATCH_RESPONSE`` bytes are replaced by -32600 errors asking for them alone (a mutation's
answer is never dropped).

Lifecycle, ``serve_stdio`` (the ``imsg rpc`` process: fd 1 is moved to a private descriptor for
frames and fd 1/``sys.stdout`` point at stderr, so no stray print can corrupt the stream):

- stdin EOF: stop admitting, end every subscription, let every accepted request answer (a send
  in flight is finished: ``printf '<send>' | imsg rpc`` gets its answer), then write everything
  while the client reads it. Only a closed pipe (EPIPE, a hang-up) or ``FLUSH_STALL_S`` without
  the client reading a byte gives up; a send result given up on is logged on stderr with its
  guid, never dropped silently. Exit 0.
- stdout closed: exit 0 at once. Stdout unwritable otherwise (a full disk, a bad descriptor):
  one stderr line, exit 1.
- SIGTERM/SIGINT: like EOF, but reads still running get ``GRACE_S``, and a send still running
  has its osascript child terminated: it is answered with a delivery error saying the outcome is
  unknown (never left unanswered).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from imsg.bridge.state import BridgeState
from imsg.errors import ImsgError
from imsg.rpc import protocol
from imsg.rpc.catalog import BY_NAME, MethodSpec
from imsg.rpc.context import Context, Database, Permissions
from imsg.rpc.errors import (
    InternalError,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    RpcError,
    ServerBusy,
    to_rpc_error,
)
from imsg.rpc.lane import MutationLane
from imsg.rpc.methods import WatchSpec
from imsg.rpc.params import Params
from imsg.rpc.subscriptions import STALL_S, StreamSpec, Subscription, SubscriptionSet
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

MAX_OUTSTANDING = 128
MAX_SUBSCRIPTIONS = 64
MAX_BATCH_RESPONSE = 16 * 1024 * 1024
SLOW_READERS = 3
GRACE_S = 0.5  # after a signal: how long reads still running may take to answer
FLUSH_STALL_S = 60.0  # at shutdown: how long the client may go without reading a byte


class Server:
    """What every session shares: the database resource, the lanes, permission knowledge."""

    def __init__(self, db_path: str | None, transport: str,
                 failure: ImsgError | None = None, *, stall_s: float = STALL_S) -> None:
        """``failure``: answer every request with this error and its fix (``imsg rpc
        --connect`` when the service is not reachable). ``stall_s``: see
        ``imsg.rpc.subscriptions``."""
        self.transport = transport
        self.stall_s = stall_s
        self.db = Database(db_path)
        self.control = Workers(2, "imsg-control")
        self.readers = Workers(1, "imsg-read")
        self.slow_readers = Workers(SLOW_READERS, "imsg-read-slow")
        self.mutations = MutationLane()
        self.permissions = Permissions()
        self.bridge = BridgeState()
        self.failure = None if failure is None else InternalError(
            f"imsg rpc cannot serve: {failure.message}")
        if failure is not None:
            log.error("cannot serve: %s", failure.message)

    def close(self) -> None:
        self.db.close()


@dataclass(slots=True)
class _Reply:
    frame: bytes | None
    subscription: Subscription | None = None
    mutation: bool = False


class Session:
    """One client: request lines in (``feed``), frames out (its sink), its own subscriptions."""

    def __init__(self, server: Server, sink: Sink) -> None:
        self.server = server
        self.sink = sink
        self.subscriptions = SubscriptionSet(sink, server.stall_s)
        self.eof = asyncio.Event()
        self._ctx = Context(server.db, self.subscriptions, server.transport, server.permissions,
                            server.bridge)
        self._splitter = LineSplitter()
        self._outstanding = 0
        self._subscribing = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._mutating: set[asyncio.Task[None]] = set()
        self._closing = False
        self._closed: asyncio.Task[None] | None = None
        self._interrupted = asyncio.Event()

    async def feed(self, data: bytes) -> None:
        """Dispatch the complete lines in ``data``; ``b""`` is end of input."""
        if self._closing:
            return
        lines = self._splitter.feed(data) if data else self._splitter.finish()
        for line in lines:
            await self._line(line)
        if not data:
            self.eof.set()

    def interrupt(self) -> None:
        """A signal: reads still running get ``GRACE_S``; sends in flight are ended (their
        osascript children terminated) and answered with an outcome-unknown error."""
        if self._interrupted.is_set():
            return
        loop = asyncio.get_running_loop()
        loop.call_later(GRACE_S, self._interrupted.set)
        _terminate_sends()

    async def close(self) -> None:
        """Stop admitting, end every subscription, let every accepted request answer (unless
        interrupted), then write what is queued while the client reads it. Idempotent."""
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
        """Wait for accepted requests; after an interrupt only for mutations (answered once
        their child is terminated)."""
        lost = asyncio.ensure_future(self.sink.lost.wait())
        interrupted = asyncio.ensure_future(self._interrupted.wait())
        try:
            while self._tasks and not lost.done():
                waiting = list(self._mutating if interrupted.done() else self._tasks)
                if not waiting:
                    return
                await asyncio.wait([*waiting, lost, interrupted],
                                   return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            interrupted.cancel()

    async def _flush(self) -> None:
        closing = asyncio.ensure_future(self.sink.aclose())
        backlog = self.sink.backlog()
        while not (await asyncio.wait([closing], timeout=FLUSH_STALL_S))[0]:
            now = self.sink.backlog()
            if now >= backlog:
                log.error("the client read nothing for %gs; %d bytes of responses dropped",
                          FLUSH_STALL_S, now)
                closing.cancel()
                return
            backlog = now

    # --- requests ------------------------------------------------------------------------------

    async def _line(self, line: Line) -> None:
        if isinstance(line, Overlong):
            frame = protocol.Frame(
                [protocol.Rejected(ParseError(f"line longer than {MAX_LINE} bytes"))], False)
        elif not line or line.isspace():
            return
        else:
            frame = protocol.parse(line)
        calls = [item for item in frame.items if isinstance(item, protocol.Call)]
        free = MAX_OUTSTANDING - self._outstanding
        if not frame.is_batch and calls and free <= 0:
            if not calls[0].is_notification:
                await self._send(protocol.error(calls[0].id,
                                                ServerBusy("outstanding request limit exceeded")))
            return
        admitted = min(len(calls), max(free, 0))
        self._outstanding += admitted
        task = asyncio.get_running_loop().create_task(self._answer(frame, admitted))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if any(_is_mutation(call) for call in calls):
            self._mutating.add(task)
            task.add_done_callback(self._mutating.discard)

    async def _answer(self, frame: protocol.Frame, admitted: int) -> None:
        try:
            replies: list[_Reply] = []
            calls_seen = 0
            for item in frame.items:
                if isinstance(item, protocol.Call):
                    calls_seen += 1
                    if calls_seen > admitted:
                        replies.append(self._busy(item))
                        continue
                replies.append(await self._reply(item))
            frames = [r.frame for r in replies if r.frame is not None]
            if frame.is_batch:
                frames = _fit_batch(replies)
            if frames:
                await self._send(protocol.batch(frames) if frame.is_batch else frames[0])
            for reply in replies:
                if reply.subscription is None:
                    continue
                if self._closing:  # subscribed while closing: never streams
                    self.subscriptions.cancel(reply.subscription.id)
                else:
                    reply.subscription.start()
        except PeerGone:
            _log_lost_mutations(frame)
        finally:
            self._outstanding -= admitted

    async def _send(self, frame: bytes) -> None:
        await self.sink.send(frame)

    def _busy(self, call: protocol.Call) -> _Reply:
        if call.is_notification:
            return _Reply(None)
        return _Reply(protocol.error(call.id, ServerBusy("outstanding request limit exceeded")))

    async def _reply(self, item: protocol.Item) -> _Reply:
        if isinstance(item, protocol.Rejected):
            return _Reply(protocol.error(item.id, item.error))
        spec = BY_NAME.get(item.method)
        mutation = _is_mutation(item)
        try:
            value = await self._run(item, spec)
            subscription = None
            if isinstance(value, WatchSpec | StreamSpec):
                subscription = self.subscriptions.add(value)
                value = subscription.response()
            if item.is_notification:
                return _Reply(None, subscription, mutation)
            return _Reply(protocol.result(item.id, value), subscription, mutation)
        except Exception as exc:
            if item.is_notification:
                return _Reply(None, None, mutation)
            return _Reply(protocol.error(item.id, to_rpc_error(exc)), None, mutation)

    async def _run(self, call: protocol.Call, spec: MethodSpec | None) -> object:
        if spec is None:
            name = call.method if len(call.method) <= 100 else call.method[:100] + "…"
            raise MethodNotFound(name)
        params = Params(spec.names[0], call.params, spec.params)
        if self.server.failure is not None:
            raise self.server.failure
        if spec.lane == "mutation":
            self.server.mutations.check()
            if self._closing:
                raise ServerBusy("server is shutting down")
            return await self.server.mutations.run(spec.resolve(), self._ctx, params)
        if spec.lane == "read":
            pool = self.server.slow_readers if spec.slow else self.server.readers
            return await pool.run(spec.resolve(), self._ctx, params)
        if spec.streams:
            return await self._subscribe(spec, params)
        return await self.server.control.run(spec.resolve(), self._ctx, params)

    async def _subscribe(self, spec: MethodSpec, params: Params) -> object:
        if self._closing:
            raise ServerBusy("server is shutting down")
        if len(self.subscriptions) + self._subscribing >= MAX_SUBSCRIPTIONS:
            raise ServerBusy("subscription limit exceeded")
        self._subscribing += 1
        try:
            value = await self.server.control.run(spec.resolve(), self._ctx, params)
        finally:
            self._subscribing -= 1
        if self._is_closing():  # the session closed while the watcher was being created
            _close_stream(value)
            raise ServerBusy("subscription was cancelled before activation")
        return value

    def _is_closing(self) -> bool:
        return self._closing


def _close_stream(value: object) -> None:
    if isinstance(value, StreamSpec):
        value.close()
    if isinstance(value, WatchSpec):
        value.watcher.close()


def _warm_contacts() -> None:
    """Load the contact catalog in the background now (import included: it costs tens of ms),
    so the first read, which may wait for it to name senders, rarely has to, and ``status``
    can say contacts are available."""

    def load() -> None:
        from imsg.chatdb.contacts import contact_book

        contact_book().available(wait=True)

    threading.Thread(target=load, name="imsg-contacts-warm", daemon=True).start()


def _is_mutation(call: protocol.Call) -> bool:
    spec = BY_NAME.get(call.method)
    return spec is not None and spec.lane == "mutation"


def _fit_batch(replies: list[_Reply]) -> list[bytes]:
    """The batch's frames, with the largest read results replaced by -32600 errors while the
    whole exceeds ``MAX_BATCH_RESPONSE`` (mutation answers are always kept)."""
    frames = [r.frame for r in replies if r.frame is not None]
    total = sum(len(f) + 1 for f in frames)
    if total <= MAX_BATCH_RESPONSE:
        return frames
    answered = [r for r in replies if r.frame is not None]
    order = sorted(range(len(answered)), key=lambda i: -len(frames[i]))
    for index in order:
        if total <= MAX_BATCH_RESPONSE:
            break
        if answered[index].mutation:
            continue
        rid = _frame_id(frames[index])
        replacement = protocol.error(rid, InvalidRequest(
            f"the batch response would exceed {MAX_BATCH_RESPONSE} bytes; send this request "
            "alone"))
        total += len(replacement) - len(frames[index])
        frames[index] = replacement
    return frames


def _frame_id(frame: bytes) -> Any:
    return protocol.decode(frame).get("id")


def _log_lost_mutations(frame: protocol.Frame) -> None:
    for item in frame.items:
        if isinstance(item, protocol.Call) and _is_mutation(item):
            log.error("the client went away before the answer to %s (id %r) was written; "
                      "check chat.db for its outcome", item.method, item.id)


def _terminate_sends() -> None:
    """End osascript children of sends in flight (their sends then fail as outcome unknown);
    never blocks the event loop."""
    from imsg.bridge.client import cancel_all
    from imsg.send.children import terminate_all

    terminate_all("imsg rpc received a signal", wait_s=0)
    cancel_all()


async def _first_of(*waits: Awaitable[object]) -> None:
    """Return when the first of ``waits`` completes; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def serve_stdio(db_path: str | None, failure: ImsgError | None = None) -> int:
    """Run ``imsg rpc`` on stdin/stdout until EOF, a closed stdout or a signal; returns the
    exit code (0, or 1 when stdout could not be written). With ``failure``, answer every
    request with it (see ``Server``)."""
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
    if sink.error is not None:
        print(f"imsg rpc: cannot write responses: {sink.error.strerror or sink.error}",
              file=sys.stderr)
        return 1
    return 0


__all__ = ["RpcError", "Server", "Session", "serve_stdio"]
