"""Subscriptions over a scripted watcher: delivery, failure, overflow, unsubscribe."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

from imsg.chatdb.models import Message
from imsg.errors import PermissionDenied
from imsg.rpc.methods import WatchSpec
from imsg.rpc.subscriptions import SubscriptionSet
from imsg.rpc.transport import PeerGone
from imsg.watch import Watcher, WatchEvent
from imsg.watch.events import SkippedRow

WAIT_S = 20.0


def message(rowid: int) -> Message:
    return Message(id=rowid, chat_id=1, guid=f"g{rowid}", sender="+15555550123",
                   is_from_me=False, text=f"m{rowid}", created_at="2026-01-01T00:00:00.000Z",
                   attachments=[], reactions=[], chat_identifier="c", chat_guid="g",
                   chat_name="c", participants=[], is_group=False)


class ScriptedWatcher:
    """Yields ``first``; once ``go`` is set, the rest; then raises ``fail`` or idles until
    closed, as a live watcher does."""

    def __init__(self, first: list[int], rest: tuple[int, ...] = (), *,
                 fail: Exception | None = None, cursor: int = 0) -> None:
        self.cursor = cursor
        self.first, self.rest, self.fail = first, list(rest), fail
        self.go = threading.Event()
        self.closed = threading.Event()

    def events(self) -> Iterator[WatchEvent]:
        for rowid in self.first:
            if rowid < 0:  # a row given up: never joined to a chat
                yield WatchEvent("skipped", SkippedRow(-rowid, f"g{-rowid}", "never_joined",
                                                       "never joined"))
                continue
            yield WatchEvent("message", message(rowid))
        if self.rest:
            self.go.wait(WAIT_S)
        for rowid in self.rest:
            if self.closed.is_set():
                return
            yield WatchEvent("message", message(rowid))
        if self.fail is not None:
            raise self.fail
        self.closed.wait()  # a daemon thread: never holds up the test run

    def close(self) -> None:
        self.closed.set()


class GateSink:
    """Records frames; ``send`` waits while the gate is shut (a client not reading)."""

    def __init__(self) -> None:
        self.lost = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()
        self.frames: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.blocked = threading.Event()

    async def send(self, frame: bytes) -> None:
        if not self.gate.is_set():
            self.blocked.set()
        await self.gate.wait()
        self.frames.append(json.loads(frame))
        self.arrived.set()

    def backlog(self) -> int:
        return 0

    async def aclose(self) -> None:
        pass


def spec(watcher: ScriptedWatcher, buffer_limit: int = 100) -> WatchSpec:
    return WatchSpec(cast(Watcher, watcher), attachments=False, buffer_limit=buffer_limit)


async def frames_until(sink: GateSink, count: int) -> list[dict[str, Any]]:
    while len(sink.frames) < count:
        sink.arrived.clear()
        await asyncio.wait_for(sink.arrived.wait(), WAIT_S)
    return sink.frames


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.001)
    await asyncio.wait_for(poll(), WAIT_S)


def test_failure_ends_with_an_error_carrying_the_last_rowid() -> None:
    async def run() -> None:
        sink = GateSink()
        subs = SubscriptionSet(sink)
        sub = subs.add(spec(ScriptedWatcher([7, 8], fail=PermissionDenied("/db"))))
        sub.start()
        frames = await frames_until(sink, 3)
        assert [f["params"]["message"]["id"] for f in frames[:2]] == [7, 8]
        assert frames[0]["method"] == "message" and frames[0]["params"]["subscription"] == sub.id
        error = frames[2]
        assert error["method"] == "error" and error["params"]["subscription"] == sub.id
        assert error["params"]["error"]["last_rowid"] == 8
        assert "Full Disk Access" in error["params"]["error"]["message"]
        await until(lambda: len(subs) == 0)
    asyncio.run(run())


def test_a_row_given_up_is_a_skipped_notification_in_stream_order() -> None:
    async def run() -> None:
        sink = GateSink()
        subs = SubscriptionSet(sink)
        sub = subs.add(spec(ScriptedWatcher([7, -8, 9])))
        sub.start()
        frames = await frames_until(sink, 3)
        assert [f["method"] for f in frames] == ["message", "watch.skipped", "message"]
        assert frames[1]["params"] == {"subscription": sub.id, "rowid": 8, "guid": "g8"}
        subs.close()
    asyncio.run(run())


def test_overflow_ends_the_subscription_and_says_where_to_resume() -> None:
    async def run() -> None:
        sink = GateSink()
        sink.gate.clear()  # the client stopped reading
        watcher = ScriptedWatcher([1], (2, 3, 4, 5, 6, 7), cursor=0)
        subs = SubscriptionSet(sink, stall_s=0)
        sub = subs.add(spec(watcher, buffer_limit=3))
        sub.start()
        await asyncio.to_thread(sink.blocked.wait, WAIT_S)  # frame 1 is on its way out
        watcher.go.set()
        assert await asyncio.to_thread(watcher.closed.wait, WAIT_S), "no overflow"
        sink.gate.set()  # the client reads again
        frames = await frames_until(sink, 2)
        assert frames[0]["params"]["message"]["id"] == 1
        assert frames[1] == {"jsonrpc": "2.0", "method": "watch.overflow", "params": {
            "subscription": sub.id, "resume_after_rowid": 1, "reason": "buffer_limit_exceeded",
            "terminal": True}}
        await until(lambda: len(subs) == 0)
        assert len(sink.frames) == 2
    asyncio.run(run())


def test_a_slow_but_steady_reader_gets_a_burst_in_full() -> None:
    async def run() -> None:
        sink = GateSink()
        sink.gate.clear()
        watcher = ScriptedWatcher([1], tuple(range(2, 31)))
        subs = SubscriptionSet(sink, stall_s=WAIT_S)
        subs.add(spec(watcher, buffer_limit=2)).start()
        watcher.go.set()
        while len(sink.frames) < 30:  # one frame at a time, each only when the test says
            await asyncio.to_thread(sink.blocked.wait, WAIT_S)
            sink.blocked.clear()
            sink.gate.set()
            await frames_until(sink, len(sink.frames) + 1)
            sink.gate.clear()
        assert [f["params"]["message"]["id"] for f in sink.frames] == list(range(1, 31))
        subs.close()
    asyncio.run(run())


def test_unsubscribe_is_silent_and_stops_the_watcher() -> None:
    async def run() -> None:
        sink = GateSink()
        watcher = ScriptedWatcher([1], (2, 3))
        subs = SubscriptionSet(sink)
        sub = subs.add(spec(watcher))
        sub.start()
        await frames_until(sink, 1)
        subs.cancel(sub.id)
        subs.cancel(sub.id)  # twice, or an id never seen: nothing happens
        watcher.go.set()
        assert await asyncio.to_thread(watcher.closed.wait, WAIT_S)
        assert len(subs) == 0 and len(sink.frames) == 1
    asyncio.run(run())


def test_a_client_gone_stops_the_watcher() -> None:
    class GoneSink(GateSink):
        async def send(self, frame: bytes) -> None:
            raise PeerGone

    async def run() -> None:
        watcher = ScriptedWatcher([1])  # then idles, as a live watcher does
        subs = SubscriptionSet(GoneSink())
        subs.add(spec(watcher)).start()
        assert await asyncio.to_thread(watcher.closed.wait, WAIT_S)
        await until(lambda: len(subs) == 0)
    asyncio.run(run())


def test_ids_are_unique_across_clients() -> None:
    async def run() -> None:
        a, b = SubscriptionSet(GateSink()), SubscriptionSet(GateSink())
        first = a.add(spec(ScriptedWatcher([])))
        second = b.add(spec(ScriptedWatcher([])))
        assert second.id > first.id
        a.close()
        b.close()
    asyncio.run(run())
