"""Verification: only rows above the baseline, matched by chat and decoded text; ghost rows."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from imsg.chatdb.reader import ChatDB
from imsg.errors import SendInterrupted, SendNotConfirmed
from imsg.send import children
from imsg.send.verify import (
    GHOST_GRACE_S,
    Part,
    Scope,
    confirm_reaction,
    confirm_send,
    ghost_names,
)
from imsg.sim.messages import SimAttachment, SimDB

from .conftest import ALICE, BOB

SHORT = 0.2


@pytest.fixture
def chats(sim: SimDB) -> tuple[int, int]:
    group = sim.chat([ALICE, BOB], name="Team")
    direct = sim.chat([ALICE])
    return group, direct


@pytest.fixture
def db(sim: SimDB) -> Iterator[ChatDB]:
    with ChatDB(sim.path) as reader:
        yield reader


def test_finds_the_new_row_by_decoded_text(sim: SimDB, db: ChatDB, chats: tuple[int, int]) -> None:
    group, _ = chats
    baseline = db.max_rowid()
    rowid = sim.send(group, "héllo 👋")
    assert sim.conn.execute("SELECT text FROM message WHERE ROWID = ?", (rowid,)).fetchone() == (
        None,)
    found = confirm_send(db, baseline, Scope(chat_id=group), [Part("héllo 👋")], what="chat")
    assert (found.id, found.guid, found.chat_id) == (rowid, sim.guid_of(rowid), group)
    assert found.chat_guid == sim.conn.execute("SELECT guid FROM chat WHERE ROWID = ?",
                                               (group,)).fetchone()[0]
    assert found.service == "iMessage"


def test_only_rows_above_the_baseline_count(sim: SimDB, db: ChatDB,
                                            chats: tuple[int, int]) -> None:
    group, _ = chats
    sim.send(group, "same text")
    baseline = db.max_rowid()
    with pytest.raises(SendNotConfirmed, match=r"no matching outgoing row .* within 0\.2s"):
        confirm_send(db, baseline, Scope(chat_id=group), [Part("same text")], what="chat",
                     timeout_s=SHORT)


def test_incoming_rows_and_other_chats_do_not_match(sim: SimDB, db: ChatDB,
                                                   chats: tuple[int, int]) -> None:
    group, direct = chats
    baseline = db.max_rowid()
    sim.receive(group, ALICE, "ping")
    sim.send(direct, "ping")
    with pytest.raises(SendNotConfirmed):
        confirm_send(db, baseline, Scope(chat_id=group), [Part("ping")], what="chat",
                     timeout_s=SHORT)


def test_waits_for_a_row_written_while_polling(sim: SimDB, db: ChatDB,
                                               chats: tuple[int, int]) -> None:
    group, _ = chats
    baseline = db.max_rowid()

    def write_later() -> None:
        time.sleep(0.15)
        writer = SimDB(sim.path)
        writer.send(group, "late")
        writer.close()

    thread = threading.Thread(target=write_later)
    started = time.monotonic()
    thread.start()
    found = confirm_send(db, baseline, Scope(chat_id=group), [Part("late")], what="chat")
    thread.join()
    assert found.chat_id == group
    assert 0.15 <= time.monotonic() - started < 0.6


def test_text_and_file_need_a_row_each_and_report_the_text(sim: SimDB, db: ChatDB,
                                                          chats: tuple[int, int]) -> None:
    group, _ = chats
    baseline = db.max_rowid()
    text_row = sim.send(group, "look")
    parts = [Part("look"), Part("a b.jpg", is_file=True)]
    with pytest.raises(SendNotConfirmed):
        confirm_send(db, baseline, Scope(chat_id=group), parts, what="chat", timeout_s=SHORT)
    sim.message(group, None, from_me=True, attachments=[SimAttachment("a b.jpg")])
    assert confirm_send(db, baseline, Scope(chat_id=group), parts, what="chat").id == text_row


def test_handle_scope_matches_the_direct_chat(sim: SimDB, db: ChatDB) -> None:
    baseline = db.max_rowid()
    chat = sim.chat(["+15555550177"])
    rowid = sim.send(chat, "hi")
    found = confirm_send(db, baseline, Scope(handle="+15555550177"), [Part("hi")], what="x")
    assert (found.id, found.chat_id) == (rowid, chat)


def test_an_unjoined_row_never_counts(sim: SimDB, db: ChatDB, chats: tuple[int, int]) -> None:
    # A new recipient's chat must become visible before its row confirms the send.
    group, direct = chats
    baseline = db.max_rowid()
    sim.message(direct, "hi", from_me=True, join=False)
    with pytest.raises(SendNotConfirmed, match="no matching outgoing row"):
        confirm_send(db, baseline, Scope(handle=ALICE), [Part("hi")], what="x",
                     timeout_s=SHORT)
    sim.message(group, "to the group", from_me=True, join=False)
    with pytest.raises(SendNotConfirmed):
        confirm_send(db, baseline, Scope(chat_id=group), [Part("to the group")], what="x",
                     timeout_s=SHORT)


def test_a_route_scope_takes_only_rows_of_its_service(sim: SimDB, db: ChatDB,
                                                      chats: tuple[int, int]) -> None:
    _, direct = chats
    baseline = db.max_rowid()
    sim.send(direct, "hi")  # an iMessage row in the recipient's chat
    sms_route = Scope(handle=ALICE, services=frozenset({"sms", "rcs"}))
    with pytest.raises(SendNotConfirmed):
        confirm_send(db, baseline, sms_route, [Part("hi")], what="x", timeout_s=SHORT)
    rowid = sim.send(direct, "hi", service="SMS")
    assert confirm_send(db, baseline, sms_route, [Part("hi")], what="x").id == rowid


def test_a_file_two_new_rows_carry_is_ambiguous(sim: SimDB, db: ChatDB,
                                                chats: tuple[int, int]) -> None:
    group, _ = chats
    baseline = db.max_rowid()
    for _ in range(2):
        sim.message(group, None, from_me=True, attachments=[SimAttachment("same.jpg")])
    with pytest.raises(SendNotConfirmed, match=r"several new outgoing rows .* carry its name"):
        confirm_send(db, baseline, Scope(chat_id=group), [Part("same.jpg", is_file=True)],
                     what="chat", timeout_s=5)


def test_stopping_sends_ends_the_wait(db: ChatDB, chats: tuple[int, int]) -> None:
    group, _ = chats
    children.terminate_all("imsg rpc is shutting down")
    with pytest.raises(SendInterrupted, match="while confirming the send") as caught:
        confirm_send(db, db.max_rowid(), Scope(chat_id=group), [Part("x")], what="chat")
    assert caught.value.disposition == "may_have_completed"


def ghost(sim: SimDB, chat_id: int, address: str) -> int:
    return sim.message(chat_id, None, from_me=True, join=False,
                       handle_id=sim.handle(address, "SMS"), service="SMS")


def test_ghost_row_is_a_failure_without_waiting_out_the_clock(
        sim: SimDB, db: ChatDB, chats: tuple[int, int]) -> None:
    group, _ = chats
    guid = sim.conn.execute("SELECT guid FROM chat WHERE ROWID = ?", (group,)).fetchone()[0]
    identifier = guid.split(";")[-1]
    baseline = db.max_rowid()
    rowid = ghost(sim, group, guid.replace(";+;", ";-;"))
    scope = Scope(chat_id=group, ghost_names=ghost_names(guid, identifier))
    started = time.monotonic()
    with pytest.raises(SendNotConfirmed, match=rf"unjoined empty outgoing row \({rowid}\)"):
        confirm_send(db, baseline, scope, [Part("hi")], what="chat", timeout_s=5)
    assert GHOST_GRACE_S <= time.monotonic() - started < 1


def test_an_empty_unjoined_row_for_someone_else_is_no_ghost(
        sim: SimDB, db: ChatDB, chats: tuple[int, int]) -> None:
    group, _ = chats
    baseline = db.max_rowid()
    ghost(sim, group, "+15555550999")
    scope = Scope(chat_id=group, ghost_names=ghost_names("any;+;chat1", "chat1"))
    with pytest.raises(SendNotConfirmed, match="no matching outgoing row"):
        confirm_send(db, baseline, scope, [Part("hi")], what="chat", timeout_s=SHORT)


def test_ghost_names_cover_both_polarities_and_the_bare_identifier() -> None:
    assert ghost_names("any;+;chat123", "chat123") == {
        "any;+;chat123", "any;-;chat123", "chat123"}
    assert ghost_names("iMessage;-;chat9", "") == {"iMessage;-;chat9", "iMessage;+;chat9",
                                                   "chat9"}


def test_reaction_row(sim: SimDB, db: ChatDB, chats: tuple[int, int]) -> None:
    group, _ = chats
    target = sim.receive(group, ALICE, "vote?")
    baseline = db.max_rowid()
    with pytest.raises(SendNotConfirmed, match="no tapback row appeared in chat"):
        confirm_reaction(db, baseline, group, "like", timeout_s=SHORT)
    sim.react(group, target, "love", from_me=True)
    sim.react(group, target, "like", sender=ALICE)
    with pytest.raises(SendNotConfirmed):
        confirm_reaction(db, baseline, group, "like", timeout_s=SHORT)
    rowid = sim.react(group, target, "like", from_me=True)
    assert confirm_reaction(db, baseline, group, "like").id == rowid
