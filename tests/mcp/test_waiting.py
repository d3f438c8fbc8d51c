"""``wait_for_message`` over stdio: woken by ``imsg sim receive`` in another process, timing
out cleanly, resuming from its cursor, and never blocking the other tools while it waits."""

from __future__ import annotations

import subprocess
import sys

from imsg.sim.demo import ALICE, BOB
from imsg.sim.messages import SimDB
from tests.mcp.harness import Session, World, content_text


def receive(world: World, sender: str, text: str, *, chat_id: int | None = None) -> int:
    args = [sys.executable, "-m", "imsg", "sim", "receive", world.db, "--from", sender,
            "--text", text]
    if chat_id is not None:
        args += ["--chat-id", str(chat_id)]
    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=30)
    return int(done.stdout)


def cursor_now(session: Session) -> int:
    result = session.call("wait_for_message", timeout_s=0.2)
    assert not result.is_error, content_text(result)
    assert isinstance(result.structured_content, dict)
    return int(result.structured_content["cursor"])


def test_times_out_cleanly_with_a_cursor(session: Session) -> None:
    result = session.call("wait_for_message", chat="Alice", timeout_s=0.3)
    assert not result.is_error
    assert result.structured_content == {"message": None, "cursor": 22, "timed_out": True}
    assert content_text(result) == (
        "No new message in Alice Appleseed (+15555550123) [chat 1] within 0.3s. To keep waiting "
        "without missing any, call wait_for_message again with since=22.")


def test_woken_by_sim_receive_while_other_tools_answer(session: Session, world: World) -> None:
    since = cursor_now(session)
    waiting = session.start(session.client.call_tool(
        "wait_for_message", {"chat": "Alice", "since": since, "timeout_s": 30}))
    assert content_text(session.call("list_chats")).startswith("3 chats")
    assert not waiting.done()  # the wait blocks nothing else
    rowid = receive(world, ALICE, "on my way")
    result = waiting.result(30)
    assert not result.is_error, content_text(result)
    assert isinstance(result.structured_content, dict)
    assert result.structured_content["message"]["id"] == rowid
    assert result.structured_content["cursor"] == rowid
    lines = content_text(result).splitlines()
    assert lines[0] == (f"New message in Alice Appleseed (+15555550123) [chat 1] (cursor {rowid};"
                        f" pass since={rowid} to wait for the next one):")
    assert lines[2].startswith(f"#{rowid} ") and lines[2].endswith(" Alice Appleseed: on my way")


def test_filters_and_resumes_without_missing_anything(session: Session, world: World) -> None:
    since = cursor_now(session)
    sim = SimDB(world.db)
    try:
        mine = sim.send(world.chats["alice"], "sent from my phone")
        elsewhere = sim.receive(world.chats["trip"], BOB, "in the group")
        wanted = sim.receive(world.chats["alice"], ALICE, "first")
        later = sim.receive(world.chats["alice"], ALICE, "second")
    finally:
        sim.close()

    def waited(**arguments: object) -> dict[str, object]:
        result = session.call("wait_for_message", timeout_s=10, **arguments)
        assert not result.is_error, content_text(result)
        assert isinstance(result.structured_content, dict)
        return result.structured_content

    first = waited(chat_id=world.chats["alice"], since=since)
    assert first["message"]["id"] == wanted  # type: ignore[index]
    second = waited(chat_id=world.chats["alice"], since=first["cursor"])
    assert second["message"]["id"] == later  # type: ignore[index]
    assert waited(since=since)["message"]["id"] == elsewhere  # type: ignore[index]
    assert waited(since=since, include_mine=True)["message"]["id"] == mine  # type: ignore[index]
    assert waited(since=since, sender="me")["message"]["id"] == mine  # type: ignore[index]
    assert waited(since=since, sender="Bob")["message"]["id"] == elsewhere  # type: ignore[index]


def test_wait_errors(session: Session) -> None:
    unknown = session.call("wait_for_message", chat_id=77, timeout_s=1)
    assert unknown.is_error and content_text(unknown) == "Chat not found: 77"
    nobody = session.call("wait_for_message", chat_id=1, sender="Zed", timeout_s=1)
    assert nobody.is_error and content_text(nobody) == "No one matches 'Zed' in chat 1"
