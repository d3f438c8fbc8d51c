"""Server modes: ``--read-only`` on a database that does not exist yet (errors, then working
without a restart once it does), the IMCore bridge's tools with the simulated helper, and the
command line's usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from imsg.bridge.container import Container
from imsg.cli import main
from imsg.sim.bridge import Failure, SimHelper
from imsg.sim.demo import fill_demo
from imsg.sim.messages import SimDB
from tests.mcp.conftest import start
from tests.mcp.harness import DEMO_NOW, Session, World, content_text

BRIDGE_TOOLS = {"typing", "mark_read"}


def tool_names(session: Session) -> set[str]:
    return {tool.name for tool in session.run(session.client.list_tools()).tools}


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_read_only_on_a_missing_database(world: World, tmp_path: Path) -> None:
    path = tmp_path / "later" / "chat.db"
    session = Session("--db", str(path), "--read-only", env=world.env(),
                      stderr=tmp_path / "stderr.txt")
    try:
        names = tool_names(session)
        assert "send_message" not in names and "react" not in names
        assert not names & BRIDGE_TOOLS
        result = session.call("read_messages", chat_id=1)
        assert result.is_error
        assert content_text(result) == (
            f"No Messages database at {path} (is Messages set up on this Mac? Point --db or "
            "IMSG_DB at a chat.db)")
        assert isinstance(result.structured_content, dict)
        assert result.structured_content["error"]["exit_code"] == 4
        listing = session.call("list_attachments", kind="image")
        assert listing.is_error and content_text(listing) == content_text(result)
        report = session.call("diagnose")
        assert not report.is_error
        assert content_text(report).startswith(f"FAIL  database    No Messages database at {path}")
        assert "read-only" in content_text(report)
        path.parent.mkdir()
        sim = SimDB.create(str(path))
        try:
            fill_demo(sim, now=DEMO_NOW)
        finally:
            sim.close()
        assert session.text("list_chats").startswith("3 chats")  # no restart needed
        assert session.text("list_attachments").startswith("2 attachments")
    finally:
        session.close()
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text()


def test_bridge_tools_with_the_simulated_helper(world: World, tmp_path: Path) -> None:
    container = Container(tmp_path / "container")
    container.root.mkdir()
    helper = SimHelper(world.db, container.root, interval_s=0.01, failure=Failure.parse(""),
                       without=frozenset(), exit_on_crash=False)
    stop = threading.Event()
    thread = threading.Thread(target=helper.serve, args=(stop,), daemon=True)
    thread.start()
    wait_for(container.is_ready)
    session = start(world, "--allow-send", IMSG_BRIDGE_CONTAINER=str(container.root))
    try:
        assert tool_names(session) >= BRIDGE_TOOLS
        assert session.text("typing", chat="Alice") == "Typing indicator shown in chat 1."
        events = [json.loads(line) for line in container.events.read_text().splitlines()]
        assert events[-1]["event"] == "started-typing"
        assert session.text("mark_read", chat_id=1) == "Marked chat 1 as read."
        assert session.text("get_unread") == "No unread messages."
        reacted = session.call("react", message_id=14, reaction="like")  # not the latest
        assert not reacted.is_error, content_text(reacted)
        assert isinstance(reacted.structured_content, dict)
        assert reacted.structured_content["transport"] == "bridge"
        shown = session.text("get_context", message_id=14, before=0, after=0)
        assert "    reactions: ‼️ Alice Appleseed, 🎉 Bob, 👍 me" in shown
        assert "ok    bridge      IMCore helper ready" in session.text("diagnose")
    finally:
        session.close()
        stop.set()
        thread.join(10)


def test_usage_errors() -> None:
    runner = CliRunner()

    def usage(*args: str) -> tuple[int, str]:
        result = runner.invoke(main, ["mcp", *args])
        return result.exit_code, result.output

    assert usage("--read-only", "--allow-send") == (
        2, "imsg: --read-only and --allow-send cannot be combined\n")
    assert usage("--allow-to", "+15555550123") == (
        2, "imsg: --allow-to limits sending: it needs --allow-send\n")
    code, output = usage("--allow-send", "--allow-to", "not a@target:")
    assert code == 2 and output.startswith("imsg: Invalid target: 'not a@target:'")
    code, output = usage("--help")
    assert code == 0 and '{"mcpServers": {"imessage": {"command": "imsg", "args": ["mcp"]}}}' \
        in output


def test_stdout_carries_frames_only_for_a_legacy_host(world: World) -> None:
    """A host speaking the initialize handshake, raw: every stdout line is a JSON-RPC frame,
    stdin's end ends the server with status 0, and stderr holds no traceback."""
    frames = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "host", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "read_messages", "arguments": {"chat": "Alice", "limit": 2}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
         "params": {"name": "get_attachment", "arguments": {"message_id": world.photo}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call",
         "params": {"name": "send_message", "arguments": {"to": "+15555550123", "text": "x"}}},
    ]
    server = subprocess.Popen([sys.executable, "-m", "imsg", "mcp", "--db", world.db],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=world.env())
    assert server.stdin is not None and server.stdout is not None
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(server.stdout or ()), daemon=True)
    reader.start()
    for frame in frames:
        server.stdin.write(json.dumps(frame).encode() + b"\n")
        server.stdin.flush()
    wait_for(lambda: len(lines) >= 4, timeout=30)  # answered while stdin is open
    server.stdin.close()
    assert server.wait(30) == 0
    reader.join(10)
    stderr = server.stderr.read().decode() if server.stderr else ""
    assert "Traceback" not in stderr
    answers = {frame["id"]: frame for frame in map(json.loads, lines)}
    assert sorted(answers) == [1, 2, 3, 4]
    assert answers[1]["result"]["serverInfo"]["name"] == "imsg"
    assert answers[2]["result"]["content"][0]["text"].startswith(
        "Alice Appleseed (+15555550123) [chat 1]: 2 messages")
    assert answers[3]["result"]["content"][1]["type"] == "image"
    assert answers[4]["result"]["isError"] is True
