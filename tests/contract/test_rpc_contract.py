"""Every RPC answer and notification checked against the wire schemas (``schemas.py``), on a
simulated history holding every kind of row: a missing, renamed, retyped or unexpected key
fails here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from imsg.sim.messages import SimDB
from tests.contract import schemas
from tests.rpc.harness import Rpc, demo_db, sim_env


def check(schema: dict[str, Any], value: Any) -> None:
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


@pytest.fixture(params=["ventura", "tahoe"])
def rpc(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rpc]:
    db = demo_db(tmp_path / "chat.db", request.param)
    server = Rpc("--db", db, env=sim_env(db))
    try:
        yield server
    finally:
        server.kill()


class Calls:
    def __init__(self, rpc: Rpc) -> None:
        self.rpc = rpc
        self.next_id = 0

    def result(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self.next_id += 1
        answer = self.rpc.call(method, params or {}, rid=self.next_id)
        assert "result" in answer, answer
        return answer["result"]

    def error(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        answer = self.rpc.call(method, params, rid=self.next_id)
        check(schemas.ERROR, answer["error"])
        return answer["error"]


def test_status_and_initialize(rpc: Rpc) -> None:
    calls = Calls(rpc)
    check(schemas.STATUS, calls.result("status"))
    check(schemas.STATUS, calls.result("initialize", {"protocol_version": 1}))


def test_reads(rpc: Rpc) -> None:
    calls = Calls(rpc)
    chats = calls.result("chats.list", {"limit": 50})["chats"]
    assert chats
    for chat in chats:
        check(schemas.CHAT, chat)
        check(schemas.GROUP, calls.result("chats.get", {"chat_id": chat["id"]}))
        for attachments in (False, True):
            history = calls.result("messages.history", {"chat_id": chat["id"], "limit": 100,
                                                        "attachments": attachments})
            for message in history["messages"]:
                check(schemas.MESSAGE, message)
    for message in calls.result("messages.search", {"query": "a", "limit": 100})["messages"]:
        check(schemas.MESSAGE, message)
    cursor, more = 0, True
    while more:
        page = calls.result("messages.after", {"since_rowid": cursor, "limit": 3,
                                               "include_reactions": True, "attachments": True})
        check(schemas.AFTER_RESULT, page)
        cursor, more = page["next_rowid"], page["has_more"]


def test_send_result_and_errors(rpc: Rpc) -> None:
    calls = Calls(rpc)
    sent = calls.result("send", {"chat_id": 1, "text": "contract"})
    check(schemas.SEND_RESULT, sent)
    check(schemas.SEND_STATUS, calls.result("message.send_status", {"guid": sent["guid"]}))
    check(schemas.SEND_STATUS, calls.result("message.send_status", {"guid": "unknown"}))
    unavailable = calls.error("send", {"chat_id": 1, "text": "x", "transport": "bridge"})
    check(schemas.DELIVERY, unavailable["data"])
    assert calls.error("chats.list", {"bogus": True})["data"] == "unknown chats.list param: bogus"


def test_notifications(rpc: Rpc, tmp_path: Path) -> None:
    calls = Calls(rpc)
    sub = calls.result("watch.subscribe", {"since_rowid": -1, "include_reactions": True,
                                           "attachments": True, "debounce_ms": 0})
    assert set(sub) == {"subscription", "buffer_limit"}
    seen = 0
    while seen < 5:
        note = rpc.recv()
        assert note["method"] in schemas.NOTIFICATIONS, note
        check(schemas.NOTIFICATIONS[note["method"]], note["params"])
        seen += 1


def test_database_unavailable(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.db")
    server = Rpc("--db", missing, env=sim_env(missing))
    try:
        calls = Calls(server)
        check(schemas.STATUS, calls.result("status"))
        error = calls.error("chats.list", {})
        assert error["code"] == -32002
        check(schemas.DATABASE_UNAVAILABLE, error["data"])
    finally:
        server.kill()


def test_the_simulator_helpers_are_used(tmp_path: Path) -> None:
    """The database above is the demo history: make sure it still has every row kind the
    schemas cover (so the checks above are not vacuous)."""
    db = SimDB(demo_db(tmp_path / "chat.db"))
    try:
        kinds = {row[0] for row in db.conn.execute(
            "SELECT CASE WHEN associated_message_type BETWEEN 2000 AND 3007 THEN 'tapback'"
            " WHEN date_edited != 0 THEN 'edited' WHEN cache_has_attachments THEN 'attachment'"
            " ELSE 'text' END FROM message")}
    finally:
        db.close()
    assert {"tapback", "edited", "attachment", "text"} <= kinds
