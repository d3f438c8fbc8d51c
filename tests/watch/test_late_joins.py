"""Rows Messages joins to their chat late: held, then pending, delivered once; never lost.

A joined row is always delivered. The hold is measured in the watcher's awake polling, so a
stopped process (simulated by moving ``time.monotonic`` forward) does not use it up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from imsg.chatdb.reader import ChatDB
from imsg.sim.messages import SimDB
from imsg.watch import Watcher

from .kit import ALICE, BOB, Stream, ids, wait_for

OLD = 1_600_000_000.0  # a date in 2020


@pytest.fixture
def paused(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[float], None]]:
    """``pause(seconds)``: from now on, ``time.monotonic`` reads ``seconds`` later, as it does
    for a process that was stopped (SIGSTOP) or starved for that long."""
    offset = [0.0]
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + offset[0])

    def pause(seconds: float) -> None:
        offset[0] += seconds

    yield pause


def test_a_row_joined_after_the_hold_is_delivered_late_and_once(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    stream = watch(hold_s=0.1, horizon_s=60)
    orphan = db.message(chat, "joined seconds later", sender=ALICE, join=False)
    later = db.receive(chat, ALICE, "not held up for long")
    [event] = stream.take(1)
    assert (event.message.id, event.message.cursor) == (later, orphan - 1)
    assert stream.watcher.cursor == orphan - 1
    db.join(chat, orphan)
    late = stream.next()
    assert (late.kind, late.message.id, late.message.chat_id) == ("message", orphan, chat)
    assert late.message.cursor == stream.watcher.cursor == later
    sentinel = db.receive(chat, ALICE, "sentinel")
    assert ids(stream.through(sentinel)) == [sentinel]


def test_a_pause_does_not_use_up_the_hold(
        db: SimDB, chat: int, watch: Callable[..., Stream],
        paused: Callable[[float], None]) -> None:
    stream = watch(hold_s=5)
    db.conn.execute("BEGIN")
    seen = db.receive(chat, ALICE, "read in the same page as the orphan")
    orphan = db.message(chat, "joined 39 ms later", sender=ALICE, join=False)
    db.conn.execute("COMMIT")
    after = db.receive(chat, ALICE, "after")
    assert ids(stream.through(seen)) == [seen]  # so the orphan is being held now
    paused(3600)
    db.join(chat, orphan)
    assert ids(stream.through(after)) == [orphan, after]


def test_a_pause_between_reading_and_deciding_does_not_skip_the_row(
        db: SimDB, chat: int, watch: Callable[..., Stream],
        paused: Callable[[float], None], monkeypatch: pytest.MonkeyPatch) -> None:
    orphan = db.message(chat, "its join lands while the watcher is stopped", sender=ALICE,
                        join=False)
    after = db.receive(chat, ALICE, "after")
    read = ChatDB.messages_after
    sightings = []

    def read_then_stop(self: ChatDB, *args: object, **kwargs: object) -> object:
        page = read(self, *args, **kwargs)  # type: ignore[arg-type]
        if any(m.id == orphan for m, _ in page):  # type: ignore[attr-defined]
            sightings.append(len(sightings))
        if len(sightings) == 2:  # seen (and held) once already; now it stops after a read
            sightings.append(-1)
            writer = SimDB(db.path)  # this runs on the watcher's thread
            writer.join(chat, orphan)
            writer.close()
            paused(3600)
        return page

    monkeypatch.setattr(ChatDB, "messages_after", read_then_stop)
    stream = watch(since_rowid=orphan - 1, hold_s=5)
    assert ids(stream.through(after)) == [orphan, after]


def test_a_row_never_joined_is_given_up_after_the_horizon_and_reported(
        db: SimDB, chat: int, watch: Callable[..., Stream], statuses: list[str]) -> None:
    stream = watch(hold_s=0.05, horizon_s=0.3)
    ghost = db.message(chat, "", from_me=True, join=False)
    after = db.receive(chat, ALICE, "after the ghost")
    assert ids(stream.through(after)) == [after]
    wait_for(lambda: any(f"message {ghost} (" in s and "skipped it" in s for s in statuses))
    assert stream.watcher.cursor >= after
    sentinel = db.receive(chat, ALICE, "sentinel")
    assert ids(stream.through(sentinel)) == [sentinel]


def test_a_given_up_row_is_an_event_in_order_when_asked(
        db: SimDB, chat: int, watch: Callable[..., Stream], statuses: list[str]) -> None:
    stream = watch(hold_s=0.05, horizon_s=0.2, report_skipped=True)
    ghost = db.message(chat, "", from_me=True, join=False)
    after = db.receive(chat, ALICE, "after the ghost")
    first, second = stream.take(2)
    assert (first.kind, first.message.id) == ("message", after)
    assert second.kind == "skipped"
    assert (second.skipped.rowid, second.skipped.guid, second.skipped.reason) == (
        ghost, db.guid_of(ghost), "never_joined")
    with pytest.raises(TypeError):
        _ = second.message
    assert not any("skipped it" in s for s in statuses)


def test_resuming_from_a_cursor_redelivers_a_pending_row(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    first = watch(hold_s=0.05)
    orphan = db.message(chat, "joined after a restart", sender=ALICE, join=False)
    later = db.receive(chat, ALICE, "later")
    [event] = first.take(1)
    assert event.message.id == later
    first.stop()
    db.join(chat, orphan)
    second = watch(since_rowid=event.message.cursor)
    assert ids(second.through(later)) == [orphan, later]


def test_a_chat_filtered_watch_lets_go_of_a_row_joined_to_another_chat(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    other = db.chat([BOB])
    stream = watch(chat_id=chat, hold_s=0.05)
    theirs = db.message(other, "for the other chat", sender=BOB, join=False)
    mine = db.receive(chat, ALICE, "mine")
    [event] = stream.take(1)
    assert event.message.cursor == theirs - 1
    db.join(other, theirs)
    wait_for(lambda: stream.watcher.cursor >= mine)
    sentinel = db.receive(chat, ALICE, "sentinel")
    assert ids(stream.through(sentinel)) == [sentinel]


def test_a_row_in_recently_deleted_is_passed_over_at_once(
        db: SimDB, chat: int, watch: Callable[..., Stream], statuses: list[str]) -> None:
    stream = watch(hold_s=3600)
    deleted = db.message(chat, "deleted before anyone looked", sender=ALICE, join=False)
    db.conn.execute("INSERT INTO chat_recoverable_message_join (chat_id, message_id,"
                    " delete_date) VALUES (?, ?, 1)", (chat, deleted))
    after = db.receive(chat, ALICE, "after")
    [event] = stream.take(1)
    assert (event.message.id, event.message.cursor) == (after, after)
    assert not any(str(deleted) in s for s in statuses)


def test_old_orphans_in_a_replay_do_not_hold_it_up(
        db: SimDB, chat: int, statuses: list[str]) -> None:
    orphans = [db.message(chat, f"old orphan {i}", sender=ALICE, join=False, at=OLD + i)
               for i in range(3)]
    kept = db.receive(chat, ALICE, "after them")
    watcher = Watcher(db.path, since_rowid=-1, hold_s=3600, horizon_s=3600,
                      poll_interval_s=3600, on_status=statuses.append)
    events = watcher.events()
    try:
        assert [next(events).message.id for _ in range(2)] == [orphans[0] - 1, kept]
        assert watcher.cursor == orphans[0] - 1
    finally:
        watcher.close()
