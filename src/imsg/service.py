"""``imsg service``: run ``imsg rpc --socket`` as a per-user service (launchd or systemd).

Only that one process then needs Full Disk Access; gateways reach it through the socket, or
through ``imsg rpc --connect`` when they can only spawn a child.

- macOS: a launchd agent ``~/Library/LaunchAgents/com.imsg.rpc.plist`` (RunAtLoad, KeepAlive),
  logs in ``~/Library/Logs/imsg/rpc.log``, loaded with ``launchctl bootstrap gui/<uid>``.
- Linux: a systemd user unit ``$XDG_CONFIG_HOME/systemd/user/imsg.service`` (Restart=on-failure),
  logs in ``$XDG_STATE_HOME/imsg/rpc.log``, enabled and (re)started with ``systemctl --user``.

The service runs ``<this python> -m imsg rpc --socket <path>`` with an absolute socket path
(default: ``imsg.rpc.listener.default_socket_path()`` at install time). ``plan`` computes
everything without side effects (``--dry-run`` prints it); ``install``/``uninstall``/``status``
act on the file system under ``plan.home`` and through an injectable command ``Runner``, so
tests never touch the real launchd or systemd. Failures raise ``ServiceError``.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from imsg.errors import ImsgError
from imsg.rpc.listener import default_socket_path, probe

LABEL = "com.imsg.rpc"
UNIT = "imsg.service"
Runner = Callable[[Sequence[str]], tuple[int, str]]


class ServiceError(ImsgError):
    """The service manager refused, or this platform has none we support."""


def run_command(argv: Sequence[str], timeout: float = 30.0) -> tuple[int, str]:
    """Run ``argv``; (exit status, stdout + stderr). 127 when missing, 124 on timeout."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              check=False)
    except FileNotFoundError:
        return 127, f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]} did not finish within {timeout:g}s"
    return done.returncode, (done.stdout + done.stderr).strip()


@dataclass(frozen=True)
class Plan:
    manager: Literal["launchd", "systemd"]
    home: str
    unit_path: str
    unit_text: str
    socket_path: str
    log_path: str
    program: list[str]
    install_commands: list[list[str]] = field(default_factory=list)
    uninstall_commands: list[list[str]] = field(default_factory=list)
    status_command: list[str] = field(default_factory=list)


def plan(socket_path: str | None = None, db_path: str | None = None, *,
         platform: str = sys.platform, home: str | None = None,
         env: Mapping[str, str] | None = None, executable: str = sys.executable,
         uid: int | None = None) -> Plan:
    """Everything ``install`` would write and run (no side effects). Raises ServiceError on a
    platform without launchd or systemd."""
    env = os.environ if env is None else env
    home = home or os.path.expanduser("~")
    uid = os.getuid() if uid is None else uid
    sock = os.path.abspath(os.path.expanduser(socket_path or default_socket_path()))
    program = [executable, "-m", "imsg", "rpc", "--socket", sock]
    if db_path:
        program += ["--db", os.path.abspath(os.path.expanduser(db_path))]
    if platform == "darwin":
        return _launchd_plan(home, uid, sock, program)
    if platform.startswith("linux"):
        return _systemd_plan(home, env, sock, program)
    raise ServiceError(f"imsg service supports macOS (launchd) and Linux (systemd), not "
                       f"{platform}; run `imsg rpc --socket` under your own supervisor")


def _launchd_plan(home: str, uid: int, sock: str, program: list[str]) -> Plan:
    log_path = os.path.join(home, "Library", "Logs", "imsg", "rpc.log")
    unit: dict[str, Any] = {
        "Label": LABEL,
        "ProgramArguments": program,
        "RunAtLoad": True,
        "KeepAlive": True,
        "ProcessType": "Background",
        "StandardOutPath": log_path,
        "StandardErrorPath": log_path,
    }
    unit_path = os.path.join(home, "Library", "LaunchAgents", f"{LABEL}.plist")
    domain = f"gui/{uid}"
    return Plan(
        manager="launchd", home=home, unit_path=unit_path,
        unit_text=plistlib.dumps(unit).decode("utf-8"), socket_path=sock, log_path=log_path,
        program=program,
        install_commands=[["launchctl", "bootout", f"{domain}/{LABEL}"],
                          ["launchctl", "bootstrap", domain, unit_path]],
        uninstall_commands=[["launchctl", "bootout", f"{domain}/{LABEL}"]],
        status_command=["launchctl", "print", f"{domain}/{LABEL}"],
    )


def _systemd_plan(home: str, env: Mapping[str, str], sock: str, program: list[str]) -> Plan:
    config = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    state = env.get("XDG_STATE_HOME") or os.path.join(home, ".local", "state")
    log_path = os.path.join(state, "imsg", "rpc.log")
    unit_text = "\n".join([
        "[Unit]",
        "Description=imsg JSON-RPC server on a Unix socket",
        "",
        "[Service]",
        f"ExecStart={' '.join(_systemd_quote(arg) for arg in program)}",
        "Restart=on-failure",
        "RestartSec=2",
        f"StandardOutput=append:{_systemd_quote(log_path)}",
        f"StandardError=append:{_systemd_quote(log_path)}",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ])
    ctl = ["systemctl", "--user"]
    return Plan(
        manager="systemd", home=home,
        unit_path=os.path.join(config, "systemd", "user", UNIT), unit_text=unit_text,
        socket_path=sock, log_path=log_path, program=program,
        install_commands=[[*ctl, "daemon-reload"], [*ctl, "enable", UNIT],
                          [*ctl, "restart", UNIT]],
        uninstall_commands=[[*ctl, "disable", "--now", UNIT]],
        status_command=[*ctl, "is-active", UNIT],
    )


def _systemd_quote(arg: str) -> str:
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if not escaped or any(ch in escaped for ch in ' \t"\'\\;'):
        return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return escaped


def install(p: Plan, runner: Runner = run_command) -> None:
    """Write the unit and the log directory, then (re)load it. Raises ServiceError."""
    os.makedirs(os.path.dirname(p.unit_path), exist_ok=True)
    os.makedirs(os.path.dirname(p.log_path), exist_ok=True)
    with open(p.unit_path, "w", encoding="utf-8") as fh:
        fh.write(p.unit_text)
    for index, argv in enumerate(p.install_commands):
        code, output = runner(argv)
        # launchd: "bootout" of an agent that is not loaded fails, harmlessly.
        if code != 0 and not (p.manager == "launchd" and index == 0):
            raise ServiceError(f"`{' '.join(argv)}` failed ({code}): {output}")


def uninstall(p: Plan, runner: Runner = run_command) -> bool:
    """Stop and unload the service and remove its unit; False when it was not installed."""
    installed = os.path.exists(p.unit_path)
    for argv in p.uninstall_commands:
        runner(argv)  # failing to stop what is not running is fine
    if installed:
        os.unlink(p.unit_path)
        if p.manager == "systemd":
            runner(["systemctl", "--user", "daemon-reload"])
    return installed


def status(p: Plan, runner: Runner = run_command) -> dict[str, Any]:
    """``{installed, running, manager, unit_path, socket_path, socket, log_path, detail}``."""
    code, output = runner(p.status_command)
    if p.manager == "launchd":
        running = code == 0 and "state = running" in output
    else:
        running = code == 0 and output.strip() == "active"
    return {
        "installed": os.path.exists(p.unit_path),
        "running": running,
        "manager": p.manager,
        "unit_path": p.unit_path,
        "socket_path": p.socket_path,
        "socket": probe(p.socket_path),
        "log_path": p.log_path,
        "detail": output.splitlines()[0] if output else "",
    }
