"""``imsg doctor``: each check's verdict and fix, with fake command runners."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from imsg.doctor import (
    Check,
    check_automation,
    check_database,
    check_osascript,
    check_socket,
    ok,
    render,
)
from imsg.errors import PermissionDenied
from tests.rpc.harness import SIM_OSASCRIPT, demo_db


def runner(code: int, output: str):  # type: ignore[no-untyped-def]
    def run(argv: Sequence[str]) -> tuple[int, str]:
        return code, output
    return run


def test_database(tmp_path: Path) -> None:
    good = check_database(demo_db(tmp_path / "chat.db"))
    assert good.status == "ok" and "#19" in good.detail
    missing = check_database(str(tmp_path / "none.db"))
    assert missing.status == "fail" and missing.fix and "imsg sim init" in missing.fix
    (tmp_path / "other.db").write_bytes(b"not sqlite at all" * 100)
    assert check_database(str(tmp_path / "other.db")).status == "fail"


def test_database_without_full_disk_access(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: str) -> None:
        raise PermissionDenied(path, "authorization denied")

    monkeypatch.setattr("imsg.chatdb.reader.ChatDB", refuse)
    check = check_database("/Users/me/Library/Messages/chat.db")
    assert check.status == "fail" and check.fix and "Full Disk Access" in check.fix


def test_osascript(tmp_path: Path) -> None:
    assert check_osascript(SIM_OSASCRIPT, custom=True, platform="linux").status == "ok"
    assert check_osascript(str(tmp_path / "x"), custom=True, platform="darwin").status == "fail"
    assert check_osascript(str(tmp_path / "x"), custom=False, platform="darwin").status == "fail"
    off_mac = check_osascript(str(tmp_path / "x"), custom=False, platform="linux")
    assert off_mac.status == "warn" and off_mac.fix and "IMSG_OSASCRIPT" in off_mac.fix


def test_automation() -> None:
    args = {"custom": False, "platform": "darwin", "usable": True}
    assert check_automation("osascript", runner(0, "Messages"), **args).status == "ok"
    denied = check_automation("osascript", runner(
        1, "execution error: Not authorized to send Apple events to Messages. (-1743)"), **args)
    assert denied.status == "fail" and denied.fix and "Automation" in denied.fix
    assert check_automation("osascript", runner(124, ""), **args).status == "warn"
    assert check_automation("osascript", runner(1, "execution error: x (-600)"),
                            **args).status == "warn"
    assert check_automation("sim", runner(0, ""), custom=True, platform="darwin",
                            usable=True).status == "skip"
    assert check_automation("x", runner(0, ""), custom=False, platform="darwin",
                            usable=False).status == "skip"


def test_socket(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    assert check_socket(str(path)).status == "skip"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listening:
        listening.bind(str(path))
        os.chmod(path, 0o600)
        listening.listen()
        assert check_socket(str(path)).status == "ok"
        os.chmod(path, 0o666)
        assert check_socket(str(path)).status == "warn"
    assert check_socket(str(path)).status == "warn"  # stale now
    path.unlink()
    path.write_text("")
    assert check_socket(str(path)).status == "fail"


def test_render_and_verdict() -> None:
    checks = [Check("database", "ok", "fine"), Check("socket", "fail", "broken", fix="do x")]
    lines = render(checks)
    assert lines[0].startswith("ok") and "FAIL" in lines[1] and "fix: do x" in lines[2]
    assert not ok(checks) and ok(checks[:1])


def test_cli_json(tmp_path: Path) -> None:
    db = demo_db(tmp_path / "chat.db")
    env = {**os.environ, "IMSG_OSASCRIPT": SIM_OSASCRIPT, "IMSG_SIM_DB": db}
    run = subprocess.run([sys.executable, "-m", "imsg", "doctor", "--json", "--db", db,
                          "--socket", str(tmp_path / "s.sock")],
                         capture_output=True, text=True, env=env, timeout=60)
    report = json.loads(run.stdout)
    assert run.returncode == 0 and report["ok"] is True
    assert [c["name"] for c in report["checks"]] == ["database", "osascript", "automation",
                                                     "socket"]
    broken = subprocess.run([sys.executable, "-m", "imsg", "doctor", "--db",
                             str(tmp_path / "none.db")], capture_output=True, text=True,
                            env=env, timeout=60)
    assert broken.returncode == 1 and "FAIL  database" in broken.stdout
    assert "fix:" in broken.stdout
