"""A check's verdict, and the checks of this process's own access.

Each check is ``ok``, ``warn``, ``fail`` or ``skip`` with a one-line detail and, unless ok, the
one command or settings step that fixes it:

- ``database``: chat.db opens read-only (else: Full Disk Access, a missing or foreign file);
- ``osascript``: the binary sends go through exists and is executable (``$IMSG_OSASCRIPT`` or
  ``/usr/bin/osascript``); off macOS without the simulator this is a warning;
- ``automation``: on macOS, Messages answers a harmless Apple event (asks ``name``); a refusal
  (-1743) means the Automation permission is missing. Not probed for a custom ``osascript``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Literal

from imsg.errors import DatabaseNotFound, ImsgError, PermissionDenied
from imsg.service.steps import Runner

Status = Literal["ok", "warn", "fail", "skip"]
PROBE = 'tell application "Messages" to get name'
MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def render(checks: list[Check]) -> list[str]:
    """Human-readable lines: a mark, the name, the detail, and the fix under it."""
    lines = []
    for check in checks:
        lines.append(f"{MARKS[check.status]}  {check.name:<10}  {check.detail}")
        if check.fix and check.status != "ok":
            lines.append(f"{'':16}fix: {check.fix}")
    return lines


def ok(checks: list[Check]) -> bool:
    return all(check.status != "fail" for check in checks)


def check_database(path: str) -> Check:
    from imsg.chatdb.reader import ChatDB

    try:
        with ChatDB(path) as db:
            newest = db.max_rowid()
            profile = db.schema.profile
    except PermissionDenied as err:
        return Check("database", "fail", err.message, fix=(
            "Open System Settings > Privacy & Security > Full Disk Access and add the app that "
            "starts imsg (your terminal, editor or gateway), then restart it. The service "
            "needs its app bundle there instead: see the service checks below"))
    except DatabaseNotFound as err:
        return Check("database", "fail", err.message, fix=(
            "Open Messages once and sign in, or point --db / IMSG_DB at a chat.db (try "
            "`imsg sim init /tmp/chat.db --demo`)"))
    except ImsgError as err:
        return Check("database", "fail", err.message,
                     fix="Point --db / IMSG_DB at Messages' chat.db (~/Library/Messages/chat.db)")
    return Check("database", "ok", f"{path} is readable ({profile} schema, newest message "
                                   f"#{newest})")


def check_osascript(path: str, *, custom: bool, platform: str) -> Check:
    if os.path.isfile(path) and os.access(path, os.X_OK):
        note = " (IMSG_OSASCRIPT)" if custom else ""
        return Check("osascript", "ok", f"{path}{note}")
    if custom:
        return Check("osascript", "fail", f"IMSG_OSASCRIPT={path} is not an executable file",
                     fix="Point IMSG_OSASCRIPT at osascript or at imsg-sim-osascript, or unset it")
    if platform == "darwin":
        return Check("osascript", "fail", f"{path} is missing",
                     fix="Reinstall macOS's command line tools; sends need osascript")
    return Check("osascript", "warn", f"not macOS: {path} is missing, so sends cannot work",
                 fix="To simulate Messages, set IMSG_OSASCRIPT=$(which imsg-sim-osascript) and "
                     "IMSG_SIM_DB=<a chat.db made by `imsg sim init`>")


def check_automation(osascript: str, runner: Runner, *, custom: bool, platform: str,
                     usable: bool) -> Check:
    if not usable:
        return Check("automation", "skip", "no osascript to ask Messages with")
    if custom or platform != "darwin":
        return Check("automation", "skip",
                     f"not probed: {osascript} is not macOS's osascript")
    from imsg.errors import AutomationDenied
    from imsg.send.applescript import classify_failure

    code, output = runner([osascript, "-e", PROBE])
    if code == 0:
        return Check("automation", "ok", "Messages accepts Apple events from this app")
    if code == 124:
        return Check("automation", "warn", "Messages did not answer in time",
                     fix="A permission prompt may be waiting on screen: answer it, then rerun")
    err = classify_failure(output, "Messages")
    if isinstance(err, AutomationDenied):
        return Check("automation", "fail", "not allowed to control Messages (-1743)",
                     fix=err.message + " If Messages is not listed there, run "
                                       "`tccutil reset AppleEvents` and send once to be asked.")
    return Check("automation", "warn", err.message,
                 fix="Open Messages and sign in to iMessage, then rerun `imsg doctor`")
