"""The event log tail: from the end, complete lines only, across rotations."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from imsg.bridge.events import MAX_LINE_BYTES, EventsUnavailable, open_tail, parse_line


def line(name: str, chat: str = "c", ts: str | None = "2026-01-01T00:00:00Z") -> str:
    event: dict[str, object] = {"event": name, "data": {"chatGuid": chat}}
    if ts is not None:
        event["ts"] = ts
    return json.dumps(event) + "\n"


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def test_starts_at_the_end_and_reads_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / ".imsg-events.jsonl"
    path.write_text(line("old"))
    tail = open_tail(path)
    assert tail.poll() == []
    append(path, line("started-typing", ts=None) + '{"event": "stopped-')
    assert tail.poll() == [{"event": "started-typing", "data": {"chatGuid": "c"}}]
    append(path, 'typing", "data": {"chatGuid": "c"}}\n')
    assert [e["event"] for e in tail.poll()] == ["stopped-typing"]
    tail.close()


def test_rotation_drains_the_old_file_first(tmp_path: Path) -> None:
    path = tmp_path / ".imsg-events.jsonl"
    path.write_text("")
    tail = open_tail(path)
    append(path, line("a"))
    os.replace(path, tmp_path / ".imsg-events.jsonl.1")
    append(tmp_path / ".imsg-events.jsonl.1", line("b"))  # written before the switch
    assert [e["event"] for e in tail.poll()] == ["a", "b"]  # no new file yet
    append(path, line("c"))
    append(path, line("d"))
    assert [e["event"] for e in tail.poll()] == ["c", "d"]
    tail.close()


def test_bad_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "events"
    path.write_text("")
    tail = open_tail(path)
    append(path, "not json\n[1]\n{\"event\": 5}\n" + "x" * (MAX_LINE_BYTES + 10) + "\n"
           + line("ok"))
    assert [e["event"] for e in tail.poll()] == ["ok"]
    assert parse_line(b'{"event":"e","data":[1]}') == {"event": "e", "data": {}}
    tail.close()


def test_unusable_logs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EventsUnavailable, match="does not exist"):
        open_tail(tmp_path / "missing")
    real = tmp_path / "real"
    real.write_text("")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(EventsUnavailable, match="not a regular file"):
        open_tail(tmp_path / "link")
    with pytest.raises(EventsUnavailable, match="not a regular file"):
        open_tail(tmp_path)
