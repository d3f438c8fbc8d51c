"""``page_after``: ROWID paging on the watcher's rules, and a property test that paging through
a database and a watcher replaying it deliver the same messages."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imsg.chatdb.models import Message
from imsg.chatdb.reader import ChatDB
from imsg.errors import InvalidInput
from imsg.sim.messages import SimDB
from imsg.watch import Page, Watcher, page_after

from .kit import ALICE, BOB

LINK = "https://example.com/page"
OLD = 1_600_000_000.0  # 2020: every row of the property test is long settled


def everything(reader: ChatDB, since: int = -1, **kwargs: object) -> list[Page]:
    pages = [page_after(reader, since, **kwargs)]  # type: ignore[arg-type]
    while pages[-1].has_more:
        pages.append(page_after(reader, pages[-1].next_rowid, **kwargs))  # type: ignore[arg-type]
    return pages


def test_pages_in_rowid_order_cut_at_the_limit(db: SimDB, chat: int) -> None:
    other = db.chat([BOB])
    rows = [db.receive(chat if i % 2 else other, ALICE if i % 2 else BOB, f"n{i}")
            for i in range(7)]
    tapback = db.react(chat, rows[1], "like", sender=ALICE)
    with ChatDB(db.path) as reader:
        pages = everything(reader, rows[0] - 1, limit=3)
        assert [[m.id for m in p.messages] for p in pages] == [rows[:3], rows[3:6], rows[6:]]
        assert [p.has_more for p in pages] == [True, True, False]
        assert [p.next_rowid for p in pages] == [rows[2], rows[5], tapback]
        assert all(m.cursor is None for p in pages for m in p.messages)  # live watch only
        with_reactions = page_after(reader, rows[-1], reactions=True)
        assert [m.id for m in with_reactions.messages] == [tapback]
        assert with_reactions.messages[0].is_reaction
        mine = page_after(reader, -1, chat_id=chat, limit=500)
        assert [m.id for m in mine.messages] == [rows[0] - 1, *rows[1::2]]
        for bad in (0, 501):
            with pytest.raises(InvalidInput, match="limit must be an integer between 1 and 500"):
                page_after(reader, -1, limit=bad)


def test_previews_fold_and_one_whose_text_row_is_before_the_page_is_not_returned(
        db: SimDB, chat: int) -> None:
    text = db.receive(chat, ALICE, f"read {LINK}")
    preview = db.url_preview(chat, LINK, sender=ALICE)
    after = db.receive(chat, ALICE, "after")
    with ChatDB(db.path) as reader:
        page = page_after(reader, text - 1, limit=1)
        assert [m.id for m in page.messages] == [text]
        assert page.messages[0].url_preview is not None
        assert page.messages[0].url_preview.id == preview
        assert (page.next_rowid, page.has_more) == (preview, True)
        rest = page_after(reader, text)  # the preview's text row lies before this page
        assert [m.id for m in rest.messages] == [after]


def test_a_message_in_two_chats_comes_once_with_the_lowest_chat(db: SimDB, chat: int) -> None:
    other = db.chat([BOB])
    db.conn.execute("BEGIN")
    both = db.receive(other, ALICE, "in two chats")
    db.join(chat, both)
    db.conn.execute("COMMIT")
    with ChatDB(db.path) as reader:
        for limit in (1, 2, 100):
            page = page_after(reader, both - 1, limit=limit)
            assert [(m.id, m.chat_id) for m in page.messages] == [(both, min(chat, other))]
        assert [m.chat_id for m in page_after(reader, both - 1, chat_id=other).messages] == [
            other]


def test_a_young_unjoined_row_stops_the_page_an_old_one_is_skipped(
        db: SimDB, chat: int) -> None:
    before = db.receive(chat, ALICE, "before")
    orphan = db.message(chat, "its join is coming", sender=ALICE, join=False)
    after = db.receive(chat, ALICE, "after")
    with ChatDB(db.path) as reader:
        page = page_after(reader, before - 1)
        assert [m.id for m in page.messages] == [before]
        assert (page.next_rowid, page.has_more, page.waiting_on) == (before, False, orphan)
        later = page_after(reader, before, now_ns=time.time_ns() + 3600 * 10**9)
        assert [m.id for m in later.messages] == [after]
        assert [(s.rowid, s.guid, s.reason) for s in later.skipped] == [
            (orphan, db.guid_of(orphan), "never_joined")]
        db.join(chat, orphan)
        assert [m.id for m in page_after(reader, before).messages] == [orphan, after]


def test_a_recently_deleted_row_is_passed_over(db: SimDB, chat: int) -> None:
    deleted = db.message(chat, "deleted", sender=ALICE, join=False)
    db.conn.execute("INSERT INTO chat_recoverable_message_join (chat_id, message_id,"
                    " delete_date) VALUES (?, ?, 1)", (chat, deleted))
    after = db.receive(chat, ALICE, "after")
    with ChatDB(db.path) as reader:
        page = page_after(reader, deleted - 1)
        assert ([m.id for m in page.messages], page.skipped, page.waiting_on) == (
            [after], [], None)


# --- paging and watching agree ---------------------------------------------------------------

@dataclass(frozen=True)
class Op:
    kind: str  # text | link | link_pair | preview | tapback | two_chats | orphan | deleted
    chat: int  # index into the chats
    sender: int  # 0: me, else a contact
    gap_s: float  # seconds after the previous row


OPS = st.builds(
    Op,
    kind=st.sampled_from(["text", "text", "link", "link_pair", "link_pair", "preview",
                          "preview", "tapback", "two_chats", "orphan", "deleted"]),
    chat=st.integers(0, 2),
    sender=st.integers(0, 2),
    gap_s=st.sampled_from([0.5, 0.5, 3.0, 8.0, 60.0]),
)


def build(path: str, ops: list[Op]) -> SimDB:
    sim = SimDB.create(path, "tahoe")
    people = [ALICE, BOB]
    chats = [sim.chat([ALICE]), sim.chat([BOB]), sim.chat([ALICE, BOB])]
    at = OLD
    written: dict[int, list[int]] = {}
    for op in ops:
        at += op.gap_s
        chat = chats[op.chat]
        members = [ALICE] if op.chat == 0 else [BOB] if op.chat == 1 else people
        who = {"from_me": True} if op.sender == 0 else {
            "sender": members[(op.sender - 1) % len(members)]}
        if op.kind == "tapback":
            if written.get(chat):
                sim.react(chat, written[chat][-1], "love", at=at, **who)  # type: ignore[arg-type]
            continue
        if op.kind == "link_pair":  # a text row and its preview, as Messages writes them
            text = sim.message(chat, f"see {LINK}", at=at, **who)  # type: ignore[arg-type]
            written.setdefault(chat, []).append(text)
            at += 0.2
        if op.kind in ("preview", "link_pair"):
            rowid = sim.url_preview(chat, LINK, at=at, **who)  # type: ignore[arg-type]
        else:
            text = f"see {LINK}" if op.kind == "link" else f"message at {at}"
            rowid = sim.message(chat, text, at=at, join=op.kind in ("text", "link", "two_chats"),
                                **who)  # type: ignore[arg-type]
        if op.kind == "two_chats":
            sim.join(chats[(op.chat + 1) % 3], rowid)
        elif op.kind == "deleted":
            sim.conn.execute("INSERT INTO chat_recoverable_message_join (chat_id, message_id,"
                             " delete_date) VALUES (?, ?, 1)", (chat, rowid))
        if op.kind not in ("orphan", "deleted"):
            written.setdefault(chat, []).append(rowid)
    for chat in chats:  # the last row each chat-filtered watcher will see
        sim.receive(chat, BOB if chat == chats[1] else ALICE, "sentinel", at=at + 1)
    return sim


def shown(message: Message) -> tuple[int, int, int | None]:
    preview = message.url_preview.id if message.url_preview is not None else None
    return message.id, message.chat_id, preview


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(OPS, min_size=4, max_size=30), limit=st.integers(1, 4), reactions=st.booleans(),
       only_chat=st.sampled_from([None, 0, 2]))
def test_paging_and_a_replaying_watcher_deliver_the_same(
        tmp_path_factory: pytest.TempPathFactory, ops: list[Op], limit: int, reactions: bool,
        only_chat: int | None) -> None:
    folder: Path = tmp_path_factory.mktemp("prop")
    sim = build(str(folder / "chat.db"), ops)
    try:
        chat_id = None if only_chat is None else only_chat + 1  # chats are ROWIDs 1..3
        newest = sim.conn.execute("SELECT MAX(ROWID) FROM message").fetchone()[0]
        sentinel = newest if chat_id is None else newest - 3 + chat_id
        with ChatDB(sim.path) as reader:
            pages = everything(reader, limit=limit, reactions=reactions, chat_id=chat_id)
        paged = [shown(m) for p in pages for m in p.messages]
        paged_skips = [s.rowid for p in pages for s in p.skipped]
        watcher = Watcher(sim.path, since_rowid=-1, chat_id=chat_id, reactions=reactions,
                          hold_s=0, horizon_s=0, poll_interval_s=3600, report_skipped=True)
        watched: list[tuple[int, int, int | None]] = []
        watched_skips: list[int] = []
        try:
            for event in watcher.events():
                if event.kind == "skipped":
                    watched_skips.append(event.skipped.rowid)
                    continue
                watched.append(shown(event.message))
                if event.message.id == sentinel:
                    break
        finally:
            watcher.close()
        assert watched == paged
        assert watched_skips == paged_skips
        assert len({rowid for rowid, _, _ in paged}) == len(paged)
        assert all(chat != 0 for _, chat, _ in paged)
    finally:
        sim.close()
