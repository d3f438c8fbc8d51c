"""Edits and unsends (rows changed in place) as update events, once per change."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imsg.chatdb.models import to_json
from imsg.sim.messages import SimDB

from .kit import ALICE, BOB, Stream, ids


@pytest.fixture(params=["ventura", "tahoe"])
def any_db(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SimDB]:
    """macOS 13 marks an unsend with date_retracted, macOS 26 with date_edited + ``rp``."""
    sim = SimDB.create(str(tmp_path / "any.db"), str(request.param))
    yield sim
    sim.close()


def test_edits_and_unsends_are_reported_once_each(
        any_db: SimDB, watch: Callable[..., Stream]) -> None:
    chat = any_db.chat([ALICE])
    stream = watch(any_db.path, updates=True)
    kept = any_db.send(chat, "helo")
    gone = any_db.send(chat, "oops")
    assert ids(stream.through(gone)) == [kept, gone]
    any_db.edit(kept, "hello")
    edited = stream.next()
    assert (edited.kind, edited.message.id, edited.message.text) == ("edited", kept, "hello")
    assert edited.message.event == "edited" and edited.message.edited_at
    assert b'"event":"edited"' in to_json(edited.message)
    any_db.unsend(gone)
    retracted = stream.next()
    assert (retracted.kind, retracted.message.id, retracted.message.text) == (
        "retracted", gone, "")
    assert retracted.message.retracted_at
    any_db.edit(kept, "hello!")
    assert [(e.kind, e.message.id, e.message.text) for e in stream.take(1)] == [
        ("edited", kept, "hello!")]
    sentinel = any_db.send(chat, "sentinel")
    assert [(e.kind, e.message.id) for e in stream.through(sentinel)] == [("message", sentinel)]


def test_new_messages_carry_no_event_key(db: SimDB, chat: int,
                                         watch: Callable[..., Stream]) -> None:
    stream = watch(updates=True)
    rowid = db.receive(chat, ALICE, "plain")
    [event] = stream.take(1)
    assert event.message.id == rowid and event.message.event is None
    assert b'"event"' not in to_json(event.message)


def test_edits_made_before_the_watch_are_not_replayed_but_new_ones_are(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    earlier = db.receive(chat, ALICE, "first draft")
    db.edit(earlier, "second draft")
    stream = watch(updates=True)
    sentinel = db.receive(chat, ALICE, "sentinel")
    assert ids(stream.through(sentinel)) == [sentinel]
    db.edit(earlier, "third draft")
    [event] = stream.take(1)
    assert (event.kind, event.message.id, event.message.text) == ("edited", earlier,
                                                                  "third draft")


def test_a_replayed_row_already_edited_is_not_reported_again(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    edited = db.receive(chat, ALICE, "draft")
    db.edit(edited, "final")
    stream = watch(since_rowid=edited - 1, updates=True)
    sentinel = db.receive(chat, ALICE, "sentinel")
    events = stream.through(sentinel)
    assert [(e.kind, e.message.id) for e in events] == [("message", edited),
                                                        ("message", sentinel)]
    assert events[0].message.edited_at


def test_updates_follow_the_chat_filter_and_are_off_by_default(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    other = db.chat([BOB])
    theirs = db.receive(other, BOB, "elsewhere")
    mine = db.receive(chat, ALICE, "here")
    filtered, plain = watch(chat_id=chat, updates=True), watch()
    db.edit(theirs, "elsewhere, edited")
    db.edit(mine, "here, edited")
    [event] = filtered.take(1)
    assert (event.kind, event.message.id) == ("edited", mine)
    sentinel = db.receive(chat, ALICE, "sentinel")
    assert ids(filtered.through(sentinel)) == [sentinel]
    assert ids(plain.through(sentinel)) == [sentinel]
