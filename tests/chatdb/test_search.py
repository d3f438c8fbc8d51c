"""Search: what history shows is what search matches, once per message, literally."""

from __future__ import annotations

from imsg.chatdb.reader import ChatDB
from imsg.sim.demo import ALICE, BOB
from imsg.sim.messages import SimAttachment, SimDB

T0 = 1_780_000_000.0


def test_voice_messages_are_found_by_their_transcript(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    note = sim.receive(chat, ALICE, "", is_audio_message=1, at=T0, attachments=[
        SimAttachment("Audio Message.caf", mime_type="audio/x-caf",
                      transcription="Bring the Snacks please")])
    [found] = reader.search("the snacks")
    assert found.id == note and found.text == "Bring the Snacks please"
    assert found.attachments == []  # search results never carry attachments
    assert [m.id for m in reader.search("bring the snacks please", match="exact")] == [note]


def test_a_message_in_two_chats_comes_back_once_in_the_lowest(sim: SimDB,
                                                              reader: ChatDB) -> None:
    first = sim.chat([ALICE])
    second = sim.chat([ALICE, BOB])
    row = sim.receive(second, ALICE, "shared words", at=T0)
    sim.join(first, row)
    [found] = reader.search("shared")
    assert (found.id, found.chat_id) == (row, first)
    [scoped] = reader.search("shared", chat_id=second)
    assert scoped.chat_id == second and scoped.is_group


def test_wildcards_are_literal_and_exact_is_the_whole_text(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    texts = ["100% sure", "1000 sure", "a_b", "axb", "back\\slash", "backslash", "Exact Text",
             "exact text, and more"]
    rows = {text: sim.receive(chat, ALICE, text, at=T0 + i) for i, text in enumerate(texts)}
    assert [m.id for m in reader.search("0%")] == [rows["100% sure"]]
    assert [m.id for m in reader.search("a_b")] == [rows["a_b"]]
    assert [m.id for m in reader.search("k\\s")] == [rows["back\\slash"]]
    assert [m.id for m in reader.search(" EXACT TEXT ", match="exact")] == [rows["Exact Text"]]
    assert len(reader.search("exact text")) == 2


def test_limit_rowids_and_unjoined_rows(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    rows = [sim.receive(chat, ALICE, f"needle {i}", at=T0 + i) for i in range(5)]
    sim.receive(chat, ALICE, "needle unjoined", at=T0 + 9, join=False)
    assert [m.id for m in reader.search("needle", limit=3)] == rows[::-1][:3]
    assert [m.id for m in reader.search("needle", rowids=rows[:2])] == rows[1::-1]


def test_group_event_sentences_are_not_searchable_text(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE, BOB])
    sim.group_event(chat, "renamed", title="Cabin", at=T0)
    assert reader.search("named the conversation") == []


def test_a_row_of_invalid_utf8_never_fails_a_search(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat(["+15555550123"])
    sim.message(chat, None, text_column=False, body=None)
    bad = sim.conn.execute("SELECT MAX(ROWID) FROM message").fetchone()[0]
    sim.conn.execute("UPDATE message SET text = CAST(X'6869ff' AS TEXT) WHERE ROWID = ?",
                     (bad,))
    good = sim.receive(chat, None, "hi there")
    assert [m.id for m in reader.search("hi")] == [good, bad]
    assert reader.search("hi\ufffd")[0].text == "hi\ufffd"


def test_a_join_row_holding_text_does_not_break_a_read(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat(["+15555550123"])
    odd = sim.receive(chat, None, "filed oddly", join=False)
    sim.conn.execute("INSERT INTO chat_message_join (chat_id, message_id) VALUES ('x', ?)",
                     (odd,))
    normal = sim.receive(chat, None, "filed well")
    assert [m.id for m in reader.search("filed")] == [normal]
