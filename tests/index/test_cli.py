"""`imsg index` and `imsg search` as users run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import imsg.index
from imsg.sim.messages import SimDB

ALICE = "+15550001111"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imsg", *args], capture_output=True, text=True,
                          timeout=60, env=os.environ.copy())


def test_index_builds_then_updates(sim: SimDB) -> None:
    chat = sim.chat([ALICE])
    for i in range(3):
        sim.receive(chat, ALICE, f"hello {i}")
    built = run("index", "--db", sim.path)
    assert built.returncode == 0, built.stderr
    assert built.stdout.startswith(f"built {imsg.index.index_path(sim.path)}: 3 messages")
    assert built.stderr == ""  # no progress bar without a terminal
    [updated] = [json.loads(line) for line in run("index", "--db", sim.path, "--json")
                 .stdout.splitlines()]
    assert (updated["action"], updated["rows"]) == ("updated", 3)
    assert json.loads(run("index", "--rebuild", "--db", sim.path, "-j").stdout)["action"] == \
        "built"


def test_index_failure_is_one_line_and_exit_29(sim: SimDB, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("IMSG_CACHE_DIR", str(tmp_path / "file"))
    result = run("index", "--db", sim.path)
    assert result.returncode == 29
    assert result.stderr.startswith("imsg: search index ") and result.stderr.count("\n") == 1


def test_search_uses_and_builds_the_index(sim: SimDB) -> None:
    chat = sim.chat([ALICE])
    rowid = sim.receive(chat, ALICE, "Grüße aus Straße")
    result = run("search", "--query", "STRASSE", "--db", sim.path, "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [rowid]
    assert os.path.exists(imsg.index.index_path(sim.path))
