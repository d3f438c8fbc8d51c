"""``imsg doctor``: check what imsg needs, and say how to fix each thing that is missing.

This process's own access (``imsg.doctor.checks``: database, osascript, automation), then the
service's (``imsg.doctor.service``: service, socket, program, signature, tcc, tccd, access).
Commands go through an injectable ``Runner``; nothing here writes anything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from imsg.chatdb.connection import default_db_path
from imsg.doctor.checks import (
    Check,
    check_automation,
    check_database,
    check_osascript,
    ok,
    render,
)
from imsg.doctor.service import service_checks
from imsg.service.host import Host
from imsg.service.steps import Runner, run_command

__all__ = ["Check", "ok", "render", "run_checks"]


def run_checks(db_path: str | None = None, socket_path: str | None = None, *,
               host: Host | None = None, runner: Runner = run_command,
               tcc_db_paths: Sequence[str] | None = None) -> list[Check]:
    host = host or Host.current()
    env = host.env
    osascript = env.get("IMSG_OSASCRIPT") or "/usr/bin/osascript"
    custom = "IMSG_OSASCRIPT" in env
    script_check = check_osascript(osascript, custom=custom, platform=host.platform)
    return [
        check_database(db_path or default_db_path()),
        script_check,
        check_automation(osascript, runner, custom=custom, platform=host.platform,
                         usable=script_check.status == "ok"),
        *service_checks(host, runner,
                        os.path.abspath(os.path.expanduser(socket_path)) if socket_path else None,
                        tcc_db_paths),
    ]
