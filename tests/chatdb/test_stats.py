"""``ChatDB.stats`` and ``ChatDB.scheduled``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from imsg.chatdb.reader import ChatDB
from imsg.errors import ChatNotFound, InvalidInput, UnsupportedByDatabase
from imsg.sim.demo import ALICE, BOB, CAROL
from imsg.sim.messages import SimAttachment, SimDB

T0 = 1_780_000_000.0  # 2026-05-28T20:26:40Z
LINK = "https://example.com/x"


def test_counts_by_chat_sender_service_and_day(sim: SimDB, reader: ChatDB) -> None:
    alice = sim.chat([ALICE])
    group = sim.chat([ALICE, BOB], name="Trip")
    sms = sim.chat([CAROL], service="SMS")
    first = sim.receive(alice, ALICE, "hi", at=T0)
    sim.react(alice, first, "love", from_me=True, at=T0 + 1)  # not a message
    sim.send(alice, f"look {LINK}", at=T0 + 2)
    sim.url_preview(alice, LINK, from_me=True, at=T0 + 3)  # counts with its text
    shared = sim.receive(group, BOB, "in two chats", at=T0 + 2 * 3600)  # 00:26 in Paris
    sim.join(alice, shared)
    png = SimAttachment("b.png", size=5, uti="public.png", mime_type="image/png")
    sim.receive(group, BOB, "photo", at=T0 + 5, attachments=[SimAttachment("a.jpg", size=10), png])
    sim.receive(sms, CAROL, "code 1234", at=T0 + 6)

    stats = reader.stats(time_zone="Europe/Paris", include_media=True)
    assert (stats.total_messages, stats.sent_messages, stats.received_messages) == (5, 1, 4)
    assert stats.time_zone == "Europe/Paris"
    assert [(c.chat_id, c.message_count, c.name, c.service) for c in stats.chats] == [
        (alice, 3, ALICE, "iMessage"), (group, 2, "Trip", "iMessage"), (sms, 1, CAROL, "SMS")]
    assert [(s.handle, s.message_count) for s in stats.senders] == [
        (BOB, 2), (ALICE, 1), (CAROL, 1)]
    assert [(s.service, s.message_count) for s in stats.services] == [("iMessage", 4), ("SMS", 1)]
    assert [(d.date, d.message_count) for d in stats.dates] == [
        ("2026-05-28", 4), ("2026-05-29", 1)]
    utc = reader.stats(time_zone="UTC")
    assert [(d.date, d.message_count) for d in utc.dates] == [("2026-05-28", 5)]
    assert stats.media is not None and utc.media is None
    assert (stats.media.total_attachments, stats.media.total_bytes) == (2, 15)
    assert [(t.uti, t.attachment_count) for t in stats.media.types] == [
        ("public.jpeg", 1), ("public.png", 1)]
    assert [(c.chat_id, c.attachment_count, c.total_bytes) for c in stats.media.chats] == [
        (group, 2, 15)]

    scoped = reader.stats(chat_id=group)
    assert scoped.total_messages == 2 and [c.chat_id for c in scoped.chats] == [group]


def test_bad_chat_and_time_zone(sim: SimDB, reader: ChatDB) -> None:
    sim.receive(sim.chat([ALICE]), ALICE, "hi")
    with pytest.raises(ChatNotFound):
        reader.stats(chat_id=99)
    with pytest.raises(InvalidInput, match="Invalid time zone: Mars/Olympus"):
        reader.stats(time_zone="Mars/Olympus")
    assert reader.stats().time_zone  # this machine's zone by default


def test_scheduled_messages_soonest_first(tmp_path: Path) -> None:
    sim = SimDB.create(str(tmp_path / "chat.db"), "tahoe")
    chat = sim.chat([ALICE])
    now = time.time()
    sim.send(chat, "already sent", at=now - 60, schedule_type=2, schedule_state=5)
    later = sim.send(chat, "later", at=now + 7200, schedule_type=2, schedule_state=1)
    soon = sim.send(chat, "soon", at=now + 600, schedule_type=2, schedule_state=1)
    sim.send(chat, "ordinary", at=now + 900)
    with ChatDB(sim.path) as db:
        found = db.scheduled()
        assert [m.id for m in found] == [soon, later]
        first = found[0].to_dict()
        assert list(first) == ["id", "guid", "chat_id", "chat_identifier", "chat_guid",
                               "chat_name", "text", "service", "scheduled_at", "schedule_type",
                               "schedule_state"]
        assert (first["text"], first["chat_id"], first["schedule_type"]) == ("soon", chat, 2)
        assert [m.id for m in db.scheduled(1)] == [soon]


def test_scheduled_needs_the_scheduling_columns(tmp_path: Path) -> None:
    sim = SimDB.create(str(tmp_path / "chat.db"), "ventura")
    sim.close()
    with ChatDB(str(tmp_path / "chat.db")) as db, pytest.raises(UnsupportedByDatabase) as err:
        db.scheduled()
    assert err.value.feature == "scheduled"
