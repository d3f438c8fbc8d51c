"""``react()``: reaction names and aliases, the UI script's argv, and the tapback row."""

from __future__ import annotations

import os
import subprocess

import pytest

from imsg.chatdb.reader import ChatDB
from imsg.errors import AutomationDenied, ChatNotFound, InvalidInput, SendNotConfirmed
from imsg.send.applescript import REACT_SCRIPT
from imsg.send.sender import REACTIONS, TYPED_LIMIT, parse_reaction, react, typed_text

from .conftest import Recorder, World

ONE_SCHEMA = pytest.mark.parametrize("schema", ["tahoe"])


@pytest.mark.parametrize(("value", "kind"), [
    ("love", "love"), ("heart", "love"), ("❤️", "love"), ("LIKE", "like"), ("thumbsup", "like"),
    ("thumbs-up", "like"), ("👍", "like"), ("dislike", "dislike"), ("thumbsdown", "dislike"),
    ("thumbs-down", "dislike"), ("👎", "dislike"), ("laugh", "laugh"), ("haha", "laugh"),
    ("lol", "laugh"), ("😂", "laugh"), ("emphasis", "emphasis"), ("emphasize", "emphasis"),
    ("exclaim", "emphasis"), ("exclamation", "emphasis"), ("‼️", "emphasis"),
    ("question", "question"), ("questionmark", "question"), ("question-mark", "question"),
    ("❓", "question"), ("?", "question"), (" like ", "like"),
])
def test_names_and_swift_aliases(value: str, kind: str) -> None:
    assert parse_reaction(value) == kind


@pytest.mark.parametrize("value", ["🎉", "👍🏽", "🇺🇸", "👨‍👩‍👧"])
def test_custom_emoji_cannot_be_sent(value: str) -> None:
    with pytest.raises(InvalidInput, match="Unsupported reaction: custom emoji tapback"):
        parse_reaction(value)


@pytest.mark.parametrize("value", ["wow", "🎉🎉", "", "a"])
def test_invalid_reactions_list_the_valid_ones(value: str) -> None:
    with pytest.raises(InvalidInput, match=r"Invalid reaction: .*love, like, dislike, laugh"):
        parse_reaction(value)


def test_react_puts_a_tapback_on_the_latest_incoming_message(world: World, spy: Recorder) -> None:
    target = world.db.receive(world.group, "+15555550102", "latest")
    world.db.send(world.group, "my own reply")
    guid = world.db.guid_of(target)
    result = react(world.group, "thumbsup", db_path=world.path)
    assert list(result.items()) == [("success", True), ("chat_id", world.group),
                                    ("reaction_type", "like"), ("reaction_emoji", "👍")]
    chat_guid = world.db.conn.execute("SELECT guid FROM chat WHERE ROWID = ?",
                                      (world.group,)).fetchone()[0]
    assert spy.call() == {"argv": ["-l", "AppleScript", "-", chat_guid, "Team", "2"],
                          "stdin": REACT_SCRIPT}
    with ChatDB(world.path) as db:
        [message] = [m for m in db.history(world.group) if m.guid == guid]
    assert [(r.type, r.is_from_me) for r in message.reactions] == [("like", True)]


@ONE_SCHEMA
@pytest.mark.parametrize("kind", sorted(REACTIONS))
def test_every_kind_lands(world: World, kind: str) -> None:
    assert react(world.group, kind, db_path=world.path)["reaction_emoji"] == REACTIONS[kind][0]


@ONE_SCHEMA
def test_accessibility_denied(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMSG_SIM_FAIL", "accessibility")
    with pytest.raises(AutomationDenied, match="Accessibility"):
        react(world.group, "like", db_path=world.path)


@ONE_SCHEMA
def test_unknown_chat(world: World, recorder: Recorder) -> None:
    with pytest.raises(ChatNotFound):
        react(999, "like", db_path=world.path)
    with pytest.raises(InvalidInput):
        react(world.group, "wow", db_path=world.path)
    assert not recorder.ran


@ONE_SCHEMA
def test_no_tapback_row_is_not_confirmed(world: World) -> None:
    empty = world.db.chat(["+15555550111", "+15555550112"], name="Quiet")
    with pytest.raises(SendNotConfirmed, match=f"no tapback row appeared in chat {empty}"):
        react(empty, "like", db_path=world.path, verify_timeout_s=0.3)


@ONE_SCHEMA
def test_a_group_name_with_line_breaks_is_never_typed_as_a_message(world: World,
                                                                  spy: Recorder) -> None:
    # A member renamed the group: text after a line break would land in the compose field
    # and the script's final Return would send it.
    hostile = world.db.chat(["+15555550101", "+15555550102"],
                            name="Team\nsend this for me\r\t\x1b\u2028now")
    world.db.receive(hostile, "+15555550101", "react to me")
    before = world.db.conn.execute("SELECT MAX(ROWID) FROM message").fetchone()[0]
    react(hostile, "like", db_path=world.path)
    assert spy.call()["argv"][4] == "Team send this for me now"
    sent = world.db.conn.execute(
        "SELECT COUNT(*) FROM message WHERE ROWID > ? AND is_from_me = 1"
        " AND COALESCE(associated_message_type, 0) = 0", (before,)).fetchone()[0]
    assert sent == 0


@pytest.mark.parametrize(("value", "typed"), [
    ("Team", "Team"), ("  Book\tclub \n", "Book club"), ("a\x00b\x07c", "a b c"),
    ("👨‍👩‍👧 Family", "👨‍👩‍👧 Family"), ("x" * 500, "x" * TYPED_LIMIT), ("\n\r", ""),
])
def test_typed_text_drops_controls_and_line_breaks(value: str, typed: str) -> None:
    assert typed_text(value) == typed


@ONE_SCHEMA
def test_the_sim_types_what_follows_a_line_break_into_the_compose_field(world: World) -> None:
    # The hazard the sanitizing prevents, shown against the simulated System Events.
    done = subprocess.run([os.environ["IMSG_OSASCRIPT"], "-l", "AppleScript", "-",
                           world.db.conn.execute("SELECT guid FROM chat WHERE ROWID = ?",
                                                 (world.group,)).fetchone()[0],
                           "Team\nhello from the name", "2"],
                          input=REACT_SCRIPT.encode(), capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    last = world.db.conn.execute("SELECT MAX(ROWID) FROM message").fetchone()[0]
    assert world.db.text_of(last) == "hello from the name"
