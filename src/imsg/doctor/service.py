"""The service's checks: the questions people otherwise answer by hand with launchctl,
codesign, sqlite3 on TCC.db and ``log show``.

- ``service``: what launchd (``launchctl print``) or systemd (``systemctl --user show``) says:
  loaded, running, pid, runs, last exit code;
- ``socket``: the socket path exists, a server of this user accepts on it (peer
  credentials), its directory is private. "Running, but no socket" (clients get ENOENT) is
  fixed by ``imsg service restart``;
- ``program`` (macOS): what the agent runs: the signed bundle, or (loudly) an interpreter,
  which would make Python the Full Disk Access holder for every script;
- ``signature`` (macOS): ``codesign`` on the bundle, and whether its designated requirement or
  code hash changed since install (a changed requirement no longer matches the grant);
- ``tcc`` (macOS): the Full Disk Access rows of TCC.db for the bundle (and any interpreter),
  when this terminal may read it;
- ``tccd`` (macOS): tccd's recent decisions about the bundle in the unified log;
- ``access``: the running service's own answer to ``status``: can it read the database? When
  it cannot, the evidence above picks the cause and its fix: not granted, a grant for another
  build, an interpreter as holder, or granted after the service started (restart it).

Each failing check carries the one command or settings step that fixes it. Nothing is written.
"""

from __future__ import annotations

import os
import plistlib
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from imsg.doctor.checks import Check
from imsg.doctor.tcc import (
    Decision,
    TccRow,
    about,
    is_interpreter,
    tcc_paths,
    tcc_rows,
    tccd_decisions,
)
from imsg.errors import ServiceError
from imsg.rpc.sockpath import default_socket_path, probe, socket_owner
from imsg.service.access import SETTINGS_PATH, Access, ask_service
from imsg.service.core import Record, read_record
from imsg.service.host import APP_NAME, LABEL, Host
from imsg.service.managers import ServiceState, read_state
from imsg.service.signing import Signature, read_signature
from imsg.service.steps import Runner

RESTART = "`imsg service restart`"
REINSTALL = "`imsg service install`"


@dataclass
class Evidence:
    """What the macOS checks found, for the ``access`` check's diagnosis."""

    interpreter: str | None = None
    signature_changed: bool = False
    granted: bool | None = None  # TCC.db: True allowed, False denied or absent, None unknown
    decisions: list[Decision] = field(default_factory=list)


def service_checks(host: Host, runner: Runner, socket_path: str | None = None,
                   tcc_db_paths: Sequence[str] | None = None) -> list[Check]:
    try:
        unit_path = host.unit_path
    except ServiceError as err:
        return [Check("service", "skip", err.message)]
    record = read_record(host)
    sock = socket_path or (record.socket_path if record else default_socket_path(
        host.env, host.platform, host.home, host.uid))
    unit_path = record.unit_path if record else unit_path
    if record is None and not os.path.exists(unit_path):
        return [Check("service", "skip", "not installed (only service mode needs it)",
                      fix=f"{REINSTALL} runs `imsg rpc --socket` as a per-user service"),
                check_socket(sock, None)]
    state = read_state(host, runner)
    checks = [check_service(state), check_socket(sock, state)]
    evidence = Evidence()
    if host.manager == "launchd":
        checks.append(check_program(unit_path, record, state, evidence))
        bundle = record.bundle if record and record.bundle else host.bundle_path
        checks.append(check_signature(bundle, record, runner, evidence))
        names = [LABEL, bundle]
        rows = tcc_rows(tcc_db_paths if tcc_db_paths is not None else tcc_paths(host.home))
        checks.append(check_tcc(rows, names, bundle, evidence))
        checks.append(check_tccd(tccd_decisions(runner), names, bundle, evidence))
    if checks[1].status in ("ok", "warn"):
        checks.append(check_access(ask_service(sock), host, evidence))
    else:
        checks.append(Check("access", "skip", "no service answers on the socket (see above)"))
    return checks


def check_service(state: ServiceState) -> Check:
    runs = f", runs {state.runs}" if state.runs is not None else ""
    last = f", last exit {state.last_exit}" if state.last_exit else ""
    if not state.loaded:
        return Check("service", "fail", f"installed but not loaded by {state.manager}"
                     f"{': ' + state.detail if state.detail else ''}",
                     fix=f"{REINSTALL} (writes and loads it again)")
    if not state.running:
        return Check("service", "fail", f"loaded but not running ({state.state}{runs}{last})",
                     fix=f"{RESTART}; if it stops again, `imsg service logs` says why")
    crashing = (state.runs or 0) >= 5 and state.last_exit not in (None, "0", "(never exited)")
    detail = f"running (pid {state.pid}{runs}{last})"
    if crashing:
        return Check("service", "warn", detail + ": it keeps exiting and being restarted",
                     fix="`imsg service logs` shows why it exits")
    return Check("service", "ok", detail)


def check_socket(path: str, state: ServiceState | None) -> Check:
    found = probe(path)
    running = state is not None and state.running
    if found == "missing":
        if state is None:
            return Check("socket", "skip", f"no service socket at {path}")
        if running:
            return Check("socket", "fail", f"the service is running (pid {state.pid}) but "
                         f"{path} does not exist: clients get ENOENT", fix=RESTART)
        return Check("socket", "fail", f"no socket at {path}: the service is not serving",
                     fix=RESTART)
    if found == "not-a-socket":
        return Check("socket", "fail", f"{path} exists but is not a socket",
                     fix=f"Move {path} away, then {RESTART}")
    if found == "stale":
        return Check("socket", "fail", f"{path} exists but nothing accepts on it (clients get "
                     "ECONNREFUSED)", fix=RESTART)
    if found == "foreign":
        return Check("socket", "fail", f"{path} is served by another user (uid "
                     f"{socket_owner(path)}): the path was taken over",
                     fix=f"Stop that process, remove {path}, then {RESTART}")
    problem = directory_problem(os.path.dirname(path))
    if problem:
        return Check("socket", "fail", f"{path} is listening, but {problem}",
                     fix=f"`chmod go-w {os.path.dirname(path)}` (or use a private --socket "
                         f"directory), then {RESTART}")
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    if mode & 0o077:
        return Check("socket", "warn", f"{path} is listening but mode {mode:04o} lets other "
                     "users try to connect", fix=RESTART)
    return Check("socket", "ok", f"{path} is listening, served by you (mode {mode:04o})")


def directory_problem(directory: str) -> str | None:
    """Why ``directory`` is not a safe home for the socket (None when it is)."""
    try:
        st = os.lstat(directory)
    except OSError as exc:
        return f"its directory cannot be checked ({exc.strerror})"
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return f"its directory {directory} is a symbolic link"
    if mode & stat.S_ISVTX and st.st_uid in (0, os.getuid()):
        return None
    if st.st_uid != os.getuid():
        return f"its directory {directory} belongs to uid {st.st_uid}"
    if mode & 0o022:
        return f"its directory {directory} is writable by others (mode {mode:04o})"
    return None


def check_program(unit_path: str, record: Record | None, state: ServiceState,
                  evidence: Evidence) -> Check:
    program = _plist_program(unit_path) or state.program
    if not program:
        return Check("program", "fail", f"{unit_path} names no program", fix=REINSTALL)
    if is_interpreter(program) or is_interpreter(os.path.realpath(program)):
        evidence.interpreter = program
        return Check("program", "warn", f"!! THE AGENT RUNS AN INTERPRETER ({program}): it "
                     "becomes the Full Disk Access holder, so every script it runs can read "
                     "your messages", fix=f"{REINSTALL} (runs the {APP_NAME} app instead), then "
                     f"remove {os.path.basename(program)} from {SETTINGS_PATH}")
    bundle = record.bundle if record else None
    if (bundle and program.startswith(bundle + "/")) or ".app/Contents/MacOS/" in program:
        return Check("program", "ok", f"the agent runs the app bundle's launcher {program}")
    return Check("program", "warn", f"the agent runs {program}, not the {APP_NAME} app",
                 fix=REINSTALL)


def _plist_program(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            agent = plistlib.load(fh)
        arguments = agent.get("ProgramArguments") or [agent.get("Program")]
        return str(arguments[0]) if arguments and arguments[0] else None
    except (OSError, ValueError, plistlib.InvalidFileException, AttributeError):
        return None


def check_signature(bundle: str, record: Record | None, runner: Runner,
                    evidence: Evidence) -> Check:
    if not os.path.isdir(bundle):
        return Check("signature", "fail", f"the app bundle {bundle} is missing", fix=REINSTALL)
    now = read_signature(bundle, runner)
    if not now.signed:
        return Check("signature", "fail", f"{bundle} is not signed ({now.detail})",
                     fix=REINSTALL)
    if not now.valid:
        evidence.signature_changed = True
        return Check("signature", "fail", f"{bundle}'s signature does not verify "
                     f"({now.detail}): it was modified after signing",
                     fix=f"{REINSTALL} (rebuilds and signs it), then grant it again")
    before = Signature.from_dict(record.signature or {}) if record else None
    if before and before.requirement and now.requirement != before.requirement:
        evidence.signature_changed = True
        return Check("signature", "fail", "the designated requirement changed since install "
                     f"(was {before.requirement}; now {now.requirement}), so the Full Disk "
                     "Access grant no longer matches",
                     fix=f"In {SETTINGS_PATH}, remove {APP_NAME} and add {bundle} again")
    who = "ad hoc" if now.adhoc else f"by {now.authority or 'an unnamed identity'}"
    changed = before is not None and before.cdhash is not None and before.cdhash != now.cdhash
    since = "; rebuilt since install, same requirement" if changed else ""
    if now.adhoc:
        if changed:
            evidence.signature_changed = True
        return Check("signature", "warn", f"signed {who}{since}: each rebuild needs the Full "
                     "Disk Access grant again", fix="`imsg service identity create`, then `imsg "
                     "service install --sign-identity \"imsg Local Signing\"`")
    return Check("signature", "ok", f"signed {who} ({now.identifier}){since or '; unchanged'}")


def check_tcc(rows: list[TccRow] | None, names: Sequence[str], bundle: str,
              evidence: Evidence) -> Check:
    if rows is None:
        return Check("tcc", "skip", "TCC.db is not readable from here (that needs Full Disk "
                     "Access for this terminal)")
    ours = [row for row in rows if row.client in names]
    python = [row for row in rows if is_interpreter(row.client) and row.auth_value == 2]
    if python:
        note = ", ".join(row.client for row in python)
        return Check("tcc", "warn", f"an interpreter has Full Disk Access ({note}): every "
                     "script it runs can read your messages",
                     fix=f"Remove it from {SETTINGS_PATH}; the {APP_NAME} app is the holder")
    if not ours:
        evidence.granted = False
        return Check("tcc", "fail", f"{APP_NAME} is not in the Full Disk Access list",
                     fix=f"Open {SETTINGS_PATH}, click +, and add {bundle}")
    allowed = any(row.auth_value == 2 for row in ours)
    evidence.granted = allowed
    listing = ", ".join(f"{row.client}: auth_value {row.auth_value} ({row.verdict})"
                        for row in ours)
    if allowed:
        return Check("tcc", "ok", listing)
    return Check("tcc", "fail", f"{listing}: Full Disk Access is off",
                 fix=f"Turn {APP_NAME} on in {SETTINGS_PATH}")


def check_tccd(decisions: list[Decision] | None, names: Sequence[str], bundle: str,
               evidence: Evidence) -> Check:
    if decisions is None:
        return Check("tccd", "skip", "the unified log (`log show`) could not be read")
    ours = [d for d in decisions if about(d, names)]
    evidence.decisions = ours
    if not ours:
        interpreted = [d for d in decisions if is_interpreter(d.subject)
                       and d.service in ("", "kTCCServiceSystemPolicyAllFiles")]
        if interpreted:
            last = interpreted[-1]
            evidence.interpreter = evidence.interpreter or last.subject
            return Check("tccd", "warn", f"tccd decided Full Disk Access for {last.subject} "
                         f"at {last.when}: an interpreter is the responsible process",
                         fix=REINSTALL)
        return Check("tccd", "skip", f"no tccd decisions about {APP_NAME} in the last hour")
    last = ours[-1]
    if last.mismatch:
        evidence.signature_changed = True
        return Check("tccd", "fail", f"at {last.when} tccd found that {last.subject} no longer "
                     "matches the code requirement of its Full Disk Access entry",
                     fix=f"In {SETTINGS_PATH}, remove {APP_NAME} and add {bundle} again")
    verdict = f"authValue={last.auth_value}"
    if last.auth_value == 2:
        return Check("tccd", "ok", f"at {last.when} tccd allowed {last.subject} ({verdict})")
    return Check("tccd", "fail", f"at {last.when} tccd denied {last.subject} Full Disk Access "
                 f"({verdict})", fix=f"Turn {APP_NAME} on in {SETTINGS_PATH}")


def check_access(access: Access, host: Host, evidence: Evidence) -> Check:
    if access.ready is None:
        return Check("access", "fail", access.detail, fix=RESTART)
    if access.ready:
        return Check("access", "ok", f"the service reads the database {access.detail}".rstrip())
    detail = f"the service cannot read the database: {access.detail}"
    if host.manager != "launchd":
        return Check("access", "fail", detail, fix="Install again with --db pointing at a "
                     "readable chat.db (`imsg service install --db PATH`)")
    return Check("access", "fail", detail, fix=_access_fix(host, evidence))


def _access_fix(host: Host, evidence: Evidence) -> str:
    """Which of the causes of a denied read the evidence points at."""
    bundle = host.bundle_path
    if evidence.interpreter:
        return f"{REINSTALL}: the agent runs an interpreter, not the {APP_NAME} app"
    if evidence.signature_changed:
        return f"In {SETTINGS_PATH}, remove {APP_NAME} and add {bundle} again"
    last = evidence.decisions[-1] if evidence.decisions else None
    granted = evidence.granted or (last is not None and last.auth_value == 2)
    if granted:
        return f"{RESTART}: access was granted after the service started"
    if evidence.granted is False or (last is not None and last.auth_value == 0):
        return f"Open {SETTINGS_PATH}, add {bundle} and turn it on"
    return f"Add {bundle} in {SETTINGS_PATH} and turn it on, then {RESTART}"
