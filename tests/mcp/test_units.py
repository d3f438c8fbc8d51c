"""The pure parts, in process: matching chats and people, times, the compact format, the send
policy and how errors read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from imsg.chatdb.models import Attachment, Message, Reaction
from imsg.chatdb.reader import ChatDB
from imsg.errors import AutomationDenied, ChatNotFound, InvalidInput, SendNotAllowed
from imsg.mcp import formatting as fmt
from imsg.mcp.answers import error_result
from imsg.mcp.finding import find_chats, handles_named, resolve_chat
from imsg.mcp.sending import Policy
from imsg.mcp.when import parse_when
from imsg.send.targets import Target
from imsg.sim.demo import ALICE, BOB, CAROL
from tests.mcp.harness import World

NOW = int(datetime(2026, 5, 16, 12, 0, tzinfo=UTC).timestamp()) * 1_000_000_000


@pytest.fixture(scope="module")
def db(world: World) -> Iterator[ChatDB]:
    import os

    previous = os.environ.get("IMSG_ADDRESSBOOK_DIR")
    os.environ["IMSG_ADDRESSBOOK_DIR"] = world.addressbook
    with ChatDB(world.db) as opened:
        yield opened
    if previous is None:
        del os.environ["IMSG_ADDRESSBOOK_DIR"]
    else:
        os.environ["IMSG_ADDRESSBOOK_DIR"] = previous


def ranked(db: ChatDB, query: str) -> list[tuple[int, float]]:
    return [(f.chat.id, round(f.score, 1)) for f in find_chats(db, query, 5, {})]


def test_chat_scores(db: ChatDB, world: World) -> None:
    alice, sms, trip = world.chats["alice"], world.chats["sms"], world.chats["trip"]
    assert ranked(db, "Alice Appleseed") == [(alice, 100.0), (trip, 70.0)]
    assert ranked(db, "alice") == [(alice, 85.0), (trip, 59.5)]
    assert ranked(db, "appleseed alice")[0] == (alice, 85.0)  # word order does not matter
    assert ranked(db, "lice") == [(alice, 75.0), (trip, 52.5)]
    assert ranked(db, "Alcie")[0][0] == alice
    assert ranked(db, "+1 (555) 555-0123") == [(alice, 100.0), (trip, 90.0)]
    assert ranked(db, "5550188") == [(sms, 60.0)]
    assert ranked(db, "Weekend Trip") == [(trip, 100.0)]
    assert ranked(db, "alice & bob") == [(trip, 64.5)]  # the weakest part, +5: exactly them
    assert ranked(db, "Bob and Carol") == []
    with pytest.raises(InvalidInput):
        find_chats(db, " , ", 5, {})
    with pytest.raises(ChatNotFound, match="Chat not found: Zed"):
        resolve_chat(db, "Zed", {})
    chat, others = resolve_chat(db, "Alice", {})
    assert chat.id == alice and others == []  # the group is 25 points behind


def test_people_by_name_or_handle() -> None:
    names = {ALICE: "Alice Appleseed", BOB: "Bob", CAROL: "Carol Chen"}
    pool = [ALICE, BOB, CAROL]
    assert handles_named("alice", pool, names) == [ALICE]
    assert handles_named("(555) 555-0188", pool, names) == [CAROL]
    assert handles_named("BOB@example.com", pool, names) == [BOB]
    assert handles_named("Chen", pool, names) == [CAROL]
    assert handles_named("Dave", pool, names) == []


def test_times() -> None:
    hour = 3600 * 1_000_000_000
    assert parse_when("2h", NOW) == NOW - 2 * hour
    assert parse_when("3d", NOW) == NOW - 72 * hour
    assert parse_when("1w", NOW) == NOW - 168 * hour
    assert parse_when("now", NOW) == NOW
    assert parse_when("2026-05-16T10:00:00Z") == NOW - 2 * hour
    assert parse_when("2026-05-16T12:00:00+02:00") == NOW - 2 * hour
    local = datetime(2026, 5, 16).astimezone()
    assert parse_when("2026-05-16") == int(local.timestamp()) * 1_000_000_000
    midnight = datetime.fromtimestamp(NOW / 1e9).astimezone().replace(hour=0, minute=0,
                                                                       second=0)
    assert parse_when("today", NOW) == int(midnight.timestamp()) * 1_000_000_000
    assert parse_when("yesterday", NOW) == (int(midnight.timestamp()) - 86_400) * 1_000_000_000
    for bad in ("soon", "2026-13-01", "5 fortnights", ""):
        with pytest.raises(InvalidInput, match="Invalid time"):
            parse_when(bad, NOW)


def message(**fields: object) -> Message:
    base: dict[str, object] = dict(
        id=7, chat_id=1, guid="G", sender=ALICE, is_from_me=False, text="hi",
        created_at="2026-05-16T15:24:36.123Z", attachments=[], reactions=[],
        chat_identifier=ALICE, chat_guid="any;-;" + ALICE, chat_name="", participants=[ALICE],
        is_group=False)
    base.update(fields)
    return Message(**base)  # type: ignore[arg-type]


def test_message_lines() -> None:
    names = {ALICE: "Alice Appleseed", BOB: "Bob"}
    assert fmt.message_lines(message(), names, stamp="15:24") == ["#7 15:24 Alice Appleseed: hi"]
    assert fmt.message_lines(message(sender_name="Ally"), names, stamp="t") == ["#7 t Ally: hi"]
    mine = message(is_from_me=True, text="multi\nline", reply_to_text="a" * 80,
                   reply_to_sender=BOB, edited_at="2026-05-16T15:25:00.000Z")
    assert fmt.message_lines(mine, names, stamp="t") == [
        "#7 t me: multi", "    line (edited)", f"    ↳ reply to Bob: {'a' * 59}…"]
    answer = message(reply_to_text="mine", reply_to_sender="Me@iCloud.com",
                     destination_caller_id="me@icloud.com")
    assert fmt.message_lines(answer, names, stamp="t")[1] == "    ↳ reply to me: mine"
    photo = Attachment(filename="/x/IMG_1.HEIC", transfer_name="IMG_1.HEIC", uti="public.heic",
                       mime_type="image/heic", total_bytes=2_500_000, is_sticker=False,
                       original_path="/x/IMG_1.HEIC", missing=True)
    liked = Reaction(id=9, type="like", emoji="👍", sender=BOB, is_from_me=False,
                     created_at="2026-05-16T15:30:00.000Z")
    shown = fmt.message_lines(message(text="\ufffc", attachments=[photo], reactions=[liked]),
                              names, stamp="t")
    assert shown == ["#7 t Alice Appleseed: [0: image IMG_1.HEIC, 2.4 MB, not downloaded]",
                     "    reactions: 👍 Bob"]
    assert fmt.message_lines(message(retracted_at="2026-05-16T15:25:00.000Z", text=""),
                             names, stamp="t") == ["#7 t Alice Appleseed: (unsent)"]


def test_day_headers_and_labels() -> None:
    today = datetime(2026, 5, 16).date()
    assert fmt.day_label(today, today) == "Sat 2026-05-16 (today)"
    assert fmt.day_label(date(2026, 5, 15), today) == "Fri 2026-05-15 (yesterday)"
    assert fmt.day_label(date(2026, 5, 1), today) == "Fri 2026-05-01"
    assert fmt.size_label(512) == "512 B" and fmt.size_label(1024) == "1 KB"
    assert fmt.clip("a  b\nc", 10) == "a b c" and fmt.clip("abcdef", 4) == "abc…"


def test_policy(db: ChatDB, world: World) -> None:
    trip = Target("chat_id", str(world.chats["trip"]))
    with pytest.raises(SendNotAllowed, match="Sending is off"):
        Policy().check(db, Target("handle", ALICE), "send to")
    Policy(allow_send=True).check(db, trip, "send to")
    by_handle = Policy.parse(allow_send=True, read_only=False, allow_to=["(555) 555-0123"])
    by_handle.check(db, Target("handle", ALICE), "send to")
    by_handle.check(db, Target("chat_id", str(world.chats["alice"])), "send to")  # its chat
    with pytest.raises(SendNotAllowed, match="Not allowed to send to chat_id:3"):
        by_handle.check(db, trip, "send to")  # a group with Alice in it is not Alice
    by_chat = Policy.parse(allow_send=True, read_only=False,
                           allow_to=[f"chat_id:{world.chats['alice']}"])
    by_chat.check(db, Target("handle", ALICE), "send to")  # the direct chat's own handle
    with pytest.raises(SendNotAllowed):
        by_chat.check(db, Target("handle", CAROL), "send to")
    by_guid = Policy.parse(allow_send=True, read_only=False,
                           allow_to=[f"chat_guid:iMessage;+;{db.chat_ref(3).identifier}"])
    by_guid.check(db, trip, "react in")
    with pytest.raises(InvalidInput, match="No contact named 'Zed'"):
        Policy.parse(allow_send=True, read_only=False, allow_to=["Zed"])


def test_send_errors_read_as_the_cli_says_plus_what_to_do() -> None:
    result = error_result(AutomationDenied("Not authorized to send Apple events to Messages."))
    assert result.is_error
    assert result.content[0].text == (  # type: ignore[union-attr]
        "Not authorized to send Apple events to Messages. Nothing was sent; it is safe to "
        "try again.")
    unknown = error_result(AutomationDenied("x", disposition="may_have_completed"))
    assert unknown.content[0].text.endswith(  # type: ignore[union-attr]
        "It may have been sent: check with read_messages before sending it again.")
