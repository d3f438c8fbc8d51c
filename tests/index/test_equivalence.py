"""The index path answers exactly what the scan answers: same messages, same order.

Random databases (texts with case-folding traps, dates out of ROWID order and sharing seconds,
tapbacks, voice messages, link previews, rows in two chats) and random queries run through
``imsg.index.search`` and ``ChatDB.search``; then the database changes (new rows, edits,
unsends, deletions, a late transcript) and they are compared again. Small batch and window
sizes force every path: several candidate rounds, the short-needle window and trigram
look-up, chat filters through the index.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imsg.index
from imsg.chatdb.reader import ChatDB
from imsg.index import searcher
from imsg.sim.messages import SimAttachment, SimDB

ALICE, BOB = "+15550001111", "bob@example.com"
# ß→ss, ẞ→ss, İ→i̇, ﬁ→fi, Σ/ς/σ, the attachment placeholder, an emoji, a newline
ALPHABET = "aAbsSßẞİiIıﬁfΣςσ ok😀\ufffc\n"
TEXT = st.text(alphabet=ALPHABET, max_size=10)
NOW = time.time()
AGE = st.one_of(st.integers(0, 3 * 86400), st.sampled_from([0, 1, 2, 60]))  # seconds ago

ROW = st.tuples(
    st.sampled_from(["text", "text", "text", "column", "tapback", "voice", "preview", "both"]),
    TEXT, st.integers(0, 1), AGE, TEXT)


def write(sim: SimDB, chats: list[int], kind: str, text: str, chat: int, age: int,
          extra: str) -> int:
    chat_id, at = chats[chat], NOW - age - 0.5
    if kind == "tapback":
        target = sim.conn.execute("SELECT max(ROWID) FROM message").fetchone()[0]
        if target:
            return sim.react(chat_id, target, "love", sender=ALICE, at=at)
        kind = "text"
    if kind == "voice":
        return sim.message(chat_id, None, sender=ALICE, at=at, is_audio_message=1,
                           attachments=[SimAttachment("Audio Message.caf", "audio/x-caf",
                                                      create_file=False,
                                                      transcription=extra or None)])
    if kind == "preview":
        return sim.url_preview(chat_id, f"https://example.com/{text}", sender=ALICE, at=at)
    rowid = sim.receive(chat_id, ALICE, text, at=at, text_column=kind == "column")
    if kind == "both":
        sim.join(chats[1 - chat], rowid)
    return rowid


@st.composite
def queries(draw: st.DrawFn, texts: list[str]) -> tuple[str, str, int, int | None]:
    pool = [t for t in texts if t.strip()]
    if pool and draw(st.booleans()):
        text = draw(st.sampled_from(pool))
        start = draw(st.integers(0, len(text) - 1))
        end = draw(st.integers(start + 1, len(text)))
        query = text[start:end]
        if draw(st.booleans()):
            query = query.swapcase()
    else:
        query = draw(st.text(alphabet=ALPHABET, min_size=1, max_size=4))
    match = draw(st.sampled_from(["contains", "contains", "exact"]))
    return query, match, draw(st.sampled_from([1, 2, 3, 50])), draw(st.sampled_from([None, 0, 1]))


def same(db: ChatDB, chats: list[int], query: str, match: str, limit: int,
         chat: int | None) -> None:
    chat_id = None if chat is None else chats[chat]
    expected = db.search(query, match=match, limit=limit, chat_id=chat_id)
    got = imsg.index.search(db, query, match=match, limit=limit, chat_id=chat_id)
    assert got == expected, (query, match, limit, chat_id)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(ROW, min_size=1, max_size=25), later=st.lists(ROW, max_size=8),
       changes=st.lists(st.tuples(st.sampled_from(["edit", "unsend", "delete", "transcribe"]),
                                  st.integers(0, 10**6), TEXT), max_size=4),
       schema=st.sampled_from(["ventura", "tahoe"]), data=st.data())
def test_the_index_answers_what_the_scan_answers(
        rows: list[tuple[str, str, int, int, str]], later: list[tuple[str, str, int, int, str]],
        changes: list[tuple[str, int, str]], schema: str, data: st.DataObject) -> None:
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        stack.enter_context(mock.patch.object(searcher, "SMALL_CHAT", 0))
        stack.enter_context(mock.patch.object(searcher, "SHORT_WINDOW", 3))
        stack.enter_context(mock.patch.object(searcher, "_FIRST_BATCH", 1))
        stack.callback(imsg.index.close_all)
        sim = SimDB.create(str(folder / "chat.db"), schema)
        stack.callback(sim.close)
        # What Apple's delete triggers need: a table the macOS 26 schema leaves out, a function
        # Messages registers.
        for table in ("deleted_messages", "sync_deleted_messages"):
            sim.conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (ROWID INTEGER PRIMARY KEY"
                             " AUTOINCREMENT UNIQUE, guid TEXT NOT NULL, recordID TEXT)")
        sim.conn.create_function("after_delete_message_plugin", 2, lambda *_: None)
        chats = [sim.chat([ALICE]), sim.chat([ALICE, BOB], name="Group")]
        written = [(write(sim, chats, *row), row[3]) for row in rows]
        db = stack.enter_context(ChatDB(sim.path))
        texts = [row[1] for row in rows + later] + [row[4] for row in rows + later]
        for query in data.draw(st.lists(queries(texts), min_size=1, max_size=6)):
            same(db, chats, *query)
        written += [(write(sim, chats, *row), row[3]) for row in later]
        for change, pick, text in changes:
            rowid, age = written[pick % len(written)]
            if not sim.conn.execute("SELECT 1 FROM message WHERE ROWID = ?", (rowid,)).fetchone():
                continue  # deleted by an earlier change
            if change in ("edit", "unsend") and age > 900:
                continue  # Messages allows edits for 15 minutes (older ones: test_sync)
            if change == "edit":
                sim.edit(rowid, text)
            elif change == "unsend":
                sim.unsend(rowid)
            elif change == "delete":
                sim.conn.execute("DELETE FROM chat_message_join WHERE message_id = ?", (rowid,))
                sim.conn.execute("DELETE FROM message WHERE ROWID = ?", (rowid,))
            else:
                info = b"bplist00" if not text else None  # garbage, or a real transcript
                sim.conn.execute(
                    "UPDATE attachment SET user_info = ? WHERE ROWID IN (SELECT attachment_id"
                    " FROM message_attachment_join WHERE message_id = ?)",
                    (info or _transcript(text), rowid))
        texts += [text for _, _, text in changes]
        for query in data.draw(st.lists(queries(texts), min_size=1, max_size=6)):
            same(db, chats, *query)


def _transcript(text: str) -> bytes:
    import plistlib

    return plistlib.dumps({"audio-transcription": text}, fmt=plistlib.FMT_BINARY)
