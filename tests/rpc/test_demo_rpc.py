"""``make demo``'s JSON-RPC session runs end to end on a fresh demo database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.rpc.harness import demo_db


def test_demo_session(tmp_path: Path) -> None:
    db = demo_db(tmp_path / "chat.db")
    run = subprocess.run([sys.executable, "-m", "imsg.sim.demo_rpc", db], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert sum(line.startswith("--> ") for line in lines) == 4
    assert any('"method":"message"' in line and "Are you still coming" in line for line in lines)
    assert any('"result":{"status":"sent","ok":true' in line for line in lines)
    assert run.stderr == ""
