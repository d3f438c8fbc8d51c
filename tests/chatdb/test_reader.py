"""ChatDB against simulator databases of both schemas: what users see from chats and history."""

from __future__ import annotations

import json
import os
import time

import pytest

from imsg.chatdb.models import to_json
from imsg.chatdb.reader import ChatDB, Filters
from imsg.errors import ChatNotFound, InvalidDate, InvalidInput
from imsg.sim.demo import ALICE, BOB, CAROL
from imsg.sim.messages import SimAttachment, SimDB

MESSAGE_KEYS = [
    "id",
    "chat_id",
    "guid",
    "sender",
    "is_from_me",
    "text",
    "created_at",
    "attachments",
    "reactions",
    "destination_caller_id",
    "chat_identifier",
    "chat_guid",
    "chat_name",
    "participants",
    "is_group",
    "is_read",
    "date_read",
    "service",
]
T0 = 1_780_000_000.0  # 2026-05-28


def wire(obj: object) -> dict:
    return json.loads(to_json(obj))  # type: ignore[arg-type]


def test_chats_newest_activity_first_with_swift_keys(sim: SimDB, reader: ChatDB) -> None:
    old = sim.chat([ALICE])
    new = sim.chat([ALICE, BOB], name="Trip")
    empty = sim.chat([CAROL])
    first = sim.receive(old, ALICE, "first", at=T0)
    sim.receive(new, BOB, "second", at=T0 + 10)
    sim.react(old, first, "love", from_me=True, at=T0 + 20)  # a tapback counts as activity

    chats = reader.chats()
    assert [c.id for c in chats] == [old, new]
    assert empty not in [c.id for c in chats]
    data = wire(chats[1])
    assert list(data) == [
        "id",
        "name",
        "identifier",
        "service",
        "last_message_at",
        "guid",
        "display_name",
        "is_group",
        "participants",
        "account_id",
        "account_login",
        "last_addressed_handle",
        "unread_count",
    ]
    assert data["name"] == data["display_name"] == "Trip"
    assert data["is_group"] is True
    assert data["participants"] == sorted([ALICE, BOB])
    assert data["last_message_at"] == "2026-05-28T20:26:50.000Z"
    unnamed = wire(chats[0])
    assert unnamed["name"] == ALICE  # a stored '' title: name falls back, display_name keeps it
    assert unnamed["display_name"] == ""
    assert reader.chats(limit=1)[0].id == old


def test_tahoe_group_guid_uses_any_prefix(tmp_path) -> None:
    sim = SimDB.create(str(tmp_path / "chat.db"), "tahoe")
    group = sim.chat([ALICE, BOB])
    sim.receive(group, BOB, "hi")
    with ChatDB(sim.path) as db:
        chat = db.chats()[0]
    assert chat.guid is not None and chat.guid.startswith("any;+;")
    assert chat.is_group


def test_group_detail_and_unknown_chat(sim: SimDB, reader: ChatDB) -> None:
    direct = sim.chat([ALICE])
    detail = reader.group(direct)
    assert detail.is_group is False
    assert detail.participants == [ALICE]
    assert detail.account_login == "E:me@icloud.com"
    with pytest.raises(ChatNotFound, match="Chat not found: 999"):
        reader.group(999)
    with pytest.raises(ChatNotFound):
        reader.history(999)


def test_history_newest_first_with_exact_text_from_attributed_body(
    sim: SimDB, reader: ChatDB
) -> None:
    chat = sim.chat([ALICE])
    texts = ["\n  leading and trailing  \n", "emoji 👩‍👩‍👧‍👦 🇫🇷", "NSString NSNumber ↄ", ""]
    ids = [sim.receive(chat, ALICE, t, at=T0 + i) for i, t in enumerate(texts)]
    messages = reader.history(chat)
    assert [m.id for m in messages] == ids[::-1]
    assert [m.text for m in messages] == texts[::-1]
    data = wire(messages[-1])
    assert list(data) == MESSAGE_KEYS
    assert data["created_at"] == "2026-05-28T20:26:40.000Z"
    assert data["sender"] == ALICE and data["is_from_me"] is False


def test_text_column_wins_over_body(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    sim.receive(chat, ALICE, "plain column", text_column=True)
    assert reader.history(chat)[0].text == "plain column"


def test_outgoing_sender_is_the_other_party_in_direct_chats(sim: SimDB, reader: ChatDB) -> None:
    direct = sim.chat([ALICE])
    group = sim.chat([ALICE, BOB])
    sim.send(direct, "to alice")
    sim.send(group, "to all")
    assert reader.history(direct)[0].sender == ALICE
    assert reader.history(group)[0].sender == "me@icloud.com"  # handle 0 → destination_caller_id


def test_filters_apply_before_limit(sim: SimDB, reader: ChatDB) -> None:
    group = sim.chat([ALICE, BOB])
    for i in range(5):
        sim.receive(group, BOB, f"bob {i}", at=T0 + i)
    alice = sim.receive(group, ALICE, "alice", at=T0 - 100)
    only_alice = reader.history(group, limit=1, filters=Filters.parse([ALICE.upper()]))
    assert [m.id for m in only_alice] == [alice]
    window = Filters.parse(start="2026-05-28T20:26:41Z", end="2026-05-28T20:26:43Z")
    assert [m.text for m in reader.history(group, filters=window)] == ["bob 2", "bob 1"]


@pytest.mark.parametrize("value", ["yesterday", "2026-05-28", "2026-05-28T20:26:41"])
def test_bad_dates_are_rejected(value: str) -> None:
    with pytest.raises(InvalidDate):
        Filters.parse(start=value)


def test_start_after_end_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        Filters.parse(start="2026-05-29T00:00:00Z", end="2026-05-28T00:00:00Z")


def test_reactions_aggregate_one_per_sender_and_are_hidden(sim: SimDB, reader: ChatDB) -> None:
    group = sim.chat([ALICE, BOB])
    target = sim.receive(group, BOB, "dinner?", at=T0)
    sim.react(group, target, "like", sender=ALICE, at=T0 + 1)
    sim.react(group, target, "love", sender=ALICE, at=T0 + 2)  # replaces Alice's like
    sim.react(group, target, "laugh", from_me=True, at=T0 + 3)
    sim.react(group, target, "laugh", from_me=True, remove=True, at=T0 + 4)
    sim.react(group, target, "custom", sender=BOB, emoji="🎉", at=T0 + 5)
    sim.react(group, target, "dislike", sender=BOB, remove=True, at=T0 + 6)  # not Bob's: ignored

    [message] = reader.history(group)
    assert message.id == target
    got = [(r.type, r.emoji, r.sender, r.is_from_me) for r in message.reactions]
    assert got == [("love", "❤️", ALICE, False), ("custom", "🎉", BOB, False)]
    assert list(wire(message.reactions[0])) == [
        "id",
        "type",
        "emoji",
        "sender",
        "is_from_me",
        "created_at",
    ]


def test_reactions_with_bare_and_bp_targets(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    target = sim.receive(chat, ALICE, "hello")
    guid = sim.guid_of(target)
    sim.message(
        chat,
        "Liked “hello”",
        from_me=True,
        associated_message_guid=f"bp:{guid}",
        associated_message_type=2001,
    )
    sim.message(
        chat,
        "Loved “hello”",
        sender=ALICE,
        associated_message_guid=guid,
        associated_message_type=2000,
    )
    assert {r.type for r in reader.history(chat)[0].reactions} == {"like", "love"}


def test_custom_emoji_from_localized_text_without_emoji_column(tmp_path) -> None:
    sim = SimDB.create(str(tmp_path / "chat.db"), "ventura")
    chat = sim.chat([ALICE])
    target = sim.receive(chat, ALICE, "olá")
    sim.message(
        chat,
        "🫶🏽 reagiu a “olá”",
        sender=ALICE,
        associated_message_type=2006,
        associated_message_guid=f"p:0/{sim.guid_of(target)}",
    )
    with ChatDB(sim.path) as db:
        assert db.history(chat)[0].reactions[0].emoji == "🫶🏽"


def test_inline_reply_resolves_parent_text_and_sender(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE, BOB])
    root = sim.receive(chat, BOB, "root message", at=T0)
    sim.receive(chat, ALICE, "unrelated", at=T0 + 1)
    reply = sim.send(chat, "answer", at=T0 + 2, thread_originator=root)
    message = reader.history(chat)[0]
    assert message.id == reply
    assert message.thread_originator_guid == sim.guid_of(root)
    assert (message.reply_to_text, message.reply_to_sender) == ("root message", BOB)
    assert reader.history(chat)[1].reply_to_text is None  # reply_to_guid column is not a reply


def test_edit_exposes_edited_at_and_history_on_request(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    row = sim.send(chat, "teh typo", at=T0)
    sim.edit(row, "the typo", at=T0 + 30)
    plain = reader.history(chat)[0]
    assert plain.text == "the typo"
    assert plain.edited_at == "2026-05-28T20:27:10.000Z"
    assert plain.edit_history is None
    full = reader.history(chat, edit_history=True)[0]
    assert [v.text for v in full.edit_history or []] == ["teh typo", "the typo"]


def test_unsend_both_schemas_empty_text_and_retracted_at(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    row = sim.send(chat, "oops", at=T0)
    sim.unsend(row, at=T0 + 60)
    message = reader.history(chat)[0]
    assert message.text == ""
    assert message.retracted_at == "2026-05-28T20:27:40.000Z"
    assert message.edited_at is None


def test_attachments_batch_missing_and_paths(sim: SimDB, reader: ChatDB, isolated_home) -> None:
    chat = sim.chat([ALICE])
    present = SimAttachment("photo one.jpg")
    gone = SimAttachment("old.heic", mime_type="image/heic", uti="public.heic", create_file=False)
    sim.receive(chat, ALICE, "look", attachments=[present, gone])
    [message] = reader.history(chat)
    assert message.text == "\ufffc\ufffclook"
    first, second = message.attachments
    assert list(wire(first)) == [
        "filename",
        "transfer_name",
        "uti",
        "mime_type",
        "total_bytes",
        "is_sticker",
        "original_path",
        "missing",
    ]
    assert first.transfer_name == "photo one.jpg" and first.missing is False
    assert os.path.isfile(first.original_path)
    assert second.missing is True and second.mime_type == "image/heic"


def test_attachment_that_is_a_directory_is_missing(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    row = sim.receive(chat, ALICE, "", attachments=[SimAttachment("x.jpg", create_file=False)])
    (path,) = sim.conn.execute(
        "SELECT a.filename FROM attachment a JOIN message_attachment_join j"
        " ON j.attachment_id = a.ROWID WHERE j.message_id = ?",
        (row,),
    ).fetchone()
    os.makedirs(os.path.expanduser(path))
    assert reader.history(chat)[0].attachments[0].missing is True


def test_audio_message_text_is_its_transcription(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    sim.receive(
        chat,
        ALICE,
        "",
        is_audio_message=1,
        attachments=[
            SimAttachment("Audio Message.caf", mime_type="audio/x-caf", transcription="call me")
        ],
    )
    assert reader.history(chat)[0].text == "call me"


def test_group_events_and_link_previews_are_not_empty_messages(sim: SimDB, reader: ChatDB) -> None:
    group = sim.chat([ALICE, BOB])
    sim.group_event(group, "added", actor=BOB, other=CAROL, at=T0)
    sim.group_event(group, "renamed", title="Cabin", at=T0 + 1)
    sim.url_preview(group, "https://example.com/a", sender=BOB, title="A page", at=T0 + 2)
    preview, renamed, added = reader.history(group)
    assert added.group_event is not None and added.group_event.type == "added"
    assert added.group_event.handle == CAROL
    assert added.text == ""  # not something anyone typed
    assert added.group_event.description == f"{BOB} added {CAROL} to the conversation."
    assert renamed.group_event is not None and renamed.group_event.title == "Cabin"
    assert preview.url_preview is not None
    assert (preview.url_preview.url, preview.url_preview.title) == (
        "https://example.com/a",
        "A page",
    )


def test_corrupt_body_yields_empty_text_not_an_error(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    sim.receive(chat, ALICE, "fine", at=T0)
    sim.message(
        chat,
        None,
        sender=ALICE,
        at=T0 + 1,
        body=b"\x04\x0bstreamtyped\x81\xe8\x03\x84\x01@\x84\x84\x84\xff\xff",
    )
    assert [m.text for m in reader.history(chat)] == ["", "fine"]


def test_search_finds_null_text_rows_case_insensitively(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    other = sim.chat([BOB])
    target = sim.receive(chat, ALICE, "Grüße aus BERLIN", at=T0)
    sim.receive(other, BOB, "berlin again", at=T0 + 1)
    sim.react(chat, target, "love", from_me=True, at=T0 + 2)  # "Loved “Grüße aus BERLIN”"
    found = reader.search("berlin")
    assert [m.text for m in found] == ["berlin again", "Grüße aus BERLIN"]
    assert found[1].chat_id == chat
    assert [m.id for m in reader.search("GRÜSSE AUS")] == [target]  # Unicode casefold: ß = ss
    assert [m.id for m in reader.search("grüße", chat_id=chat)] == [target]
    assert reader.search("berlin", match="exact") == []
    assert [m.id for m in reader.search("  BERLIN AGAIN ", match="exact")] != []
    assert reader.search("   ") == []
    with pytest.raises(InvalidInput):
        reader.search("x", match="regex")


def test_seconds_dates_on_legacy_rows(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    sim.receive(chat, ALICE, "old", date=601_000_000)  # seconds since 2001 (2020-01-18)
    assert reader.history(chat)[0].created_at == "2020-01-18T00:26:40.000Z"


def test_history_is_batched_not_n_plus_one(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE, BOB])
    for i in range(60):
        row = sim.receive(chat, BOB, f"m{i}", attachments=[SimAttachment(f"{i}.jpg")])
        sim.react(chat, row, "like", sender=ALICE)
        sim.receive(chat, ALICE, "reply", thread_originator=row)
    statements: list[str] = []
    reader._conn.set_trace_callback(statements.append)
    messages = reader.history(chat, limit=100)
    reader._conn.set_trace_callback(None)
    assert len(messages) == 100
    assert sum(m.reactions != [] for m in messages) == 50
    assert len(statements) <= 8


def test_minimal_legacy_schema_without_optional_columns(tmp_path) -> None:
    import sqlite3

    path = str(tmp_path / "legacy.db")
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE message (ROWID INTEGER PRIMARY KEY, guid TEXT, text TEXT, handle_id INTEGER,"
        " date INTEGER, is_from_me INTEGER, service TEXT);"
        "CREATE TABLE chat (ROWID INTEGER PRIMARY KEY, guid TEXT, chat_identifier TEXT,"
        " display_name TEXT, service_name TEXT, style INTEGER, account_id TEXT,"
        " account_login TEXT, last_addressed_handle TEXT);"
        "CREATE TABLE handle (ROWID INTEGER PRIMARY KEY, id TEXT);"
        "CREATE TABLE chat_message_join (chat_id INTEGER, message_id INTEGER);"
        "CREATE TABLE chat_handle_join (chat_id INTEGER, handle_id INTEGER);"
        "CREATE TABLE attachment (ROWID INTEGER PRIMARY KEY, filename TEXT, transfer_name TEXT,"
        " uti TEXT, mime_type TEXT, total_bytes INTEGER, is_sticker INTEGER, user_info BLOB);"
        "CREATE TABLE message_attachment_join (message_id INTEGER, attachment_id INTEGER);"
        "INSERT INTO handle VALUES (1, '+15550001111');"
        "INSERT INTO chat VALUES (1, 'SMS;-;+15550001111', '+15550001111', NULL, 'SMS', 45,"
        " NULL, NULL, NULL);"
        "INSERT INTO chat_handle_join VALUES (1, 1);"
        "INSERT INTO message VALUES (1, 'G1', 'hello 2017', 1, 500000000, 0, 'SMS');"
        "INSERT INTO chat_message_join VALUES (1, 1);"
    )
    conn.commit()
    conn.close()
    with ChatDB(path) as db:
        assert db.schema.profile == "legacy"
        assert db.chats()[0].last_message_at == "2016-11-05T00:53:20.000Z"
        [message] = db.history(1)
        assert (message.text, message.sender, message.attachments) == (
            "hello 2017",
            "+15550001111",
            [],
        )
        assert db.history(1, filters=Filters.parse(start="2016-01-01T00:00:00Z"))[0].id == 1


def test_iter_texts_streams_every_row(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    for i in range(12):
        sim.receive(chat, ALICE, f"row {i}")
    assert [t for _, t in reader.iter_texts(page=5)] == [f"row {i}" for i in range(12)]
    assert reader.max_rowid() == 12


def test_reader_sees_uncheckpointed_wal_rows(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    sim.conn.execute("PRAGMA wal_autocheckpoint = 0")
    sim.receive(chat, ALICE, "still in the WAL", at=time.time())
    assert reader.history(chat)[0].text == "still in the WAL"
