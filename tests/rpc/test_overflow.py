"""A client that stops reading: the server's memory stays bounded, the subscription ends with
``watch.overflow`` naming where to resume, and resuming from there loses nothing. In-process, with
a real watcher, a pipe nobody reads and little patience (``stall_s``)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Any

from imsg.rpc.server import Server, Session
from imsg.rpc.transport import HIGH_WATER, FdSink
from imsg.sim.messages import SimDB

WAIT_S = 20.0
ROWS = 3000  # ~2 MiB of notifications: more than the pipe, the sink and the mailbox hold
MAX_RESUMES = 20


def subscribe(rid: int, **params: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "watch.subscribe",
                       "params": params}).encode() + b"\n"


def test_overflow_then_resume_loses_nothing(tmp_path: Path) -> None:
    sim = SimDB.create(str(tmp_path / "chat.db"))
    chat = sim.chat(["+15555550123"])
    sim.conn.execute("BEGIN")
    rows = [sim.receive(chat, None, f"message {i} " + "x" * 300) for i in range(ROWS)]
    sim.conn.execute("COMMIT")
    sim.close()

    async def run() -> None:
        read_end, write_end = os.pipe()
        reader = os.fdopen(read_end, "rb")
        server = Server(sim.path, "stdio", stall_s=0.2)
        sink = FdSink(write_end, asyncio.get_running_loop())
        session = Session(server, sink)

        async def frame() -> Any:
            return json.loads(await asyncio.wait_for(asyncio.to_thread(reader.readline), WAIT_S))

        await session.feed(subscribe(1, since_rowid=-1, buffer_limit=8))
        sid = (await frame())["result"]["subscription"]
        while any(t.name == f"imsg-watch-{sid}" for t in threading.enumerate()):
            await asyncio.sleep(0.01)  # until the watcher gave up on the full mailbox
        assert sink.backlog() <= HIGH_WATER + 2048  # bounded: nothing queued beyond the mark

        delivered = []
        note = await frame()
        while note["method"] == "message":
            delivered.append(note["params"]["message"]["id"])
            note = await frame()
        assert note["method"] == "watch.overflow" and note["params"]["subscription"] == sid
        assert note["params"]["terminal"] is True
        last = note["params"]["resume_after_rowid"]
        assert delivered == rows[:len(delivered)] and len(delivered) < len(rows)
        assert last <= (delivered[-1] if delivered else rows[0] - 1)  # never past a dropped row

        # Resume until every row arrived. The resumed subscription is as impatient, so on a
        # loaded machine it may overflow too: each such overflow must again be terminal and
        # name a point no later than the last row delivered; resuming there replays the rest.
        expected = rows[len(delivered):]
        resumed: list[int] = []
        for rid in range(2, 2 + MAX_RESUMES):
            await session.feed(subscribe(rid, since_rowid=last))
            sid = (await frame())["result"]["subscription"]
            note = {"method": "message"}
            while len(resumed) < len(expected) and note["method"] == "message":
                note = await frame()
                if note["method"] == "message":
                    resumed.append(note["params"]["message"]["id"])
            if len(resumed) == len(expected):
                break
            assert note["method"] == "watch.overflow" and note["params"]["subscription"] == sid
            assert note["params"]["terminal"] is True
            assert note["params"]["resume_after_rowid"] <= (resumed[-1] if resumed else last)
            last = note["params"]["resume_after_rowid"]
            resumed = [rowid for rowid in resumed if rowid <= last]
        assert resumed == expected
        await session.feed(b"")
        await session.close()
        server.close()
        reader.close()

    asyncio.run(run())
