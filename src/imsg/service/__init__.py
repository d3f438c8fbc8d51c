"""``imsg service``: run ``imsg rpc --socket`` as a per-user service (launchd or systemd).

Only that one process then needs Full Disk Access; gateways reach it through the socket, or
through ``imsg rpc --connect`` when they can only spawn a child.

- ``host``: the machine (platform, home, uid, environment, interpreter) and its paths;
- ``core``: plan, install, status, restart, kick, uninstall, the install record, identities;
- ``managers``: the launchd plist and systemd unit, their commands, what they report;
- ``bundle``: the macOS app bundle that holds Full Disk Access, and its launcher;
- ``signing``: codesign, and a local signing identity (openssl + security);
- ``steps``: a plan as data (``--dry-run`` prints it), executed through a command runner;
- ``text``: control-character refusal and the quoting of each file format;
- ``access``: asking the running service whether it can read the database;
- ``logs``: ``imsg service logs [-f]``.
"""

from imsg.errors import ServiceError
from imsg.service.core import (
    Plan,
    Record,
    install,
    installed,
    kick,
    plan,
    read_record,
    restart,
    status,
    uninstall_steps,
)
from imsg.service.host import Host
from imsg.service.steps import Runner, run_command

__all__ = ["Host", "Plan", "Record", "Runner", "ServiceError", "install", "installed", "kick",
           "plan", "read_record", "restart", "run_command", "status", "uninstall_steps"]
