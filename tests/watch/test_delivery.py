"""The cursor contract: start, replay, exactly once, ROWID order, bursts, filters, holds."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from imsg.chatdb.reader import Filters
from imsg.errors import ChatNotFound, DatabaseNotFound, InvalidInput
from imsg.sim.messages import SimDB
from imsg.watch import Watcher

from .kit import ALICE, BOB, Stream, ids, wait_for


def test_starts_after_the_newest_row_then_delivers_live_rows(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    for since in (None, 0):
        stream = watch(since_rowid=since)
        first = db.receive(chat, ALICE, f"live {since}")
        assert ids(stream.through(first)) == [first]
        stream.stop()


def test_since_rowid_replays_later_rows_then_goes_live(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    old = [db.receive(chat, ALICE, f"old {i}") for i in range(5)]
    stream = watch(since_rowid=old[1])
    live = db.receive(chat, ALICE, "live")
    events = stream.through(live)
    assert ids(events) == [*old[2:], live]
    assert [e.kind for e in events] == ["message"] * 4
    assert stream.watcher.cursor == live


def test_negative_since_rowid_replays_everything(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    first = db.receive(chat, ALICE, "second row")
    assert ids(watch(since_rowid=-1).through(first)) == [first - 1, first]


def test_a_row_committed_right_after_the_constructor_is_delivered(
        db: SimDB, chat: int, statuses: list[str]) -> None:
    watcher = Watcher(db.path, debounce_s=0, poll_interval_s=3600)
    rowid = db.receive(chat, ALICE, "between constructor and events()")
    stream = Stream(watcher)
    try:
        assert ids(stream.through(rowid)) == [rowid]
    finally:
        stream.stop()


def test_a_burst_of_10000_rows_is_drained_at_once_in_pages(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    # The timer poll is an hour away: a batch-size stall would hang here, not pass slowly.
    stream = watch(page_size=500)
    db.conn.execute("BEGIN")
    burst = [db.receive(chat, ALICE, f"burst {i}") for i in range(10_000)]
    db.conn.execute("COMMIT")
    sentinel = db.receive(chat, ALICE, "after the burst")
    assert ids(stream.through(sentinel)) == [*burst, sentinel]


def test_continuous_single_row_commits_each_arrive_once_in_order(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    stream = watch(debounce_s=0.05)
    rows = [db.receive(chat, BOB if i % 2 else ALICE, f"n{i}") for i in range(300)]
    assert ids(stream.through(rows[-1])) == rows


def test_chat_filter_delivers_only_that_chat_and_steps_over_others(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    other = db.chat([BOB])
    stream = watch(chat_id=chat)
    noise = [db.receive(other, BOB, f"other {i}") for i in range(20)]
    wait_for(lambda: stream.watcher.cursor == noise[-1])  # later polls need not rescan them
    mine = db.receive(chat, ALICE, "mine")
    assert ids(stream.through(mine)) == [mine]
    db.receive(other, BOB, "more noise")
    sentinel = db.receive(chat, ALICE, "sentinel")
    assert ids(stream.through(sentinel)) == [sentinel]
    assert stream.watcher.cursor == sentinel > noise[-1]


def test_filters_skip_rows_but_the_cursor_moves_past_them(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    group = db.chat([ALICE, BOB])
    stream = watch(filters=Filters.parse([ALICE.lower()]))
    skipped = db.receive(group, BOB, "from bob")
    kept = db.receive(group, ALICE, "from alice")
    assert ids(stream.through(kept)) == [kept]
    assert skipped < stream.watcher.cursor == kept
    dated = watch(filters=Filters.parse(start="2031-01-01T00:00:00Z"))
    db.receive(chat, ALICE, "too early")
    future = db.receive(chat, ALICE, "from the future", at=1_924_992_060.0)
    assert ids(dated.through(future)) == [future]


def test_tapbacks_only_with_reactions(db: SimDB, chat: int,
                                      watch: Callable[..., Stream]) -> None:
    target = db.receive(chat, ALICE, "react to me")
    plain, with_reactions = watch(), watch(reactions=True)
    tapback = db.react(chat, target, "love", sender=ALICE)
    sentinel = db.receive(chat, ALICE, "sentinel")
    assert ids(plain.through(sentinel)) == [sentinel]
    events = with_reactions.through(sentinel)
    assert ids(events) == [tapback, sentinel]
    reaction = events[0].message
    assert (reaction.is_reaction, reaction.reaction_type, reaction.reaction_emoji,
            reaction.is_reaction_add, reaction.reacted_to_guid) == (
        True, "love", "❤️", True, db.guid_of(target))


def test_a_row_joined_to_two_chats_is_delivered_once(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    other = db.chat([BOB])
    everything, only_other = watch(), watch(chat_id=other)
    db.conn.execute("BEGIN")
    both = db.receive(chat, ALICE, "in two chats")
    db.join(other, both)
    db.conn.execute("COMMIT")
    sentinel = db.receive(other, BOB, "sentinel")
    assert ids(everything.through(sentinel)) == [both, sentinel]
    events = only_other.through(sentinel)
    assert ids(events) == [both, sentinel]
    assert events[0].message.chat_id == other


@pytest.mark.parametrize("chat_filter", [False, True])
def test_a_row_joined_late_waits_and_holds_back_later_rows(
        db: SimDB, chat: int, watch: Callable[..., Stream], chat_filter: bool) -> None:
    stream = watch(chat_id=chat if chat_filter else None, hold_s=60)
    unjoined = db.message(chat, "written before its join row", sender=ALICE, join=False)
    after = db.receive(chat, ALICE, "joined at once")
    db.join(chat, unjoined)
    events = stream.through(after)
    assert ids(events) == [unjoined, after]
    assert [e.message.chat_id for e in events] == [chat, chat]
    assert events[0].message.chat_identifier == ALICE


def test_constructor_failures_are_raised_synchronously(db: SimDB, chat: int) -> None:
    with pytest.raises(ChatNotFound):
        Watcher(db.path, chat_id=9999)
    with pytest.raises(DatabaseNotFound):
        Watcher(db.path + ".absent")
    for bad in ({"debounce_s": -1}, {"hold_s": -0.1}, {"poll_interval_s": 0}, {"page_size": 0}):
        with pytest.raises(InvalidInput):
            Watcher(db.path, **bad)  # type: ignore[arg-type]


def test_close_from_another_thread_ends_events_and_is_idempotent(
        db: SimDB, chat: int) -> None:
    stream = Stream(Watcher(db.path, poll_interval_s=3600))
    closer = threading.Thread(target=stream.watcher.close)
    closer.start()
    closer.join()
    stream.stop()
    stream.watcher.close()
    assert list(stream.watcher.events()) == []


def test_a_closed_idle_watcher_never_iterated_releases_everything(db: SimDB, chat: int) -> None:
    watcher = Watcher(db.path)
    watcher.close()
    watcher.close()
    assert list(watcher.events()) == []


def test_only_one_thread_may_iterate(db: SimDB, chat: int) -> None:
    watcher = Watcher(db.path, poll_interval_s=3600)
    stream = Stream(watcher)
    sentinel = db.receive(chat, ALICE, "started")
    stream.through(sentinel)
    with pytest.raises(RuntimeError):
        next(watcher.events())
    stream.stop()


def test_close_in_the_middle_of_a_page_stops_at_once(db: SimDB, chat: int) -> None:
    watcher = Watcher(db.path, debounce_s=0, poll_interval_s=3600)
    db.conn.execute("BEGIN")
    rows = [db.receive(chat, ALICE, f"queued {i}") for i in range(100)]
    db.conn.execute("COMMIT")
    events = watcher.events()
    first = next(events)
    watcher.close()
    assert first.message.id == rows[0]
    assert list(events) == []
    assert watcher.cursor == rows[0]
