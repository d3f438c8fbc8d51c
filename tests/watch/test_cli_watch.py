"""``imsg watch`` end to end: a real subprocess reading what this process writes as Messages."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from imsg.chatdb.reader import ChatDB
from imsg.cli import main
from imsg.cli.options import parse_duration
from imsg.errors import PermissionDenied
from imsg.sim.messages import SimDB

from .kit import ALICE, BOB, TIMEOUT_S, WatchProcess

LINK = "https://example.com/x"


def keys(lines: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(line.get("event", "message"), line["id"]) for line in lines]


def test_watch_json_end_to_end(db: SimDB) -> None:
    chat, group = db.chat([ALICE]), db.chat([ALICE, BOB])
    start = db.receive(chat, ALICE, "before the watch")
    watcher = WatchProcess(db.path, "--since-rowid", str(start), "--debounce", "0ms",
                           "--updates", "--reactions")
    try:
        db.conn.execute("BEGIN")
        burst = [db.receive(group, BOB, f"burst {i}") for i in range(1500)]
        db.conn.execute("COMMIT")
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        late = db.message(group, "joined late", sender=BOB, join=False)
        after_late = db.receive(chat, ALICE, "behind the late row")
        db.join(group, late)
        link = db.receive(chat, ALICE, f"read {LINK}")
        db.url_preview(chat, LINK, sender=ALICE)
        db.url_preview(chat, LINK, sender=ALICE, at=time.time() + 30)
        tapback = db.react(chat, link, "like", sender=ALICE)
        mine = db.send(chat, "typo")
        lines = watcher.through(mine)
        assert keys(lines) == [("message", r) for r in
                               [*burst, late, after_late, link, tapback, mine]]
        assert lines[len(burst)]["chat_id"] == group and lines[len(burst)]["is_group"] is True
        assert lines[-3]["url_preview"]["url"] == LINK
        assert lines[-2]["is_reaction"] is True and lines[-2]["reaction_type"] == "like"
        assert all("event" not in line for line in lines)
        db.edit(mine, "fixed")
        db.unsend(after_late)
        updates = watcher.take(2)
        assert sorted(keys(updates)) == [("edited", mine), ("retracted", after_late)]
        sentinel = db.receive(chat, ALICE, "sentinel")
        assert keys(watcher.through(sentinel)) == [("message", sentinel)]
    finally:
        code, err = watcher.stop()
    assert code == 0 and "Traceback" not in err


def test_restart_with_since_rowid_and_a_replaced_database(db: SimDB, tmp_path: Path) -> None:
    chat = db.chat([ALICE])
    first = WatchProcess(db.path, "--since-rowid", str(db.receive(chat, ALICE, "x")),
                         "--debounce", "0ms")
    handled = [line["id"] for line in first.through(db.receive(chat, ALICE, "one"))]
    code, err = first.stop()
    assert code == 0 and err == ""
    while_down = [db.receive(chat, ALICE, f"while down {i}") for i in range(3)]
    second = WatchProcess(db.path, "--since-rowid", str(handled[-1]), "--debounce", "0ms")
    try:
        assert [line["id"] for line in second.through(while_down[-1])] == while_down
        replacement = str(tmp_path / "rebuilt.db")
        source, target = sqlite3.connect(db.path), sqlite3.connect(replacement)
        source.backup(target)
        target.close()
        source.close()
        rebuilt = SimDB(replacement)
        in_copy = rebuilt.receive(chat, ALICE, "in the rebuilt file")
        rebuilt.close()
        db.close()
        for suffix in ("-wal", "-shm"):
            os.unlink(db.path + suffix)
        os.replace(replacement, db.path)
        writer = SimDB(db.path)
        after = writer.receive(chat, ALICE, "after the swap")
        writer.close()
        assert [line["id"] for line in second.through(after)] == [in_copy, after]
    finally:
        code, err = second.stop()
    assert code == 0
    assert "was replaced by a new file" in err and "Traceback" not in err


def test_text_output_and_status_lines_on_stderr(db: SimDB) -> None:
    chat = db.chat([ALICE])
    watcher = subprocess.Popen(
        [sys.executable, "-m", "imsg", "watch", "--db", db.path, "--debounce", "0ms",
         "--since-rowid", str(db.receive(chat, ALICE, "start"))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert watcher.stdout is not None
    hang_guard = threading.Timer(TIMEOUT_S, watcher.kill)
    hang_guard.start()
    db.receive(chat, ALICE, "hello\nworld")
    first = watcher.stdout.readline()
    second = watcher.stdout.readline()
    watcher.send_signal(signal.SIGINT)
    _, err = watcher.communicate(timeout=TIMEOUT_S)
    hang_guard.cancel()
    assert first.endswith(f"[recv] {ALICE}: hello\n") and second == "    world\n"
    assert watcher.returncode == 0 and "Traceback" not in err


@pytest.mark.parametrize(("args", "code", "needle"), [
    (["--debounce", "2x"], 2, "Invalid value for option: --debounce"),
    (["--debounce", "500ms2s!"], 2, "Invalid value for option: --debounce"),
    (["--chat-id", "999"], 3, "Chat not found: 999"),
    (["--start", "yesterday"], 2, "Invalid ISO8601 date"),
])
def test_usage_errors(db: SimDB, args: list[str], code: int, needle: str) -> None:
    db.chat([ALICE])
    result = CliRunner().invoke(main, ["watch", "--db", db.path, *args])
    assert result.exit_code == code and needle in result.output


def test_permission_lost_while_watching_exits_nonzero(
        db: SimDB, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(self: ChatDB, *_: object, **__: object) -> None:
        raise PermissionDenied(self.path, "authorization denied")

    monkeypatch.setattr(ChatDB, "messages_after", refused)
    result = CliRunner().invoke(main, ["watch", "--json", "--db", db.path])
    assert result.exit_code == 5
    assert "Permission denied" in result.output and "Full Disk Access" in result.output


@pytest.mark.parametrize(("text", "seconds"), [
    ("250ms", 0.25), ("0ms", 0.0), ("1.5s", 1.5), ("2m", 120.0), ("1h", 3600.0), ("3", 3.0),
    ("2s500ms", 2.5), ("1m30s", 90.0), ("0.5", 0.5),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(None, None, text) == seconds


def test_late_joins_and_rows_given_up_on_the_command_line(db: SimDB) -> None:
    chat = db.chat([ALICE])
    start = db.receive(chat, ALICE, "start")
    watcher = WatchProcess(db.path, "--since-rowid", str(start), "--debounce", "0ms",
                           "--hold", "50ms", "--horizon", "1s")
    try:
        late = db.message(chat, "filed late", sender=ALICE, join=False)
        ghost = db.message(chat, "never filed", sender=ALICE, join=False)
        after = db.receive(chat, ALICE, "after")
        [line] = watcher.through(after)
        assert line["cursor"] == late - 1
        db.join(chat, late)
        sentinel = db.receive(chat, ALICE, "sentinel")
        lines = watcher.through(sentinel)
        assert [(x["id"], x["cursor"]) for x in lines] == [(late, ghost - 1),
                                                            (sentinel, ghost - 1)]
        # Past the horizon the ghost is given up and the cursor moves on.
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            probe = db.receive(chat, ALICE, "probe")
            [line] = watcher.through(probe)
            if line["cursor"] == probe:
                break
            assert line["cursor"] == ghost - 1 and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        code, err = watcher.stop()
    assert code == 0
    assert f"imsg: message {ghost} ({db.guid_of(ghost)}) was not joined to any chat" in err
