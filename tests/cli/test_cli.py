"""The `imsg` command as users run it: a subprocess, stdout for results, stderr for errors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from imsg.cli import main
from imsg.sim.demo import ALICE, fill_demo
from imsg.sim.messages import SimDB


def imsg(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imsg", *args], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.fixture
def demo_db(sim: SimDB) -> tuple[str, dict[str, int]]:
    return sim.path, fill_demo(sim)


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_chats_human_and_json(demo_db) -> None:
    path, ids = demo_db
    human = imsg("chats", "--db", path)
    assert human.returncode == 0, human.stderr
    assert human.stdout.splitlines()[0].startswith(f"[{ids['trip']}] Weekend Trip (chat")
    data = json_lines(imsg("chats", "--db", path, "--json", "--limit", "2").stdout)
    assert [c["id"] for c in data] == [ids["trip"], ids["sms"]]


def test_db_from_environment(demo_db) -> None:
    path, _ = demo_db
    result = imsg("chats", "--json", env={**os.environ, "IMSG_DB": path})
    assert result.returncode == 0 and len(json_lines(result.stdout)) == 3


def test_group_human_and_json(demo_db) -> None:
    path, ids = demo_db
    lines = imsg("group", "--chat-id", str(ids["trip"]), "--db", path).stdout.splitlines()
    assert "is_group: true" in lines and "participants:" in lines
    [data] = json_lines(
        imsg("group", "--chat-id", str(ids["alice"]), "--db", path, "--json").stdout
    )
    assert data["is_group"] is False and data["participants"] == [ALICE]


def test_history_human_shows_edits_unsends_replies_attachments(demo_db) -> None:
    path, ids = demo_db
    out = imsg("history", "--chat-id", str(ids["alice"]), "--db", path, "--attachments").stdout
    assert "(edited)" in out and "(unsent)" in out
    assert "in reply to +15555550123: Perfect, see you there" in out
    assert "attachment: name=IMG_0042.jpeg mime=image/jpeg missing=false" in out
    assert "+15555550123: \n  attachment:" in out  # the U+FFFC placeholder is not printed
    counted = imsg("history", "--chat-id", str(ids["alice"]), "--db", path).stdout
    assert "(1 attachment)" in counted


def test_history_json_lines_and_filters(demo_db) -> None:
    path, ids = demo_db
    result = imsg(
        "history",
        "--chat-id",
        str(ids["trip"]),
        "--db",
        path,
        "--json",
        "--participants",
        "bob@example.com",
        "--limit",
        "1",
    )
    [message] = json_lines(result.stdout)
    assert message["text"] == "https://example.com/cabin"
    assert message["url_preview"]["title"] == "Lakeside Cabin"
    assert "null" not in result.stdout
    every = json_lines(
        imsg("history", "--chat-id", str(ids["trip"]), "--db", path, "--json").stdout
    )
    assert all(m["attachments"] is not None and "reactions" in m for m in every)
    assert not any(m.get("is_reaction") for m in every)


def test_search_json(demo_db) -> None:
    path, ids = demo_db
    found = json_lines(imsg("search", "--query", "CABIN", "--db", path, "--json").stdout)
    assert [m["chat_id"] for m in found] == [ids["trip"], ids["trip"]]
    exact = imsg("search", "--query", "thanks!", "--match", "exact", "--db", path)
    assert exact.stdout.strip().endswith("+15555550188: Thanks!")


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["history", "--chat-id", "999"], 3, "Chat not found: 999"),
        (["group", "--chat-id", "999"], 3, "Chat not found: 999"),
        (["history", "--chat-id", "1", "--start", "last tuesday"], 2, "Invalid ISO8601 date"),
        (["search", "--query", "x", "--match", "regex"], 2, "Invalid value for option: --match"),
        (["history"], 2, "Missing required option: --chat-id"),
    ],
)
def test_usage_errors_are_one_line_and_exit_nonzero(demo_db, args, code, needle) -> None:
    path, _ = demo_db
    result = imsg(*args, "--db", path)
    assert result.returncode == code
    assert needle in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_missing_database(tmp_path: Path) -> None:
    result = imsg("chats", "--db", str(tmp_path / "none.db"))
    assert result.returncode == 4
    assert result.stderr.startswith("imsg: No Messages database at")


def test_not_a_database(tmp_path: Path) -> None:
    bogus = tmp_path / "chat.db"
    bogus.write_text("hello")
    result = imsg("chats", "--db", str(bogus))
    assert result.returncode == 6 and "is not a Messages database" in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_file_prints_full_disk_access_help(sim: SimDB) -> None:
    os.chmod(sim.path, 0)
    result = imsg("chats", "--db", sim.path)
    assert result.returncode == 5, result.stderr
    assert "Full Disk Access" in result.stderr and "Traceback" not in result.stderr


def test_an_unreadable_db_file_is_exit_5_not_a_usage_error(
    sim: SimDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a user without Full Disk Access sees (``os.access`` answers as it would for
    them; as root every file is readable): the fix, exit 5, never click's exit 2."""
    real_access = os.access

    def no_read(path: object, mode: int, *args: object, **kwargs: object) -> bool:
        return False if str(path) == sim.path else real_access(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", no_read)
    result = CliRunner().invoke(main, ["chats", "--db", sim.path])
    assert result.exit_code == 5, result.output
    assert "Full Disk Access" in result.output


def test_macos_authorization_denied_prints_full_disk_access_help(
    sim: SimDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    def tcc_refusal(*_: object, **__: object) -> None:
        raise sqlite3.OperationalError("authorization denied")  # what macOS TCC makes SQLite say

    monkeypatch.setattr(sqlite3, "connect", tcc_refusal)
    result = CliRunner().invoke(main, ["chats", "--db", sim.path])
    assert result.exit_code == 5
    assert result.stdout == ""
    assert "Permission denied reading" in result.stderr and "Full Disk Access" in result.stderr


def test_corrupt_blob_does_not_break_history(sim: SimDB) -> None:
    chat = sim.chat([ALICE])
    sim.receive(chat, ALICE, "before")
    sim.message(chat, None, sender=ALICE, body=bytes(range(256)) * 4)
    result = imsg("history", "--chat-id", str(chat), "--db", sim.path, "--json")
    assert result.returncode == 0
    assert [m["text"] for m in json_lines(result.stdout)] == ["", "before"]


def test_version_and_help() -> None:
    from imsg import __version__

    assert imsg("--version").stdout.strip() == __version__
    assert "Example:" in imsg("--help").stdout


def test_every_command_documents_an_example() -> None:
    def walk(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
        found = []
        for name, command in group.commands.items():
            found.append((f"{prefix} {name}", command))
            if isinstance(command, click.Group):
                found.extend(walk(command, f"{prefix} {name}"))
        return found

    for name, command in walk(main, "imsg"):
        assert "Example:" in (command.help or ""), f"{name} has no Example: block"


def test_sim_init_and_receive(tmp_path: Path) -> None:
    path = str(tmp_path / "chat.db")
    assert imsg("sim", "init", path, "--schema", "tahoe").returncode == 0
    again = imsg("sim", "init", path)
    assert again.returncode != 0 and "already exists" in again.stderr
    received = imsg("sim", "receive", path, "--from", ALICE, "--text", 'say "hi"\nthere')
    assert received.stdout.strip() == "1"
    [message] = json_lines(imsg("history", "--chat-id", "1", "--db", path, "--json").stdout)
    assert message["text"] == 'say "hi"\nthere' and message["sender"] == ALICE
    assert message["chat_guid"] == f"any;-;{ALICE}"


def test_broken_pipe_exits_quietly(demo_db) -> None:
    path, ids = demo_db
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imsg",
            "history",
            "--chat-id",
            str(ids["alice"]),
            "--db",
            path,
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err


def test_version_alone_is_answered_without_loading_the_command_line() -> None:
    probe = ("import sys; sys.argv = ['imsg', '--version']; from imsg.entry import run; run();"
             " print('click' in sys.modules, 'imsg.cli' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "IMSG_VERSION": "1.2.3"})
    assert result.stdout.split() == ["1.2.3", "False", "False"]
