"""Bridge fixtures: a simulated chat.db with the demo history, a container, and the simulated
helper serving it on a thread (scanning every 10 ms instead of 100 ms, so tests stay fast)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from imsg.bridge.client import BridgeClient
from imsg.bridge.container import Container
from imsg.sim.bridge import Failure, SimHelper
from imsg.sim.demo import ALICE, fill_demo
from imsg.sim.messages import SimDB

SCAN_S = 0.01
POLL_S = 0.005
WAIT_S = 10.0
DEMO_NOW = 1_770_000_000.0


def wait_for(condition: Callable[[], object], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


@dataclass
class World:
    """A demo chat.db, its container, and the simulated helpers started on it."""

    db_path: str
    container: Container
    chats: dict[str, int]
    helpers: list[tuple[SimHelper, threading.Event, threading.Thread]] = field(
        default_factory=list)

    def start(self, failure: str = "", without: tuple[str, ...] = (),
              ready: bool = True) -> SimHelper:
        helper = SimHelper(self.db_path, self.container.root, interval_s=SCAN_S,
                           failure=Failure.parse(failure), without=frozenset(without),
                           exit_on_crash=False)
        stop = threading.Event()
        thread = threading.Thread(target=helper.serve, args=(stop,), daemon=True)
        thread.start()
        self.helpers.append((helper, stop, thread))
        if ready:
            wait_for(self.container.is_ready)
        else:
            wait_for(lambda: helper._db is not None)
        return helper

    def stop(self) -> None:
        for _, stop, thread in self.helpers:
            stop.set()
            thread.join(WAIT_S)
        self.helpers.clear()

    def client(self, **kwargs: object) -> BridgeClient:
        return BridgeClient(self.container, poll_s=POLL_S, **kwargs)  # type: ignore[arg-type]

    def sim(self) -> SimDB:
        return SimDB(self.db_path)

    @property
    def alice_guid(self) -> str:
        return f"iMessage;-;{ALICE}"


def make_world(tmp_path: Path, schema: str = "ventura") -> World:
    db_path = str(tmp_path / "chat.db")
    sim = SimDB.create(db_path, schema)
    try:
        chats = fill_demo(sim, now=DEMO_NOW)
    finally:
        sim.close()
    root = tmp_path / "container"
    root.mkdir()
    return World(db_path, Container(root), chats)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    made = make_world(tmp_path)
    monkeypatch.setenv("IMSG_BRIDGE_CONTAINER", str(made.container.root))
    yield made
    made.stop()


@pytest.fixture
def both_worlds(tmp_path: Path, schema: str,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    made = make_world(tmp_path, schema)
    monkeypatch.setenv("IMSG_BRIDGE_CONTAINER", str(made.container.root))
    yield made
    made.stop()
