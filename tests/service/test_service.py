"""``imsg service``: the launchd agent and the systemd unit, written under a temporary home
and loaded through a recording runner: no test touches the real launchd or systemd."""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from imsg.service import ServiceError, install, plan, status, uninstall


class Recorder:
    def __init__(self, answers: dict[str, tuple[int, str]] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.answers = answers or {}

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        self.calls.append(list(argv))
        for word, answer in self.answers.items():
            if word in argv:
                return answer
        return 0, ""


def test_launchd_plan_runs_the_socket_server_with_logs(tmp_path: Path) -> None:
    p = plan(str(tmp_path / "s.sock"), str(tmp_path / "chat.db"), platform="darwin",
             home=str(tmp_path), uid=501, executable="/opt/py/bin/python3")
    assert p.unit_path == str(tmp_path / "Library/LaunchAgents/com.imsg.rpc.plist")
    agent = plistlib.loads(p.unit_text.encode())
    assert agent["ProgramArguments"] == [
        "/opt/py/bin/python3", "-m", "imsg", "rpc", "--socket", str(tmp_path / "s.sock"),
        "--db", str(tmp_path / "chat.db")]
    assert agent["RunAtLoad"] and agent["KeepAlive"]
    assert agent["StandardErrorPath"] == p.log_path == str(tmp_path / "Library/Logs/imsg/rpc.log")
    assert p.install_commands[-1] == ["launchctl", "bootstrap", "gui/501", p.unit_path]


def test_systemd_plan_quotes_and_honours_xdg(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_STATE_HOME": str(tmp_path / "st")}
    p = plan(str(tmp_path / "my dir/s.sock"), platform="linux", home=str(tmp_path), env=env,
             executable="/usr/bin/python3")
    assert p.unit_path == str(tmp_path / "cfg/systemd/user/imsg.service")
    assert f'ExecStart=/usr/bin/python3 -m imsg rpc --socket "{tmp_path}/my dir/s.sock"' in \
        p.unit_text.splitlines()
    assert f"StandardError=append:{tmp_path}/st/imsg/rpc.log" in p.unit_text
    assert ["systemctl", "--user", "enable", "imsg.service"] in p.install_commands


def test_default_socket_path_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.setenv("IMSG_SOCKET", "~/s.sock")
    p = plan(platform="linux", home=str(tmp_path), env={})
    assert p.socket_path == os.path.expanduser("~/s.sock") and os.path.isabs(p.socket_path)


def test_unsupported_platform() -> None:
    with pytest.raises(ServiceError, match="launchd"):
        plan(platform="win32")


@pytest.mark.parametrize("platform", ["darwin", "linux"])
def test_install_status_uninstall(tmp_path: Path, platform: str) -> None:
    p = plan(str(tmp_path / "s.sock"), platform=platform, home=str(tmp_path), env={}, uid=501)
    runner = Recorder({"bootout": (3, "not loaded")})  # launchd: unloading nothing fails
    install(p, runner)
    assert Path(p.unit_path).read_text() == p.unit_text
    assert Path(p.log_path).parent.is_dir()
    assert runner.calls == p.install_commands
    running = "state = running" if platform == "darwin" else "active"
    info = status(p, Recorder({p.status_command[-1]: (0, running)}))
    assert info["installed"] and info["running"] and info["socket"] == "missing"
    assert uninstall(p, Recorder()) is True and not os.path.exists(p.unit_path)
    assert uninstall(p, Recorder()) is False
    assert status(p, Recorder({p.status_command[-1]: (3, "inactive")}))["running"] is False


def test_install_reports_a_refusal(tmp_path: Path) -> None:
    p = plan(str(tmp_path / "s.sock"), platform="linux", home=str(tmp_path), env={})
    with pytest.raises(ServiceError, match="enable"):
        install(p, Recorder({"enable": (1, "Failed to connect to bus")}))


def test_cli_dry_runs_change_nothing(tmp_path: Path, isolated_home: Path) -> None:
    env = {**os.environ, "HOME": str(isolated_home)}
    env.pop("XDG_CONFIG_HOME", None)
    run = subprocess.run(
        [sys.executable, "-m", "imsg", "service", "install", "--dry-run", "--socket",
         str(tmp_path / "s.sock")], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "would write" in run.stdout and f"--socket {tmp_path}/s.sock" in run.stdout
    gone = subprocess.run([sys.executable, "-m", "imsg", "service", "uninstall", "--dry-run"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert gone.returncode == 0 and "would remove" in gone.stdout
    assert list(isolated_home.iterdir()) == []
