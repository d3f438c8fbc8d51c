"""Shared fixtures: every database a test uses is built here by the simulator, and HOME points
at a temporary directory so nothing can read or write a real ~/Library."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from imsg.chatdb.reader import ChatDB
from imsg.sim.demo import fill_demo
from imsg.sim.messages import SimDB


def pytest_report_header() -> list[str]:
    deps = ", ".join(
        f"{name} {version(name)}"
        for name in ("click", "msgspec", "phonenumberslite", "watchdog", "hypothesis")
    )
    return [f"SQLite {sqlite3.sqlite_version}; {deps}"]


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("IMSG_DB", raising=False)
    return home


@pytest.fixture(params=["ventura", "tahoe"])
def schema(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sim(tmp_path: Path, schema: str) -> Iterator[SimDB]:
    db = SimDB.create(str(tmp_path / "chat.db"), schema)
    yield db
    db.close()


@pytest.fixture
def demo(sim: SimDB) -> dict[str, int]:
    return fill_demo(sim)


@pytest.fixture
def reader(sim: SimDB) -> Iterator[ChatDB]:
    with ChatDB(sim.path) as db:
        yield db
