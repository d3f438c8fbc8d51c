"""Read state (``is_read``/``date_read``, ``unread_count``, ``unread_only``) and contact names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imsg.chatdb import contacts
from imsg.chatdb.models import to_json
from imsg.chatdb.reader import ChatDB
from imsg.errors import UnsupportedByDatabase
from imsg.sim.addressbook import SimAddressBook
from imsg.sim.demo import ALICE, BOB, CAROL
from imsg.sim.messages import SimAttachment, SimDB

from .drift import rename

T0 = 1_780_000_000.0
LINK = "https://example.com/a"
UNREAD = {"is_read": 0, "date_read": 0}


def test_read_state_on_inbound_messages_only(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    sim.receive(chat, ALICE, "seen", at=T0)
    sim.receive(chat, ALICE, "new", at=T0 + 1, **UNREAD)
    sim.send(chat, "mine", at=T0 + 2)
    mine, new, seen = reader.history(chat)
    assert (seen.is_read, seen.date_read) == (True, "2026-05-28T20:26:40.000Z")
    assert (new.is_read, new.date_read) == (False, None)
    assert "is_read" not in json.loads(to_json(mine)) and mine.date_read is None


def test_unread_count_counts_logical_unread_inbound_messages(sim: SimDB,
                                                             reader: ChatDB) -> None:
    chat = sim.chat([ALICE, BOB])
    target = sim.receive(chat, BOB, "read already", at=T0)
    sim.receive(chat, BOB, "unread 1", at=T0 + 1, **UNREAD)
    sim.receive(chat, ALICE, "", at=T0 + 2, attachments=[SimAttachment("a.jpg")], **UNREAD)
    sim.send(chat, "outbound rows never count", at=T0 + 3, is_read=0)
    sim.react(chat, target, "like", sender=ALICE, at=T0 + 4)  # a tapback left unread counts
    sim.conn.execute("UPDATE message SET is_read = 0 WHERE ROWID = (SELECT MAX(ROWID)"
                     " FROM message)")
    event = sim.group_event(chat, "added", actor=BOB, other=CAROL, at=T0 + 5)
    sim.conn.execute("UPDATE message SET is_read = 0 WHERE ROWID = ?", (event,))
    sim.receive(chat, BOB, f"unread link {LINK}", at=T0 + 10, **UNREAD)
    preview = sim.url_preview(chat, LINK, sender=BOB, at=T0 + 11)  # folded: one message
    sim.conn.execute("UPDATE message SET is_read = 0 WHERE ROWID = ?", (preview,))
    sim.receive(chat, ALICE, f"read link {LINK}/b", at=T0 + 20)
    read_preview = sim.url_preview(chat, f"{LINK}/b", sender=ALICE, at=T0 + 21)
    sim.conn.execute("UPDATE message SET is_read = 0 WHERE ROWID = ?", (read_preview,))
    sim.receive(chat, BOB, "no", at=T0 + 30)
    orphan = sim.url_preview(chat, "https://alone.example", sender=ALICE, at=T0 + 31)
    sim.conn.execute("UPDATE message SET is_read = 0 WHERE ROWID = ?", (orphan,))
    [found] = reader.chats()
    # unread 1, the photo, the tapback, the link (its preview folded), the lone preview
    assert found.unread_count == 5
    assert reader.unread_counts() == {chat: 5}


def test_unread_only_keeps_chats_with_unread_messages(sim: SimDB, reader: ChatDB) -> None:
    quiet = sim.chat([ALICE])
    sim.receive(quiet, ALICE, "read", at=T0 + 50)
    busy = [sim.chat([f"+1555000{i:04d}"]) for i in range(3)]
    for i, chat in enumerate(busy):
        sim.receive(chat, None, f"hello {i}", at=T0 + i, **UNREAD)
    only = reader.chats(unread_only=True)
    assert [c.id for c in only] == busy[::-1]
    assert [c.unread_count for c in only] == [1, 1, 1]
    assert [c.id for c in reader.chats(1, unread_only=True)] == [busy[-1]]
    assert reader.chats()[0].id == quiet


def test_without_the_read_state_column(tmp_path: Path, schema: str) -> None:
    sim = SimDB.create(str(tmp_path / "chat.db"), schema)
    chat = sim.chat([ALICE])
    sim.receive(chat, ALICE, "hi", **UNREAD)
    rename(sim.conn, "ALTER TABLE message RENAME COLUMN is_read TO is_read_renamed")
    sim.close()
    with ChatDB(str(tmp_path / "chat.db")) as db:
        [found] = db.chats()
        assert found.unread_count is None and "unread_count" not in json.loads(to_json(found))
        assert db.history(chat)[0].is_read is None
        with pytest.raises(UnsupportedByDatabase, match=r"no message\.is_read column") as err:
            db.chats(unread_only=True)
        assert err.value.feature == "unread" and err.value.exit_code == 30


def test_contact_names_on_messages_reactions_and_direct_chats(
        sim: SimDB, isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    book = SimAddressBook.create(str(isolated_home))
    book.add_contact(first="Alice", last="Liddell", phones=["(555) 555-0123"])
    book.add_contact(nickname="Bobby", emails=["BOB@example.com"])
    direct = sim.chat([ALICE])
    group = sim.chat([ALICE, BOB])
    sim.send(direct, "hi", at=T0)
    row = sim.receive(group, BOB, "hello all", at=T0 + 1)
    sim.react(group, row, "love", sender=ALICE, at=T0 + 2)
    sim.react(group, row, "like", from_me=True, at=T0 + 3)
    lookups: list[list[str]] = []
    names_for = contacts.ContactBook.names_for

    def counting(self: contacts.ContactBook, handles: list[str], **kw: bool) -> dict[str, str]:
        lookups.append(list(handles))
        return names_for(self, handles, **kw)

    monkeypatch.setattr(contacts.ContactBook, "names_for", counting)
    with ChatDB(sim.path) as db:
        chats = {c.id: c for c in db.chats()}
        [message] = db.history(group)
        [mine] = db.history(direct)
    assert chats[direct].contact_name == "Alice Liddell" and chats[group].contact_name is None
    assert message.sender_name == "Bobby"
    assert {r.sender_name for r in message.reactions} == {"Alice Liddell", None}
    assert mine.sender_name is None  # outbound: the sender is the other party
    # One batched look-up per read (none when no inbound handle is shown), never one per row.
    assert lookups == [[ALICE], [ALICE, BOB]]


def test_my_tapbacks_in_a_direct_chat_carry_no_sender_name(
        sim: SimDB, isolated_home: Path) -> None:
    """Messages files my tapback in a direct chat under the other party's handle: it must not
    be shown as theirs (the Swift tool names non-self senders only)."""
    SimAddressBook.create(str(isolated_home)).add_contact(first="Alice", phones=[ALICE])
    chat = sim.chat([ALICE])
    row = sim.receive(chat, ALICE, "hi", at=T0)
    sim.react(chat, row, "like", from_me=True, at=T0 + 1)
    with ChatDB(sim.path) as db:
        [message] = db.history(chat)
    [mine] = message.reactions
    assert mine.is_from_me and mine.sender == ALICE and mine.sender_name is None
    assert message.sender_name == "Alice"


def test_no_address_book_means_no_names(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    sim.receive(chat, ALICE, "hi")
    assert reader.chats()[0].contact_name is None
    assert reader.history(chat)[0].sender_name is None
