"""``imsg send`` / ``imsg react`` / ``imsg sim osascript``: stdout has the result only."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from imsg.cli import main
from imsg.send.applescript import SEND_SCRIPT
from imsg.sim.addressbook import SimAddressBook

from .conftest import Recorder, World

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
    assert list(data) == ["status", "ok", "transport", "id", "guid", "message_id", "chat_id",
                          "chat_guid", "service"]
    assert (data["status"], data["ok"], data["transport"], data["chat_id"], data["service"]) == (
        "sent", True, "applescript", world.alice, "iMessage")
    assert data["message_id"] == data["guid"] == world.db.guid_of(data["id"])


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
    ((), 2, "imsg: Missing required option: --to\n"),
    (("--to", "+15555550101", "--chat-id", "1"), 2, "Invalid value for option: --to"),
    (("--to", "John Smith"), 2, "No contact named 'John Smith'"),
    (("--chat-id", "1", "--text", ""), 2, "Missing required option: --text or file"),
    (("--chat-id", "1", "--text", " "), 2, "only whitespace"),
    (("--chat-id", "999"), 3, "Chat not found: 999"),
    (("--chat-id", str(2**63)), 2, "Invalid value for option: --chat-id"),
    (("--to", f"chat_id:{2**63}"), 2, "Invalid chat id"),
    (("--chat-id", "1", "--file", "/nonexistent.jpg"), 15, "File not found"),
    (("--chat-id", "1", "--file", "/dev/zero"), 15, "Not a regular file"),
    (("--chat-id", "1", "--timeout", "nan"), 2, "Invalid value for option: --timeout"),
    (("--chat-id", "1", "--timeout", "inf"), 2, "Invalid value for option: --timeout"),
    (("--chat-id", "1", "--timeout", "0"), 2, "Invalid value for option: --timeout"),
    (("--to", "+15555550101", "--service", "iMessage"), 2, "Invalid service: iMessage"),
])
def test_send_errors(world: World, args: tuple[str, ...], code: int, message: str) -> None:
    extra = () if "--text" in args or "--file" in args else ("--text", "hi")
    exit_code, out, err = run("send", *args, *extra, "--db", world.path)
    assert (exit_code, out) == (code, "")
    assert err.startswith("imsg: ") and message in err


@ONE_SCHEMA
@pytest.mark.parametrize(("failure", "code"), [
    ("automation", 10), ("not-running", 11), ("unknown-chat", 12), ("ghost-row", 14),
    ("send-error", 9)])
def test_send_failure_exit_codes(world: World, monkeypatch: pytest.MonkeyPatch, failure: str,
                                 code: int) -> None:
    monkeypatch.setenv("IMSG_SIM_FAIL", failure)
    exit_code, out, err = run("send", "--chat-id", str(world.group), "--text", "hi", "--db",
                              world.path)
    assert (exit_code, out) == (code, "") and err.startswith("imsg: ")


@ONE_SCHEMA
def test_no_sms_fallback_flag(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMSG_SIM_FAIL", "no-imessage")
    base = ("send", "--to", "+15555550160", "--text", "hi", "--json", "--db", world.path)
    code, out, err = run(*base, "--no-sms-fallback")
    assert (code, out) == (12, "") and "on iMessage" in err
    code, out, _ = run(*base)
    assert code == 0 and json.loads(out)["service"] == "SMS"


@ONE_SCHEMA
def test_send_to_a_contact_name(world: World, isolated_home: Path) -> None:
    book = SimAddressBook.create(str(isolated_home))
    book.add_contact(first="Alice", last="Appleseed", phones=["555 555 0101"])
    book.add_contact(first="Twin", phones=["+15555550111"])
    book.add_contact(first="Twin", emails=["twin@example.com"])
    code, out, _ = run("send", "--to", "Alice Appleseed", "--text", "hi", "--json", "--db",
                       world.path)
    assert code == 0 and json.loads(out)["chat_id"] == world.alice
    code, out, err = run("send", "--to", "twin", "--text", "hi", "--db", world.path)
    assert (code, out) == (2, "")
    assert "ambiguous: Twin (+15555550111); Twin (twin@example.com)" in err


@ONE_SCHEMA
def test_sigterm_during_a_send_stops_osascript_and_says_the_outcome_is_unknown(
        world: World, tmp_path: Path) -> None:
    pidfile = tmp_path / "osascript.pid"
    slow = tmp_path / "slow-osascript"
    slow.write_text(f'#!/bin/sh\necho $$ > "{pidfile}"\nexec sleep 60\n')
    slow.chmod(0o755)
    process = subprocess.Popen(
        [sys.executable, "-m", "imsg", "send", "--chat-id", str(world.group), "--text", "hi"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "IMSG_DB": world.path, "IMSG_OSASCRIPT": str(slow)})
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out) == (27, "")
    assert "imsg received SIGTERM" in err and "outcome is unknown" in err
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)


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


def test_send_attachment_outputs(world: World, tmp_path: Path) -> None:
    source = tmp_path / "photo.jpg"
    source.write_bytes(b"\xff\xd8 jpeg")
    guid = world.db.conn.execute("SELECT guid FROM chat WHERE ROWID = ?",
                                 (world.group,)).fetchone()[0]
    code, out, err = run("send-attachment", "--chat", guid, "--file", str(source),
                         "--transport", "auto", "--json", "--db", world.path)
    assert (code, err) == (0, "")
    [line] = out.splitlines()
    data = json.loads(line)
    assert list(data)[:3] == ["success", "status", "ok"]
    assert (data["success"], data["chat_id"], data["chat_guid"]) == (True, world.group, guid)
    attachments = world.db.conn.execute(
        "SELECT a.transfer_name FROM attachment a JOIN message_attachment_join j"
        " ON j.attachment_id = a.ROWID WHERE j.message_id = ?", (data["id"],)).fetchall()
    assert attachments == [("photo.jpg",)]
    code, out, _ = run("send-attachment", "--chat-id", str(world.alice), "--file", str(source),
                       "--transport", "applescript", "--db", world.path)
    assert code == 0 and re.fullmatch(r"send-attachment: sent \(guid=[0-9A-F-]+\)\n", out)


@ONE_SCHEMA
@pytest.mark.parametrize(("args", "code", "message"), [
    (("--file", "x"), 2, "Missing required option: --chat"),
    (("--chat", "g", "--chat-id", "1", "--file", "x"), 2, "not both"),
    (("--chat-id", "1"), 2, "Missing required option: --file"),
    (("--chat-id", "1", "--file", "x", "--transport", "bogus"), 2, "--transport"),
    (("--chat-id", "1", "--file", "x", "--audio"), 2, "--audio requires bridge transport"),
    (("--chat-id", "1", "--file", "x", "--reply-to", "G"), 2, "reply_to requires bridge"),
    (("--chat-id", "999", "--file", "/etc/hostname"), 3, "Chat not found: 999"),
    (("--chat-id", "1", "--file", "/nonexistent.jpg"), 15, "File not found"),
])
def test_send_attachment_errors(world: World, recorder: Recorder, args: tuple[str, ...],
                                code: int, message: str) -> None:
    exit_code, out, err = run("send-attachment", *args, "--db", world.path)
    assert (exit_code, out) == (code, "") and message in err
    assert not recorder.ran


@ONE_SCHEMA
def test_send_attachment_json_failure_object(world: World, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "photo.jpg"
    source.write_bytes(b"x")
    monkeypatch.setenv("IMSG_SIM_FAIL", "send-error")
    code, out, err = run("send-attachment", "--chat-id", str(world.group), "--file",
                         str(source), "--json", "--db", world.path)
    data = json.loads(out.splitlines()[-1])
    assert code == 9 and err.startswith("imsg: AppleScript failed")
    assert (data["success"], data["retry_safe"], data["disposition"], data["operation"]) == (
        False, False, "may_have_completed", "send")
    assert data["error"].startswith("AppleScript failed")
    code, out, _ = run("send-attachment", "--chat-id", "999", "--file", str(source), "--json",
                       "--db", world.path)
    assert code == 3 and json.loads(out) == {"success": False, "error": "Chat not found: 999"}


def test_send_attachment_help_exits_0() -> None:
    code, out, _ = run("send-attachment", "--help")
    assert code == 0 and "--transport [auto|dylib|applescript]" in out


def test_every_command_has_an_example() -> None:
    for command in ("send", "send-attachment", "react"):
        assert "Example:" in run(command, "--help")[1]
    assert "Example:" in run("sim", "osascript", "--help")[1]
