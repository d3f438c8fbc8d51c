"""``make demo``'s gateway session runs end to end on a fresh demo database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.rpc.harness import demo_db


def test_demo_gateway_session(tmp_path: Path) -> None:
    db = demo_db(tmp_path / "chat.db")
    run = subprocess.run([sys.executable, "-m", "imsg.sim.demo_gateway", db],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "Pairing code: " in out and "approved +15555550177 (account default)" in out
    assert "Messages> 🤖 echo: what's the weather like?" in out
    assert "sender=bob@example.com: no mention" in out
    assert "Messages> 🤖 noted, +15555550123: @bot remind us on Friday" in out
    assert "Traceback" not in out + run.stderr
