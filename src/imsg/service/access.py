"""Does the running service have Full Disk Access? Ask it, and wait for the grant.

The only reliable witness is the service itself: ``ask_service`` connects to its socket (peer
credentials checked, ``imsg.rpc.client.connect_checked``) and sends one ``status`` request.
Its answer says whether the database is readable: ``database.ready`` (protocol v1), or a
result at all from servers that answer every request with their startup error when the
database cannot be opened. ``wait_for_access`` polls that until it is readable or the time is
up (the server retries the database open on ``status``, so no restart is needed once the user
flips the switch).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from imsg.errors import SocketInUse
from imsg.rpc.client import connect_checked
from imsg.service.steps import Runner, run_command

SETTINGS_URL = "x-apple.systempreferences:com.apple.preference.security?Privacy_AllFiles"
SETTINGS_PATH = "System Settings › Privacy & Security › Full Disk Access"
STATUS_REQUEST = b'{"jsonrpc":"2.0","id":"imsg-access-check","method":"status"}\n'
MAX_REPLY = 4 * 1024 * 1024


@dataclass(frozen=True)
class Access:
    """``ready``: the database is readable (True), is not (False), or the service did not
    answer (None). ``detail``: what it said."""

    ready: bool | None
    detail: str


def ask_service(socket_path: str, timeout: float = 5.0) -> Access:
    try:
        sock = connect_checked(socket_path, timeout=timeout)
    except SocketInUse as err:
        return Access(None, err.message)
    except OSError as exc:
        return Access(None, f"no service answers on {socket_path} ({exc.strerror or exc})")
    try:
        with sock:
            sock.settimeout(timeout)
            sock.sendall(STATUS_REQUEST)
            with sock.makefile("rb") as stream:
                line = stream.readline(MAX_REPLY)
    except OSError as exc:
        return Access(None, f"the service did not answer `status` ({exc.strerror or exc})")
    try:
        reply = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return Access(None, "the service's answer to `status` is not JSON")
    return database_access(reply)


def database_access(reply: Any) -> Access:
    """Read database readiness from a ``status`` response (either protocol shape)."""
    if not isinstance(reply, dict):
        return Access(None, "unexpected answer to `status`")
    if "error" in reply:
        error = reply["error"] if isinstance(reply["error"], dict) else {}
        data = error.get("data")
        if isinstance(data, dict):
            data = data.get("reason") or data.get("detail")
        return Access(False, str(data or error.get("message") or "status failed"))
    result = reply.get("result")
    if not isinstance(result, dict):
        return Access(None, "unexpected answer to `status`")
    database = result.get("database")
    if isinstance(database, dict):
        ready = bool(database.get("ready"))
        detail = database.get("path") if ready else database.get("error")
        return Access(ready, str(detail or ""))
    return Access(True, str(result.get("db_path") or ""))


def wait_for_access(socket_path: str, timeout_s: float, every_s: float = 2.0, *,
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep) -> Access:
    """Poll ``ask_service`` until the database is readable or ``timeout_s`` passed; the last
    answer."""
    deadline = clock() + timeout_s
    while True:
        access = ask_service(socket_path)
        if access.ready or clock() >= deadline:
            return access
        sleep(every_s)


def guide_access(bundle: str, socket_path: str, wait_s: float, *, open_pane: bool = True,
                 say: Callable[[str], None] = print, runner: Runner = run_command,
                 every_s: float = 2.0) -> bool | None:
    """After an install on macOS: name the bundle to add, open (or print) the Full Disk
    Access pane, then wait up to ``wait_s`` for the service to read the database. True when
    access arrived, False when not in time, None when not waited for."""
    if ask_service(socket_path).ready:
        say(f"Full Disk Access: {bundle} has it already; the service reads the database.")
        return True
    say(f"Full Disk Access: in {SETTINGS_PATH}, add {bundle} (click +, or drag it in) and turn "
        "it on. Add nothing else: not python3, not your terminal, for the service's sake.")
    opened = open_pane and runner(["open", SETTINGS_URL])[0] == 0
    if not opened:
        say(f"Open the pane with: open '{SETTINGS_URL}'")
    if wait_s <= 0:
        return None
    say(f"Waiting up to {wait_s:g}s for access (asking the service's `status`)…")
    access = wait_for_access(socket_path, wait_s, every_s)
    if access.ready:
        say("Full Disk Access arrived: the service reads the database.")
        return True
    say(f"No access yet after {wait_s:g}s ({access.detail or 'no answer'}). Once it is granted, "
        "`imsg doctor` confirms it; `imsg service restart` if it still cannot read.")
    return False
