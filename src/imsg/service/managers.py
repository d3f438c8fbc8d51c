"""The two service managers: the unit each one reads, its commands, and what it says.

- launchd (macOS): ``~/Library/LaunchAgents/com.imsg.rpc.plist`` runs the app bundle's
  launcher (``RunAtLoad``, ``KeepAlive``: restarted whenever it exits, at most every 10 s);
  stdout/stderr to the log file. Loaded with ``launchctl bootstrap gui/<uid>``, restarted with
  ``launchctl kickstart -k``, read with ``launchctl print``.
- systemd (Linux): ``$XDG_CONFIG_HOME/systemd/user/imsg.service`` runs ``imsg rpc`` directly
  (``Restart=on-failure``); there is no Full Disk Access on Linux. Managed with
  ``systemctl --user``; read with ``systemctl --user show``.

``ServiceState`` is what either manager reports: loaded, running, pid, runs/restarts, the last
exit status, and (launchd) the program it runs.
"""

from __future__ import annotations

import plistlib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from imsg.service.host import LABEL, UNIT, Host, Manager
from imsg.service.steps import Runner
from imsg.service.text import exec_word, setting_path

SYSTEMCTL = ("systemctl", "--user")
SHOW_PROPERTIES = "LoadState,ActiveState,SubState,MainPID,NRestarts,ExecMainStatus,Result"


def launchd_plist(executable: str, log_path: str) -> str:
    agent: dict[str, Any] = {
        "Label": LABEL,
        "ProgramArguments": [executable],
        "RunAtLoad": True,
        "KeepAlive": True,
        "ThrottleInterval": 10,
        "ProcessType": "Background",
        "StandardOutPath": log_path,
        "StandardErrorPath": log_path,
    }
    return plistlib.dumps(agent).decode("utf-8")


def systemd_unit(command: Sequence[str], log_path: str) -> str:
    log = setting_path(log_path)
    return "\n".join([
        "[Unit]",
        "Description=imsg JSON-RPC server on a Unix socket",
        "",
        "[Service]",
        f"ExecStart={' '.join(exec_word(arg) for arg in command)}",
        "Restart=on-failure",
        "RestartSec=2",
        f"StandardOutput=append:{log}",
        f"StandardError=append:{log}",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ])


def service_target(host: Host) -> str:
    return f"{host.domain}/{LABEL}"


def load_commands(host: Host, unit_path: str) -> list[tuple[tuple[str, ...], bool]]:
    """(argv, may_fail) to (re)load and start the service."""
    if host.manager == "launchd":
        target = service_target(host)
        return [(("launchctl", "bootout", target), True),
                (("launchctl", "enable", target), True),
                (("launchctl", "bootstrap", host.domain, unit_path), False)]
    return [((*SYSTEMCTL, "daemon-reload"), False), ((*SYSTEMCTL, "enable", UNIT), False),
            ((*SYSTEMCTL, "restart", UNIT), False)]


def unload_commands(host: Host) -> list[tuple[str, ...]]:
    if host.manager == "launchd":
        return [("launchctl", "bootout", service_target(host))]
    return [(*SYSTEMCTL, "disable", "--now", UNIT)]


def restart_command(host: Host) -> tuple[str, ...]:
    if host.manager == "launchd":
        return ("launchctl", "kickstart", "-k", service_target(host))
    return (*SYSTEMCTL, "restart", UNIT)


def state_command(host: Host) -> tuple[str, ...]:
    if host.manager == "launchd":
        return ("launchctl", "print", service_target(host))
    return (*SYSTEMCTL, "show", UNIT, f"--property={SHOW_PROPERTIES}")


@dataclass(frozen=True)
class ServiceState:
    manager: Manager
    loaded: bool
    running: bool
    state: str
    pid: int | None = None
    runs: int | None = None
    last_exit: str | None = None
    program: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def read_state(host: Host, runner: Runner) -> ServiceState:
    """Ask the manager about the service (never raises: a failing command is "not loaded")."""
    code, output = runner(state_command(host))
    if host.manager == "launchd":
        return parse_launchctl_print(code, output)
    return parse_systemctl_show(code, output)


_PRINT_FIELD = re.compile(r"^\s*(state|pid|runs|last exit code|program|last terminating signal)"
                          r"\s*=\s*(.*?)\s*$")


def parse_launchctl_print(code: int, output: str) -> ServiceState:
    if code != 0:
        return ServiceState("launchd", loaded=False, running=False, state="not loaded",
                            detail=_first(output))
    fields: dict[str, str] = {}
    for line in output.splitlines():
        if (m := _PRINT_FIELD.match(line)) and m.group(1) not in fields:
            fields[m.group(1)] = m.group(2)
    state = fields.get("state", "unknown")
    last_exit = fields.get("last exit code")
    if fields.get("last terminating signal"):
        last_exit = f"{last_exit or ''} ({fields['last terminating signal']})".strip()
    return ServiceState("launchd", loaded=True, running=state == "running", state=state,
                        pid=_int(fields.get("pid")), runs=_int(fields.get("runs")),
                        last_exit=last_exit, program=fields.get("program"))


def parse_systemctl_show(code: int, output: str) -> ServiceState:
    fields = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    load = fields.get("LoadState", "")
    if code != 0 or load in ("", "not-found"):
        return ServiceState("systemd", loaded=False, running=False, state="not loaded",
                            detail=_first(output))
    active = fields.get("ActiveState", "unknown")
    sub = fields.get("SubState", "")
    pid = _int(fields.get("MainPID"))
    return ServiceState("systemd", loaded=True, running=active == "active",
                        state=f"{active} ({sub})" if sub else active,
                        pid=pid if pid else None, runs=_int(fields.get("NRestarts")),
                        last_exit=fields.get("ExecMainStatus"))


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _first(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
