"""The acting tools over stdio: refused without ``--allow-send`` and outside ``--allow-to``,
sending through the simulated Messages (``imsg-sim-osascript``) when allowed, logged on
stderr, and the send-then-wait flow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imsg.chatdb.reader import ChatDB
from imsg.sim.demo import ALICE, CAROL
from tests.mcp.conftest import start
from tests.mcp.harness import Session, World, content_text
from tests.mcp.test_waiting import receive


@pytest.fixture(scope="module")
def allowed(world: World) -> Iterator[Session]:
    server = start(world, "--allow-send", "--allow-to", ALICE, "chat_id:3")
    yield server
    server.close()


def newest(world: World) -> int:
    with ChatDB(world.db) as db:
        return db.max_rowid()


def refusal(session: Session, tool: str, **arguments: object) -> str:
    result = session.call(tool, **arguments)
    assert result.is_error
    assert isinstance(result.structured_content, dict)
    assert result.structured_content["error"]["type"] == "SendNotAllowed"
    return content_text(result)


def test_sending_is_refused_without_allow_send(session: Session, world: World) -> None:
    before = newest(world)
    text = refusal(session, "send_message", to=ALICE, text="hi")
    assert text.startswith("Sending is off: this imsg mcp server was started without "
                           "--allow-send")
    assert refusal(session, "send_message", to="nobody we know", text="hi") == text
    assert refusal(session, "react", message_id=world.unread[1], reaction="like") == text
    assert newest(world) == before
    assert "send to" not in session.stderr()


def test_send_is_verified_logged_and_readable(allowed: Session, world: World) -> None:
    result = allowed.call("send_message", to="Alice Appleseed", text="hello from mcp")
    assert not result.is_error, content_text(result)
    sent = result.structured_content
    assert isinstance(sent, dict)
    assert sent["ok"] is True and sent["chat_id"] == world.chats["alice"]
    assert content_text(result) == (
        f"Sent in chat 1 as #{sent['id']} (iMessage). To wait for the answer: "
        f"wait_for_message(chat_id=1, since={sent['id']}).")
    assert f"#{sent['id']} " in allowed.text("read_messages", chat_id=1, limit=1)
    log = allowed.stderr()
    assert f"imsg mcp: send to handle:{ALICE} (14 characters of text)" in log
    assert f"imsg mcp: sent to handle:{ALICE} as message {sent['id']} in chat 1" in log
    group = allowed.call("send_message", chat_id=world.chats["trip"], text="to the group")
    assert not group.is_error, content_text(group)


def test_allow_to_limits_recipients(allowed: Session, world: World) -> None:
    before = newest(world)
    assert refusal(allowed, "send_message", to=CAROL, text="hi") == (
        f"Not allowed to send to {CAROL}: this server may only act for {ALICE}, chat_id:3 "
        "(--allow-to)")
    assert refusal(allowed, "send_message", chat_id=world.chats["sms"], text="hi").startswith(
        "Not allowed to send to chat_id:2:")
    assert refusal(allowed, "send_message", to="Carol Chen", text="hi").startswith(
        f"Not allowed to send to {CAROL}:")
    assert newest(world) == before


def test_unknown_names_get_suggestions(allowed: Session) -> None:
    result = allowed.call("send_message", to="Alise", text="hi")
    assert result.is_error
    assert content_text(result) == (
        "No contact named 'Alise' (give a phone number, an email or a chat_id instead). Did you "
        f"mean: Alice Appleseed ({ALICE}): to=\"{ALICE}\"?")


def test_send_then_wait_for_the_answer(allowed: Session, world: World) -> None:
    sent = allowed.call("send_message", to=ALICE, text="dinner at 8?").structured_content
    assert isinstance(sent, dict)
    answer = receive(world, ALICE, "sounds good")  # arrives before the wait starts
    result = allowed.call("wait_for_message", chat_id=1, since=sent["id"], timeout_s=10)
    assert isinstance(result.structured_content, dict)
    assert result.structured_content["message"]["id"] == answer
    assert result.structured_content["message"]["text"] == "sounds good"


def test_react_on_the_latest_message_only(allowed: Session, world: World) -> None:
    latest = receive(world, ALICE, "react to me")
    result = allowed.call("react", message_id=latest, reaction="laugh")
    assert not result.is_error, content_text(result)
    assert content_text(result) == "Reacted laugh in chat 1."
    assert "    reactions: 😂 me" in allowed.text("read_messages", chat_id=1, limit=1)
    older = allowed.call("react", message_id=2, reaction="like")
    assert older.is_error
    assert content_text(older).startswith("Without the IMCore bridge only the latest message")
    assert "tapback laugh on message" in allowed.stderr()


def test_send_failures_say_whether_to_retry(world: World) -> None:
    failing = start(world, "--allow-send", IMSG_SIM_FAIL="automation")
    try:
        result = failing.call("send_message", to=ALICE, text="hi")
    finally:
        failing.close()
    assert result.is_error
    assert content_text(result).endswith("Nothing was sent; it is safe to try again.")
    assert isinstance(result.structured_content, dict)
    error = result.structured_content["error"]
    assert error["type"] == "AutomationDenied" and error["exit_code"] == 10
    assert error["delivery"]["retry_safe"] is True
    assert error["delivery"]["disposition"] == "not_started"
