"""Watch subscriptions: a watcher thread per subscription, a bounded mailbox, a pump task.

The watcher thread encodes each event into a notification frame and puts it in the
subscription's mailbox (at most ``buffer_limit`` frames). The pump task moves frames to the
client's sink, which waits while the client is not reading. A full mailbox makes the watcher
wait (its cursor simply lags: a burst, say an iCloud sync writing thousands of rows, reaches a
client that reads slowly but steadily, in full). When the mailbox stays full for ``stall_s``
(the client stopped reading) the subscription *overflows*: the watcher stops, the frames still
waiting are dropped, and one final, terminal notification is sent::

    {"jsonrpc":"2.0","method":"watch.overflow","params":{"subscription":N,
      "resume_after_rowid":R,"reason":"buffer_limit_exceeded","terminal":true}}

where R is the resume point of the last message handed to the client (its ``cursor``, or the
start cursor), so ``messages.after {since_rowid: R}`` or a new ``watch.subscribe`` loses
nothing (it may repeat a message, never skip one). A watcher failure (e.g. the database became
unreadable) ends the subscription with ``{"method":"error","params":{"subscription":N,
"error":{"message":"…","last_rowid":R}}}``. Memory per subscription is bounded by
``buffer_limit`` frames whatever the client does.

Unsubscribing is silent: no frame of that subscription is queued after the ``{"ok":true}``.

A subscription streams from a ``StreamSpec``: a watch (``WatchSpec``, wrapped as above) or
another source, such as the bridge's event log (``imsg.rpc.bridge_methods``), which names its
own subscribe answer, overflow and error notifications, and whether an overflow drops what is
queued (a watch can resume from its cursor; an event stream cannot, so it drains first).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from imsg.rpc import protocol
from imsg.rpc.errors import RpcError, to_rpc_error
from imsg.rpc.methods import WatchSpec, with_attachments
from imsg.rpc.transport import PeerGone, Sink

log = logging.getLogger("imsg.rpc")
_ids = itertools.count(1)  # subscription ids are unique per process, across all clients
STALL_S = 10.0  # how long a full mailbox may wait for the client before it overflows


@dataclass(frozen=True, slots=True)
class End:
    """The last mailbox item: ``error`` None for a silent end, ``overflow`` for a full box."""

    error: RpcError | None = None
    overflow: bool = False


Item = tuple[int | None, bytes]  # (ROWID of a new message or None, notification frame)


class Mailbox:
    """Bounded thread → event-loop hand-over."""

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        self._loop = loop
        self._capacity = capacity
        self._items: deque[Item] = deque()
        self._cond = threading.Condition()
        self._waiter: asyncio.Future[None] | None = None
        self._end: End | None = None

    def put(self, item: Item, stall_s: float) -> bool:
        """Queue ``item`` (any thread but the loop's), waiting while the mailbox is full;
        False when nothing was taken out of the full mailbox for ``stall_s``. Ignored once
        ended."""
        with self._cond:
            while len(self._items) >= self._capacity and self._end is None:
                if not self._cond.wait(stall_s) and len(self._items) >= self._capacity:
                    return False
            if self._end is not None:
                return True
            self._items.append(item)
            waiter, self._waiter = self._waiter, None
        self._wake(waiter)
        return True

    def end(self, end: End, *, drop: bool) -> None:
        """Mark the end (any thread; the first call wins); ``drop`` discards queued frames."""
        with self._cond:
            if self._end is not None:
                return
            self._end = end
            if drop:
                self._items.clear()
            waiter, self._waiter = self._waiter, None
            self._cond.notify_all()
        self._wake(waiter)

    async def get(self) -> Item | End:
        while True:
            with self._cond:
                if self._items:
                    self._cond.notify()
                    return self._items.popleft()
                if self._end is not None:
                    return self._end
                waiter = self._waiter = self._loop.create_future()
            await waiter

    def _wake(self, waiter: asyncio.Future[None] | None) -> None:
        if waiter is None:
            return
        with contextlib.suppress(RuntimeError):  # loop closed during shutdown
            self._loop.call_soon_threadsafe(_resolve, waiter)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class StreamSpec:
    """What a subscription streams. ``items`` runs on a thread of its own, yielding
    ``(resume point or None, notification frame)``; ``close`` (any thread) makes it stop."""

    buffer_limit: int
    start_cursor: int = 0  # the resume point before anything is delivered
    drop_on_overflow: bool = True

    def response(self, sid: int) -> dict[str, Any]:
        raise NotImplementedError

    def items(self, sid: int) -> Iterator[Item]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def overflow_frame(self, sid: int, delivered: int) -> bytes:
        raise NotImplementedError

    def error_frame(self, sid: int, error: RpcError, delivered: int) -> bytes:
        raise NotImplementedError


class WatchStream(StreamSpec):
    """A ``watch.subscribe``: messages, ``watch.skipped`` for rows given up, ``watch.overflow``
    with where to resume, ``error``."""

    def __init__(self, spec: WatchSpec) -> None:
        self.spec = spec
        self.buffer_limit = spec.buffer_limit
        self.start_cursor = spec.watcher.cursor

    def response(self, sid: int) -> dict[str, Any]:
        return {"subscription": sid, "buffer_limit": self.buffer_limit}

    def items(self, sid: int) -> Iterator[Item]:
        watcher = self.spec.watcher
        try:
            for event in watcher.events():
                if event.kind == "skipped":
                    row = event.skipped
                    yield None, protocol.notification("watch.skipped", {
                        "subscription": sid, "rowid": row.rowid, "guid": row.guid})
                    continue
                message = with_attachments(event.message, self.spec.attachments,
                                           self.spec.convert)
                frame = protocol.notification(
                    "message", {"subscription": sid, "message": message})
                # edits/unsends (message.event set) concern old rows: they do not move the cursor
                rowid = None
                if event.kind == "message":
                    rowid = message.cursor if message.cursor is not None else message.id
                yield rowid, frame
        finally:
            watcher.close()

    def close(self) -> None:
        self.spec.watcher.close()

    def overflow_frame(self, sid: int, delivered: int) -> bytes:
        return protocol.notification("watch.overflow", {
            "subscription": sid, "resume_after_rowid": delivered,
            "reason": "buffer_limit_exceeded", "terminal": True})

    def error_frame(self, sid: int, error: RpcError, delivered: int) -> bytes:
        text = error.data if isinstance(error.data, str) else error.message
        if isinstance(error.data, dict):
            text = str(error.data.get("reason") or error.data.get("detail") or text)
        detail = {"message": text, "last_rowid": delivered}
        return protocol.notification("error", {"subscription": sid, "error": detail})


class Subscription:
    def __init__(self, sid: int, spec: StreamSpec, sink: Sink,
                 on_end: Callable[[Subscription], None], stall_s: float) -> None:
        self.id = sid
        self.spec = spec
        self.stall_s = stall_s
        self.delivered = spec.start_cursor  # the resume point of what reached the client
        self._sink = sink
        self._on_end = on_end
        self._mailbox = Mailbox(asyncio.get_running_loop(), spec.buffer_limit)
        self._pump: asyncio.Task[None] | None = None

    def response(self) -> dict[str, Any]:
        """The subscribe method's answer."""
        return self.spec.response(self.id)

    def start(self) -> None:
        """Begin streaming (call after the subscribe response is queued)."""
        self._pump = asyncio.get_running_loop().create_task(self._run_pump())
        threading.Thread(target=self._produce, name=f"imsg-watch-{self.id}", daemon=True).start()

    def stop(self) -> None:
        """Unsubscribe: stop the source, drop what is queued, send nothing more."""
        self._mailbox.end(End(), drop=True)
        self.spec.close()
        if self._pump is not None:
            self._pump.cancel()

    def _produce(self) -> None:
        try:
            for item in self.spec.items(self.id):
                if not self._mailbox.put(item, self.stall_s):
                    self._mailbox.end(End(overflow=True), drop=self.spec.drop_on_overflow)
                    return
        except Exception as exc:
            self._mailbox.end(End(to_rpc_error(exc)), drop=False)
        else:
            self._mailbox.end(End(), drop=False)
        finally:
            self.spec.close()

    async def _run_pump(self) -> None:
        try:
            while True:
                item = await self._mailbox.get()
                if isinstance(item, End):
                    await self._finish(item)
                    return
                rowid, frame = item
                await self._sink.send(frame)
                if rowid is not None and rowid > self.delivered:
                    self.delivered = rowid
        except PeerGone:
            pass
        finally:  # however it ended (client gone, cancelled): the source stops too
            self._mailbox.end(End(), drop=True)
            self.spec.close()
            self._on_end(self)

    async def _finish(self, end: End) -> None:
        error = end.error
        if end.overflow:
            log.warning("subscription %d overflowed: %d notifications waited %gs for the client "
                        "to read them", self.id, self.spec.buffer_limit, self.stall_s)
            await self._sink.send(self.spec.overflow_frame(self.id, self.delivered))
            return
        if error is None:
            return
        log.warning("subscription %d ended: %s", self.id, error)
        await self._sink.send(self.spec.error_frame(self.id, error, self.delivered))


class SubscriptionSet:
    """One client's subscriptions; each overflows after ``stall_s`` with a full mailbox."""

    def __init__(self, sink: Sink, stall_s: float = STALL_S) -> None:
        self._sink = sink
        self._stall_s = stall_s
        self._subs: dict[int, Subscription] = {}

    def __len__(self) -> int:
        return len(self._subs)

    def add(self, spec: WatchSpec | StreamSpec) -> Subscription:
        stream = WatchStream(spec) if isinstance(spec, WatchSpec) else spec
        sub = Subscription(next(_ids), stream, self._sink, self._ended, self._stall_s)
        self._subs[sub.id] = sub
        return sub

    def cancel(self, subscription: int) -> None:
        sub = self._subs.pop(subscription, None)
        if sub is not None:
            sub.stop()

    def close(self) -> None:
        for sid in list(self._subs):
            self.cancel(sid)

    def _ended(self, sub: Subscription) -> None:
        if self._subs.get(sub.id) is sub:
            del self._subs[sub.id]
