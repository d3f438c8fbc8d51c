"""A chat.db whose optional columns or tables were renamed (as a macOS update may) still reads:
every optional column is probed, so one missing column never fails a whole command."""

from __future__ import annotations

from pathlib import Path

import pytest

from imsg.chatdb.reader import ChatDB
from imsg.sim.demo import ALICE, fill_demo
from imsg.sim.messages import SimDB

from .drift import rename

DRIFTS = [
    "message.attributedBody", "message.associated_message_emoji",
    "message.associated_message_guid", "message.thread_originator_guid",
    "message.thread_originator_part", "message.reply_to_guid", "message.balloon_bundle_id",
    "message.payload_data", "message.item_type", "message.is_audio_message",
    "message.date_read", "message.cache_has_attachments", "message.part_count",
    "message.handle_id", "message.date_edited", "message.message_summary_info",
    "message.destination_caller_id", "attachment.user_info", "attachment.filename",
    "attachment.total_bytes", "chat.display_name", "chat.guid", "chat.style",
    "chat.account_login", "handle.id", "chat_message_join.message_date",
    "table chat_handle_join", "table message_attachment_join", "table attachment",
]


@pytest.mark.parametrize("drift", DRIFTS)
def test_reads_survive_a_renamed_column(tmp_path: Path, schema: str, drift: str) -> None:
    sim = SimDB.create(str(tmp_path / "chat.db"), schema)
    ids = fill_demo(sim)
    if drift.startswith("table "):
        table = drift.split()[1]
        rename(sim.conn, f"ALTER TABLE {table} RENAME TO {table}_renamed")
    else:
        table, column = drift.split(".")
        columns = {row[1] for row in sim.conn.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            pytest.skip(f"{schema} has no {drift}")
        rename(sim.conn, f"ALTER TABLE {table} RENAME COLUMN {column} TO {column}_renamed")
    sim.close()
    with ChatDB(str(tmp_path / "chat.db")) as db:
        assert {chat.id for chat in db.chats()} == set(ids.values())
        for chat_id in ids.values():
            assert db.history(chat_id, edit_history=True)
            db.group(chat_id)
        assert db.stats(include_media=True).total_messages > 0
        db.chats(unread_only=True)
        # Text that lives in the text column is found even without attributedBody.
        assert db.search("Thanks!", match="exact") or drift == "message.attributedBody"


def test_search_without_attributed_body_still_finds_text_column_rows(tmp_path: Path,
                                                                     schema: str) -> None:
    sim = SimDB.create(str(tmp_path / "chat.db"), schema)
    chat = sim.chat([ALICE])
    row = sim.receive(chat, ALICE, "plain text column", text_column=True)
    rename(sim.conn, "ALTER TABLE message RENAME COLUMN attributedBody TO body_renamed")
    sim.close()
    with ChatDB(str(tmp_path / "chat.db")) as db:
        assert [m.id for m in db.search("TEXT COLUMN")] == [row]


def test_one_row_claiming_a_hundred_million_parts(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    huge = sim.receive(chat, ALICE, "huge", part_count=100_000_000)
    sim.react(chat, huge, "like", from_me=True, part=3)
    sim.receive(chat, ALICE, "odd", part_count="many")
    statements: list[str] = []
    reader._conn.set_trace_callback(statements.append)
    odd, big = reader.history(chat)
    reader._conn.set_trace_callback(None)
    assert (big.text, [r.type for r in big.reactions]) == ("huge", ["like"])
    assert odd.text == "odd"
    assert len(statements) <= 10  # the tapback look-up stays one bounded query
    assert [m.id for m in reader.search("huge")] == [huge]
