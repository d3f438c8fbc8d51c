"""What macOS's privacy database (TCC) and its daemon (tccd) say about Full Disk Access.

- ``tcc_rows``: the ``kTCCServiceSystemPolicyAllFiles`` rows of ``TCC.db`` (the system one,
  then the user's), read-only. Reading it needs Full Disk Access itself, so from a terminal
  without it the answer is "unreadable", not an error. ``auth_value``: 0 denied, 1 unknown,
  2 allowed, 3 limited.
- ``tccd_decisions``: the recent decisions in the unified log (``log show``). tccd writes a
  request's lines under one ``msgID``: ``AUTHREQ_ATTRIBUTION`` (who: ``identifier=…``,
  ``responsible_path=…``), ``AUTHREQ_CTX`` (``service=…``) and ``AUTHREQ_RESULT``
  (``authValue=…``); they are joined by ``msgID``. A line "Failed to match existing code
  requirement for subject …" means the grant was made for a differently signed build.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

from imsg.service.steps import Runner

ALL_FILES = "kTCCServiceSystemPolicyAllFiles"
SYSTEM_TCC = "/Library/Application Support/com.apple.TCC/TCC.db"
AUTH_NAMES = {0: "denied", 1: "unknown", 2: "allowed", 3: "limited"}
LOG_WINDOW = "1h"
LOG_PREDICATE = ('process == "tccd" AND (eventMessage CONTAINS "AUTHREQ" OR eventMessage '
                 'CONTAINS "code requirement")')
INTERPRETER = re.compile(r"(?:^|/)(?:python[0-9.]*|pypy[0-9.]*|ruby|node|perl[0-9.]*|bash|sh|"
                         r"zsh|env|osascript)$|org\.python\.python")


def tcc_paths(home: str) -> list[str]:
    return [SYSTEM_TCC, os.path.join(home, "Library", "Application Support", "com.apple.TCC",
                                     "TCC.db")]


@dataclass(frozen=True)
class TccRow:
    client: str
    client_type: int
    auth_value: int
    database: str

    @property
    def verdict(self) -> str:
        return AUTH_NAMES.get(self.auth_value, f"auth_value {self.auth_value}")


def tcc_rows(paths: Sequence[str]) -> list[TccRow] | None:
    """Full Disk Access rows of every readable TCC.db in ``paths``; None when none was
    readable."""
    rows: list[TccRow] = []
    readable = False
    for path in paths:
        if not os.path.exists(path):
            continue
        uri = f"file:{urllib.parse.quote(path)}?mode=ro"
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=1.0)) as db:
                found = db.execute("SELECT client, client_type, auth_value FROM access "
                                   "WHERE service = ?", (ALL_FILES,)).fetchall()
        except sqlite3.Error:
            continue
        readable = True
        rows += [TccRow(str(client), int(kind), int(value), path)
                 for client, kind, value in found]
    return rows if readable else None


def is_interpreter(client: str) -> bool:
    return bool(INTERPRETER.search(client))


@dataclass(frozen=True)
class Decision:
    """One tccd decision: when, about whom (bundle identifier or path), for which service,
    and ``auth_value`` (None for a code-requirement mismatch)."""

    when: str
    subject: str
    service: str
    auth_value: int | None
    mismatch: bool = False


_MSG_ID = re.compile(r"msgID=([\w.:-]+)")
_TIME = re.compile(r"^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)")
_IDENTIFIER = re.compile(r"responsible=\{[^}]*?identifier=([^,}\s]+)")
_RESP_PATH = re.compile(r"responsible_path=([^,}]+)")
_SERVICE = re.compile(r"service=(kTCCService\w+)")
_AUTH_VALUE = re.compile(r"authValue=(\d+)")
_MISMATCH = re.compile(r"code requirement for subject (\S+?)(?: and service (kTCCService\w+))?"
                       r"[\s,.]*$")


def log_show_command() -> list[str]:
    return ["log", "show", "--last", LOG_WINDOW, "--style", "compact", "--predicate",
            LOG_PREDICATE]


def tccd_decisions(runner: Runner) -> list[Decision] | None:
    """Recent tccd decisions, oldest first; None when ``log`` could not be asked."""
    code, output = runner(log_show_command())
    if code != 0:
        return None
    return parse_tccd_log(output)


def parse_tccd_log(text: str) -> list[Decision]:
    requests: dict[str, dict[str, str]] = {}
    order: list[str] = []
    mismatches: list[Decision] = []
    for line in text.splitlines():
        when = m.group(1) if (m := _TIME.match(line)) else ""
        if (mismatch := _MISMATCH.search(line)) and "Failed to match" in line:
            mismatches.append(Decision(when, mismatch.group(1),
                                       mismatch.group(2) or ALL_FILES, None, mismatch=True))
            continue
        if not (msg := _MSG_ID.search(line)):
            continue
        entry = requests.get(msg.group(1))
        if entry is None:
            entry = requests[msg.group(1)] = {"when": when}
            order.append(msg.group(1))
        if "AUTHREQ_ATTRIBUTION" in line:
            if m := _IDENTIFIER.search(line):
                entry["identifier"] = m.group(1)
            if m := _RESP_PATH.search(line):
                entry["path"] = m.group(1).strip()
        elif m := _SERVICE.search(line):
            entry.setdefault("service", m.group(1))
        if "AUTHREQ_RESULT" in line and (m := _AUTH_VALUE.search(line)):
            entry["auth"] = m.group(1)
            entry["when"] = when or entry["when"]
    decisions = [Decision(entry["when"], entry.get("identifier") or entry.get("path", ""),
                          entry.get("service", ""), int(entry["auth"]))
                 for key in order if "auth" in (entry := requests[key])]
    return sorted(decisions + mismatches, key=lambda d: d.when)


def about(decision: Decision, names: Sequence[str]) -> bool:
    """True when ``decision`` concerns one of ``names`` (identifiers or paths) and Full Disk
    Access (or an unknown service)."""
    if decision.service not in ("", ALL_FILES):
        return False
    return any(name and (decision.subject == name or decision.subject.startswith(name + "/"))
               for name in names)
