"""``diagnose``: what ``imsg doctor`` finds, plus what this server itself depends on.

``imsg doctor``'s checks (database access, osascript, Automation, the service), then
``contacts`` (can names be read: the AddressBook needs the same Full Disk Access as chat.db),
``bridge`` (is the IMCore helper ready: tapbacks on older messages, typing, read receipts) and
``server`` (version, database path, what sending is allowed). Every failing line carries its
fix; in an MCP host the app to grant Full Disk Access to is the host (Claude, Cursor, the
terminal running the agent), which must be restarted afterwards.
"""

from __future__ import annotations

from imsg import __version__
from imsg.doctor import Check, ok, render, run_checks
from imsg.mcp.answers import Answer
from imsg.mcp.sending import Policy

OWN = ("database", "osascript", "automation")
HOST_FIX = ("Grant Full Disk Access to the MCP host app (System Settings > Privacy & Security "
            "> Full Disk Access), then restart it")


def diagnose(db_path: str, policy: Policy, bridge_ready: bool) -> Answer:
    from imsg.chatdb.contacts import contact_book

    # The service checks are about `imsg rpc --socket`: shown only when they found something.
    checks = [c for c in run_checks(db_path) if c.name in OWN or c.status != "skip"]
    status = contact_book().status()
    if status.available:
        checks.append(Check("contacts", "ok", f"{status.contacts} contacts from {status.stores}"
                                              f" store{'s' if status.stores != 1 else ''}"))
    else:
        detail = "; ".join(status.problems) or "no AddressBook could be read"
        checks.append(Check("contacts", "warn", f"names unavailable: {detail}", fix=HOST_FIX))
    if bridge_ready:
        checks.append(Check("bridge", "ok", "IMCore helper ready: tapbacks on any message, "
                                            "typing, mark_read"))
    else:
        checks.append(Check("bridge", "skip", "IMCore helper not running: tapbacks only on a "
                                              "chat's latest message; no typing or mark_read",
                            fix="`imsg launch`, then restart the MCP server"))
    checks.append(Check("server", "ok", f"imsg {__version__}, {db_path}, {policy.describe()}"))
    text = "\n".join(render(checks))
    data = {"ok": ok(checks), "checks": [check.to_dict() for check in checks],
            "contacts": {"available": status.available, "contacts": status.contacts,
                         "stores": status.stores, "problems": list(status.problems)},
            "bridge": {"ready": bridge_ready},
            "server": {"version": __version__, "database": db_path, "mode": policy.describe()}}
    return Answer(text, data)
