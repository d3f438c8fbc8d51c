"""Fixtures for watch tests: a simulated Messages database and watchers that clean up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imsg.sim.messages import SimDB
from imsg.watch import Watcher

from .kit import ALICE, Stream


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SimDB]:
    """A macOS 26 chat.db; the test writes into it as Messages would."""
    sim = SimDB.create(str(tmp_path / "chat.db"), "tahoe")
    yield sim
    sim.close()


@pytest.fixture
def chat(db: SimDB) -> int:
    chat_id = db.chat([ALICE])
    db.receive(chat_id, ALICE, "history before the watch")
    return chat_id


@pytest.fixture
def statuses() -> list[str]:
    return []


@pytest.fixture
def watch(db: SimDB, statuses: list[str]) -> Iterator[Callable[..., Stream]]:
    """``watch(**kwargs)`` → a running Stream over ``db`` (closed at teardown)."""
    streams: list[Stream] = []

    def start(path: str | None = None, **kwargs: Any) -> Stream:
        kwargs.setdefault("debounce_s", 0.0)
        kwargs.setdefault("poll_interval_s", 3600.0)  # file events must do the work
        stream = Stream(Watcher(path or db.path, on_status=statuses.append, **kwargs))
        streams.append(stream)
        return stream

    yield start
    for stream in streams:
        stream.stop()
