"""Link previews: folded into their text row, repeats skipped, state kept per watcher."""

from __future__ import annotations

import time
from collections.abc import Callable

from imsg.sim.messages import SimDB

from .kit import ALICE, BOB, Stream, ids

LINK = "https://example.com/article"


def test_a_preview_row_is_folded_into_its_text_row(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    stream = watch(hold_s=60)  # the fold must not depend on timing
    text = db.receive(chat, ALICE, f"Look at this {LINK} !")
    db.url_preview(chat, LINK + "/", sender=ALICE, title="An article")
    sentinel = db.receive(chat, ALICE, "sentinel")
    events = stream.through(sentinel)
    assert ids(events) == [text, sentinel]
    folded = events[0].message
    assert folded.text == f"Look at this {LINK} !"
    assert folded.url_preview is not None
    assert (folded.url_preview.url, folded.url_preview.title) == (LINK + "/", "An article")


def test_a_link_without_a_preview_is_delivered_after_the_hold(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    stream = watch(hold_s=0.1)
    text = db.receive(chat, ALICE, f"no preview for {LINK}")
    [event] = stream.take(1)
    assert event.message.id == text
    assert event.message.url_preview is None


def test_replayed_link_rows_are_not_held(db: SimDB, chat: int,
                                        watch: Callable[..., Stream]) -> None:
    text = db.receive(chat, ALICE, f"old link {LINK}")
    stream = watch(since_rowid=text - 1, hold_s=3600)
    assert ids(stream.take(1)) == [text]


def test_a_preview_written_twice_is_delivered_once(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    stream = watch()
    # 10 s after the chat's last text row: too late to be its preview.
    first = db.url_preview(chat, LINK, sender=ALICE, at=time.time() + 10)
    db.url_preview(chat, LINK, sender=ALICE, at=time.time() + 50)
    other_sender = db.url_preview(db.chat([ALICE, BOB]), LINK, sender=BOB)
    sentinel = db.receive(chat, ALICE, "sentinel")
    assert ids(stream.through(sentinel)) == [first, other_sender, sentinel]


def test_a_late_preview_of_an_already_delivered_text_row_is_skipped(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    stream = watch(hold_s=0.05)
    text = db.receive(chat, ALICE, f"see {LINK}")
    assert ids(stream.through(text)) == [text]
    db.url_preview(chat, LINK, sender=ALICE)
    sentinel = db.receive(chat, ALICE, "sentinel")
    assert ids(stream.through(sentinel)) == [sentinel]


def test_each_watcher_keeps_its_own_preview_state(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    # Swift 0.9 shared this state: a second subscription skipped links the first had seen.
    first, second = watch(hold_s=60), watch(hold_s=60)
    text = db.receive(chat, ALICE, f"read {LINK}")
    db.url_preview(chat, LINK, sender=ALICE)
    sentinel = db.receive(chat, ALICE, "sentinel")
    for stream in (first, second):
        events = stream.through(sentinel)
        assert ids(events) == [text, sentinel]
        assert events[0].message.url_preview is not None


def test_a_fold_does_not_depend_on_where_a_page_ends(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    text = db.receive(chat, ALICE, f"two links: {LINK} and {LINK}/more")
    first = db.url_preview(chat, LINK, sender=ALICE)
    db.url_preview(chat, LINK + "/more", sender=ALICE)
    sentinel = db.receive(chat, ALICE, "sentinel")
    for page_size in (1, 2, 500):
        events = watch(since_rowid=text - 1, page_size=page_size).through(sentinel)
        assert ids(events) == [text, sentinel]
        preview = events[0].message.url_preview
        assert preview is not None and preview.id == first


def test_a_preview_whose_text_row_came_before_the_start_is_not_delivered(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    text = db.receive(chat, ALICE, f"see {LINK}")
    db.url_preview(chat, LINK, sender=ALICE)
    sentinel = db.receive(chat, ALICE, "sentinel")
    assert ids(watch(since_rowid=text).through(sentinel)) == [sentinel]
