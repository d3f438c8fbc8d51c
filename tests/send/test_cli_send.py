"""``imsg send`` / ``imsg react`` / ``imsg sim osascript``: stdout has the result only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from imsg.cli import main
from imsg.send.applescript import SEND_SCRIPT

from .conftest import World

ONE_SCHEMA = pytest.mark.parametrize("schema", ["tahoe"])


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_send_text_output(world: World) -> None:
    assert run("send", "--chat-id", str(world.group), "--text", "hi", "--db", world.path) == (
        0, "sent\n", "")


def test_send_json_is_one_object(world: World) -> None:
    code, out, err = run("send", "--to", "+1 555 555 0101", "--text", "hi", "--json", "--db",
                         world.path)
    [line] = out.splitlines()
    data = json.loads(line)
    assert (code, err) == (0, "")
    assert list(data) == ["status", "ok", "id", "guid", "chat_id", "service"]
    assert (data["status"], data["ok"], data["chat_id"], data["service"]) == (
        "sent", True, world.alice, "imessage")


@ONE_SCHEMA
def test_send_as_a_process_prints_only_the_result(world: World) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "imsg", "send", "--chat-identifier",
         world.db.chat_info(world.group)[1], "--text", "hi", "--json", "--verbose"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "IMSG_DB": world.path})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["chat_id"] == world.group
    assert done.stderr.startswith("imsg: confirmed row ") and "verified in" in done.stderr


@ONE_SCHEMA
@pytest.mark.parametrize(("args", "code", "message"), [
    ((), 2, "Give exactly one target"),
    (("--to", "+15555550101", "--chat-id", "1"), 2, "got to and chat_id"),
    (("--to", "John Smith"), 2, "Invalid target: 'John Smith'"),
    (("--chat-id", "1", "--text", ""), 2, "Nothing to send"),
    (("--chat-id", "999"), 3, "Chat not found: 999"),
    (("--chat-id", "1", "--file", "/nonexistent.jpg"), 15, "File not found"),
])
def test_send_errors(world: World, args: tuple[str, ...], code: int, message: str) -> None:
    extra = () if "--text" in args or "--file" in args else ("--text", "hi")
    exit_code, out, err = run("send", *args, *extra, "--db", world.path)
    assert (exit_code, out) == (code, "")
    assert err.startswith("imsg: ") and message in err


@ONE_SCHEMA
@pytest.mark.parametrize(("failure", "code"), [
    ("automation", 10), ("not-running", 11), ("unknown-chat", 12), ("ghost-row", 14)])
def test_send_failure_exit_codes(world: World, monkeypatch: pytest.MonkeyPatch, failure: str,
                                 code: int) -> None:
    monkeypatch.setenv("IMSG_SIM_FAIL", failure)
    exit_code, out, err = run("send", "--chat-id", str(world.group), "--text", "hi", "--db",
                              world.path)
    assert (exit_code, out) == (code, "") and err.startswith("imsg: ")


@ONE_SCHEMA
def test_send_bad_service_is_a_usage_error(world: World) -> None:
    code, out, err = run("send", "--to", "+15555550101", "--text", "hi", "--service", "iMessage",
                         "--db", world.path)
    assert (code, out) == (2, "") and "'iMessage' is not one of" in err


def test_react_outputs(world: World) -> None:
    assert run("react", "--chat-id", str(world.group), "-r", "love", "--db", world.path) == (
        0, f"Sent ❤️ reaction to chat {world.group}\n", "")
    code, out, _ = run("react", "--chat-id", str(world.group), "--reaction", "haha", "--json",
                       "--db", world.path)
    assert code == 0 and json.loads(out) == {"success": True, "chat_id": world.group,
                                             "reaction_type": "laugh", "reaction_emoji": "😂"}


@ONE_SCHEMA
def test_react_errors(world: World) -> None:
    code, out, err = run("react", "--chat-id", str(world.group), "-r", "🎉", "--db", world.path)
    assert (code, out) == (2, "") and "Unsupported reaction" in err


@ONE_SCHEMA
def test_sim_osascript_subcommand(world: World) -> None:
    runner = CliRunner()
    group_guid = world.db.conn.execute("SELECT guid FROM chat WHERE ROWID = ?",
                                       (world.group,)).fetchone()[0]
    done = runner.invoke(main, ["sim", "osascript", "-l", "AppleScript", "-", "chat", group_guid,
                                "", "--help", ""], input=SEND_SCRIPT)
    assert done.exit_code == 0, done.stderr
    assert world.db.text_of(world.db.conn.execute("SELECT MAX(ROWID) FROM message")
                            .fetchone()[0]) == "--help"
    refused = runner.invoke(main, ["sim", "osascript", "-l", "AppleScript", "-"],
                            input='do shell script "id"')
    assert refused.exit_code == 2 and "refusing a script" in refused.stderr


def test_every_command_has_an_example() -> None:
    for command in ("send", "react"):
        assert "Example:" in run(command, "--help")[1]
    assert "Example:" in run("sim", "osascript", "--help")[1]
