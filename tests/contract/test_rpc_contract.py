"""Every RPC answer and notification checked against the wire schemas (``schemas.py``), on a
simulated history holding every kind of row: a missing, renamed, retyped or unexpected key
fails here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from imsg.sim.addressbook import SimAddressBook, fill_demo_contacts
from imsg.sim.messages import SimDB
from tests.contract import schemas
from tests.rpc.harness import DEMO_NOW, Rpc, demo_db, sim_env


def check(schema: dict[str, Any], value: Any) -> None:
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def add_every_row_kind(path: str, schema: str) -> None:
    """Beyond the demo: a link with its preview row, a poll and a vote on it, a threaded reply,
    an unsent message and (on macOS 26) a message scheduled with Send Later."""
    sim = SimDB(path)
    try:
        chat = sim.chat(["+15555550123"])
        text = sim.receive(chat, None, "look https://example.com/trip", at=DEMO_NOW + 10)
        sim.url_preview(chat, "https://example.com/trip", title="Trip", at=DEMO_NOW + 11)
        sim.message(chat, "a reply in the thread", thread_originator=text, at=DEMO_NOW + 12)
        poll, options = sim.poll(chat, "Dinner?", ["Pizza", "Sushi"], at=DEMO_NOW + 13)
        sim.poll_vote(chat, poll, options[:1], at=DEMO_NOW + 14)
        sim.unsend(sim.send(chat, "oops", at=DEMO_NOW + 15), at=DEMO_NOW + 16)
        if schema == "tahoe":
            sim.send(chat, "later", at=DEMO_NOW + 10**8, schedule_type=2, schedule_state=1)
    finally:
        sim.close()


@pytest.fixture(params=["ventura", "tahoe"])
def rpc(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rpc]:
    db = demo_db(tmp_path / "chat.db", request.param)
    add_every_row_kind(db, request.param)
    contacts = str(tmp_path / "AddressBook")
    fill_demo_contacts(SimAddressBook.create_at(contacts))
    server = Rpc("--db", db, env=sim_env(db, IMSG_ADDRESSBOOK_DIR=contacts))
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
    seen: set[str] = set()
    for chat in chats:
        check(schemas.CHAT, chat)
        check(schemas.GROUP, calls.result("chats.get", {"chat_id": chat["id"]}))
        for attachments in (False, True):
            history = calls.result("messages.history", {"chat_id": chat["id"], "limit": 100,
                                                        "attachments": attachments})
            for message in history["messages"]:
                check(schemas.MESSAGE, message)
                seen |= set(message)
    # the checks above saw every optional shape the history holds
    assert {"url_preview", "poll", "thread_originator_guid", "retracted_at", "edited_at",
            "group_event", "sender_name", "is_read"} <= seen, seen
    for message in calls.result("messages.search", {"query": "a", "limit": 100})["messages"]:
        check(schemas.MESSAGE, message)
    check(schemas.STATS, calls.result("messages.stats", {"include_media": True}))
    if "messages.scheduled" in calls.result("status")["methods"]:
        for item in calls.result("messages.scheduled", {"limit": 10})["messages"]:
            check(schemas.SCHEDULED, item)
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
