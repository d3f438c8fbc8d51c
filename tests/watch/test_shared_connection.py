"""Watchers of one database in one process share one connection: a hundred subscriptions
cost no more file descriptors than one, and each still gets every message once."""

from __future__ import annotations

import os
from collections.abc import Callable

from imsg.sim.messages import SimDB

from .kit import ALICE, Stream


def database_descriptors(path: str) -> int:
    """Open descriptors of this process on ``path`` and its -wal/-shm files."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.startswith(path)
    return count


def test_a_hundred_watchers_share_one_connection(db: SimDB, chat: int,
                                                watch: Callable[..., Stream]) -> None:
    before = database_descriptors(db.path)  # the simulator's own writing connection
    streams = [watch() for _ in range(100)]
    rowid = db.receive(chat, ALICE, "for everyone")
    for stream in streams:
        assert [e.message.id for e in stream.through(rowid) if e.kind == "message"] == [rowid]
    # one connection more: the database, its WAL and shared memory
    assert database_descriptors(db.path) - before <= 3
    for stream in streams[1:]:
        stream.stop()
    later = db.receive(chat, ALICE, "the last watcher still reads")
    assert [e.message.id for e in streams[0].through(later)] == [later]
