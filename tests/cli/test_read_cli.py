"""The reading commands added for the Swift 0.15 drop-in: chats --unread-only, stats, scheduled
list, completions, --convert-attachments, contact names and event sentences in text output."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from imsg.cli import COMMANDS, main
from imsg.sim.addressbook import SimAddressBook
from imsg.sim.demo import ALICE, BOB, CAROL, fill_demo
from imsg.sim.messages import SimAttachment, SimDB
from tests.chatdb.drift import rename


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def lines(result: Result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_chats_unread_only_and_contact_names(sim: SimDB, isolated_home: Path) -> None:
    SimAddressBook.create(str(isolated_home)).add_contact(
        first="Alice", last="Liddell", phones=["+1 555 555 0123"])
    alice = sim.chat([ALICE])
    carol = sim.chat([CAROL], service="SMS")
    sim.receive(alice, ALICE, "unread", is_read=0)
    sim.receive(carol, CAROL, "read")
    [only] = lines(run("chats", "--unread-only", "--json", "--db", sim.path))
    assert (only["id"], only["unread_count"], only["contact_name"]) == (alice, 1, "Alice Liddell")
    text = run("chats", "--db", sim.path).stdout.splitlines()
    assert text[0] == f"[{carol}] {CAROL} ({CAROL}) last={text[0].rsplit('=', 1)[1]}"
    assert text[1].startswith(f"[{alice}] Alice Liddell ({ALICE}) last=")
    history = run("history", "--chat-id", str(alice), "--db", sim.path).stdout
    assert "[recv] Alice Liddell: unread" in history


def test_unread_only_on_a_database_without_read_state(sim: SimDB) -> None:
    rename(sim.conn, "ALTER TABLE message RENAME COLUMN is_read TO is_read_gone")
    result = run("chats", "--unread-only", "--db", sim.path)
    assert result.exit_code == 30
    assert result.stderr.strip() == ("imsg: Unread filtering is unavailable because this"
                                     " Messages database has no message.is_read column")


def test_group_events_keep_their_sentence_in_text_output(sim: SimDB) -> None:
    ids = fill_demo(sim)
    out = run("history", "--chat-id", str(ids["trip"]), "--db", sim.path).stdout
    assert f"[event] You added {CAROL} to the conversation." in out
    [event] = [m for m in lines(run("history", "--chat-id", str(ids["trip"]), "--json",
                                    "--db", sim.path)) if "group_event" in m][-1:]
    assert event["text"] == "" and event["group_event"]["description"].startswith("You named")


def test_stats_text_and_json(sim: SimDB) -> None:
    ids = fill_demo(sim)
    text = run("stats", "--time-zone", "UTC", "--media", "--db", sim.path).stdout.splitlines()
    assert text[0] == "Messages: 15 (7 sent, 8 received)" and text[1] == "Time zone: UTC"
    assert "By chat:" in text and "  iMessage: 13" in text and "Media by chat:" in text
    [report] = lines(run("stats", "--chat-id", str(ids["sms"]), "--json", "--db", sim.path))
    assert report["total_messages"] == 2 and "media" not in report
    bad = run("stats", "--time-zone", "Nowhere/Else", "--db", sim.path)
    assert bad.exit_code == 2 and "Invalid time zone: Nowhere/Else" in bad.stderr
    missing = run("stats", "--chat-id", "99", "--db", sim.path)
    assert missing.exit_code == 3 and "Chat not found: 99" in missing.stderr


def test_scheduled_list(tmp_path: Path) -> None:
    sim = SimDB.create(str(tmp_path / "chat.db"), "tahoe")
    chat = sim.chat([ALICE])
    row = sim.send(chat, "see you at 8", at=time.time() + 3600, schedule_type=2,
                   schedule_state=1)
    guid = sim.guid_of(row)
    [item] = lines(run("scheduled", "list", "--json", "--db", sim.path))
    assert (item["id"], item["guid"], item["text"]) == (row, guid, "see you at 8")
    [text] = run("scheduled", "list", "--limit", "5", "--db", sim.path).stdout.splitlines()
    assert text.endswith(f" {guid} [{chat}] see you at 8")
    assert run("scheduled", "list", "--limit", "0", "--db", sim.path).exit_code == 2


def test_history_convert_attachments(sim: SimDB) -> None:
    chat = sim.chat([ALICE])
    sim.receive(chat, ALICE, "", attachments=[SimAttachment(
        "Audio Message.caf", mime_type="audio/x-caf", uti="com.apple.coreaudio-format")])
    plain = lines(run("history", "--chat-id", str(chat), "--json", "--db", sim.path))
    assert set(plain[0]["attachments"][0]) & {"converted_path", "conversion_error"} == set()
    [message] = lines(run("history", "--chat-id", str(chat), "--json", "--convert-attachments",
                          "--db", sim.path))
    [attachment] = message["attachments"]
    # The simulated file is silence, not CAF: the copy fails, the command does not.
    assert "converted_path" in attachment or attachment["conversion_error"]


@pytest.mark.parametrize(("shell", "marker"), [
    ("bash", "complete -F _imsg imsg"),
    ("zsh", "#compdef imsg"),
    ("fish", "complete -c imsg"),
])
def test_shell_completions(shell: str, marker: str) -> None:
    result = run("completions", shell)
    assert result.exit_code == 0 and marker in result.stdout


def test_unknown_or_missing_shell() -> None:
    result = run("completions", "tcsh")
    assert result.exit_code == 2 and "Unknown shell: tcsh" in result.stderr
    missing = run("completions")
    assert missing.exit_code == 2 and "Missing shell (use bash, zsh, fish, llm)" in missing.stderr


def test_llm_reference_names_every_command_and_flag() -> None:
    text = run("completions", "llm").stdout
    assert text.startswith("# imsg CLI Reference\n")
    ctx = click.Context(main, info_name="imsg")

    def walk(command: click.Command, path: str) -> None:
        assert f"\n## {path}\n" in text, path
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert f"`{param.opts[0]}`" in text, (path, param.opts[0])
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(sub, f"{path} {name}")

    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None
        walk(command, f"imsg {name}")
    assert "`--unread-only`" in text and "`--convert-attachments`" in text


def test_group_keeps_a_stored_empty_title(sim: SimDB) -> None:
    chat = sim.chat([ALICE, BOB])
    sim.receive(chat, BOB, "hi")
    [group] = lines(run("group", "--chat-id", str(chat), "--json", "--db", sim.path))
    [listed] = lines(run("chats", "--json", "--db", sim.path))
    assert group["name"] == "" and listed["display_name"] == ""
    assert listed["name"] == listed["identifier"]
