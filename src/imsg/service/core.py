"""Installing, inspecting, restarting and removing the service.

``plan`` computes every file and command of an install without side effects (it may ask
read-only questions: which identities exist, whether clang is installed, what the current
bundle's signature is); ``install`` performs it and writes the install record
(``service.json`` in the state directory: socket, log, program, bundle and its signature as
installed), which ``status``, ``restart``, ``logs``, ``kick`` and ``imsg doctor`` read later.

On macOS the plan builds (or keeps) the app bundle (``imsg.service.bundle``) and signs it with
``--sign-identity`` or ad hoc (with a warning: each changed bundle needs the grant again).
The bundle is rebuilt only when its launcher source, builder or identity changed, or its
signature no longer verifies or differs from the recorded one; otherwise it is kept, and so
is its Full Disk Access grant. On Linux the plan writes the systemd user unit.

Failures: ``InvalidInput`` for a path with a control character (it would inject directives
into a unit or break a plist) or a socket path too long for ``sun_path``; ``ServiceError``
for an unsupported platform, a missing signing identity or a failing command.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from imsg.errors import InvalidInput, ServiceError
from imsg.rpc.sockpath import MAX_PATH_BYTES, default_socket_path, probe
from imsg.service import managers
from imsg.service.bundle import Bundle, build_steps, choose_builder, plan_bundle
from imsg.service.host import Host, Manager
from imsg.service.signing import (
    Signature,
    identities,
    identity_steps,
    read_signature,
    require_identity,
    sign_argv,
)
from imsg.service.steps import Runner, Step, execute, run_command
from imsg.service.text import refuse_control

ADHOC_WARNING = ("The bundle is signed ad hoc: macOS ties the Full Disk Access grant to this "
                 "exact build, so every reinstall that changes it needs the grant again. Sign "
                 "it with a stable identity: `imsg service identity create`, then `imsg service "
                 "install --sign-identity \"imsg Local Signing\"`.")


@dataclass(frozen=True)
class Record:
    """What was installed (``service.json``)."""

    manager: Manager
    socket_path: str
    log_path: str
    unit_path: str
    command: list[str]
    program: list[str]
    bundle: str | None = None
    builder: str | None = None
    identity: str | None = None
    signature: dict[str, Any] | None = None
    installed_at: str = ""


def read_record(host: Host) -> Record | None:
    """The install record, or None (not installed, or unreadable)."""
    try:
        with open(host.record_path, encoding="utf-8") as fh:
            data = json.load(fh)
        return Record(**{key: data[key] for key in Record.__dataclass_fields__ if key in data})
    except (OSError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class Plan:
    host: Host
    socket_path: str
    log_path: str
    unit_path: str
    unit_text: str
    command: list[str]
    program: list[str]
    steps: list[Step]
    bundle: Bundle | None = None
    identity: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def manager(self) -> Manager:
        return self.host.manager


def plan(host: Host, socket_path: str | None = None, db_path: str | None = None, *,
         sign_identity: str | None = None, runner: Runner = run_command) -> Plan:
    """Everything ``install`` would write and run (see the module docstring)."""
    manager = host.manager
    sock = _absolute(host, socket_path) if socket_path else default_socket_path(
        host.env, host.platform, host.home, host.uid)
    refuse_control(sock, "--socket")
    if len(os.fsencode(sock)) > MAX_PATH_BYTES:
        raise InvalidInput(f"Socket path too long ({len(os.fsencode(sock))} bytes, at most "
                           f"{MAX_PATH_BYTES}): {sock}")
    log_path = refuse_control(host.log_path, "The log path ($XDG_STATE_HOME or home)")
    unit_path = refuse_control(host.unit_path, "The unit path ($XDG_CONFIG_HOME or home)")
    refuse_control(host.executable, "The Python interpreter's path")
    command = [host.executable, "-m", "imsg", "rpc", "--socket", sock, "--log-file", log_path]
    if manager == "launchd":
        command.append("--exit-with-parent")
    if db_path:
        command += ["--db", refuse_control(_absolute(host, db_path), "--db")]
    steps = [Step("mkdir", os.path.dirname(log_path), private=True, why="logs")]
    if host.state_dir != os.path.dirname(log_path):
        steps.append(Step("mkdir", host.state_dir, private=True, why="the install record"))
    if manager == "systemd":
        unit_text = managers.systemd_unit(command, log_path)
        steps += [Step("write", unit_path, unit_text), *_load_steps(host, unit_path)]
        return Plan(host, sock, log_path, unit_path, unit_text, command, command, steps)
    refuse_control(host.bundle_path, "The app bundle's path (home)")
    if sign_identity:
        require_identity(refuse_control(sign_identity, "--sign-identity"), runner)
    bundle = plan_bundle(host, command, choose_builder(runner))
    unit_text = managers.launchd_plist(bundle.executable, log_path)
    notes = [] if sign_identity else [ADHOC_WARNING]
    if _bundle_current(host, bundle, sign_identity, runner):
        notes.append(f"{bundle.path} is up to date and kept (its Full Disk Access grant stays "
                     "valid).")
    else:
        steps += build_steps(bundle, sign_argv(sign_identity))
    steps += [Step("write", unit_path, unit_text), *_load_steps(host, unit_path)]
    return Plan(host, sock, log_path, unit_path, unit_text, command, [bundle.executable],
                steps, bundle, sign_identity, notes)


def _absolute(host: Host, path: str) -> str:
    if path == "~" or path.startswith("~/"):
        path = host.home + path[1:]
    return os.path.abspath(path)


def _load_steps(host: Host, unit_path: str) -> list[Step]:
    return [Step("run", argv=argv, may_fail=may_fail)
            for argv, may_fail in managers.load_commands(host, unit_path)]


def _bundle_current(host: Host, bundle: Bundle, identity: str | None, runner: Runner) -> bool:
    record = read_record(host)
    if record is None or record.bundle != bundle.path or record.builder != bundle.builder \
            or record.identity != identity or not os.path.exists(bundle.executable):
        return False
    try:
        with open(bundle.source_path, encoding="utf-8") as fh:
            if fh.read() != bundle.source:
                return False
    except OSError:
        return False
    now = read_signature(bundle.path, runner)
    recorded = Signature.from_dict(record.signature or {})
    return now.valid and now.cdhash is not None and now.cdhash == recorded.cdhash


def install(p: Plan, runner: Runner = run_command) -> Record:
    """Perform the plan and write the install record. Raises ServiceError."""
    execute(p.steps, runner)
    signature = read_signature(p.bundle.path, runner) if p.bundle else None
    record = Record(
        manager=p.manager, socket_path=p.socket_path, log_path=p.log_path,
        unit_path=p.unit_path, command=p.command, program=p.program,
        bundle=p.bundle.path if p.bundle else None,
        builder=p.bundle.builder if p.bundle else None, identity=p.identity,
        signature=signature.to_dict() if signature else None,
        installed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    execute([Step("write", p.host.record_path, json.dumps(asdict(record), indent=2) + "\n",
                  mode=0o600)])
    return record


def record_note(p: Plan) -> str:
    """The dry-run line for the record ``install`` writes last."""
    source = " and the bundle's signature (`codesign -dv`, `codesign -d -r-`)" if p.bundle \
        else ""
    return f"# write {p.host.record_path}: socket, log, program{source}"


def uninstall_steps(host: Host) -> list[Step]:
    """Stop and unload the service; remove its unit, bundle and record."""
    record = read_record(host)
    steps = [Step("run", argv=argv, may_fail=True) for argv in managers.unload_commands(host)]
    steps.append(Step("remove", record.unit_path if record else host.unit_path))
    if host.manager == "systemd":
        steps.append(Step("run", argv=(*managers.SYSTEMCTL, "daemon-reload"), may_fail=True))
    bundle = record.bundle if record and record.bundle else host.bundle_path
    if host.manager == "launchd":
        steps.append(Step("remove", bundle, why="remove it from Full Disk Access too"))
    steps.append(Step("remove", host.record_path))
    return steps


def installed(host: Host) -> bool:
    record = read_record(host)
    return os.path.exists(record.unit_path if record else host.unit_path)


def status(host: Host, runner: Runner = run_command,
           socket_path: str | None = None) -> dict[str, Any]:
    """``{manager, installed, running, state, socket_path, socket, log_path, unit_path,
    program, bundle?, signature?}``; ``state`` is what the manager reports."""
    record = read_record(host)
    state = managers.read_state(host, runner)
    sock = socket_path or (record.socket_path if record else default_socket_path(
        host.env, host.platform, host.home, host.uid))
    info: dict[str, Any] = {
        "manager": host.manager,
        "installed": installed(host),
        "running": state.running,
        "state": state.to_dict(),
        "socket_path": sock,
        "socket": probe(sock),
        "log_path": record.log_path if record else host.log_path,
        "unit_path": record.unit_path if record else host.unit_path,
        "program": record.program if record else None,
    }
    if record and record.bundle:
        info["bundle"] = record.bundle
        info["signature"] = "ad hoc" if not record.identity else record.identity
    return info


def service_socket_path(host: Host) -> str:
    """Where clients find the service: ``$IMSG_SOCKET``, else the installed service's socket,
    else the default path."""
    record = None if host.env.get("IMSG_SOCKET") else read_record(host)
    return record.socket_path if record else default_socket_path(
        host.env, host.platform, host.home, host.uid)


def restart(host: Host, runner: Runner = run_command) -> str:
    """Restart the service; the command run. ServiceError when it is not installed or the
    manager refuses."""
    if not installed(host):
        raise ServiceError("The service is not installed: run `imsg service install`")
    argv = managers.restart_command(host)
    code, output = runner(argv)
    if code != 0:
        raise ServiceError(f"`{shlex.join(argv)}` failed ({code}): {output or 'no output'}")
    return shlex.join(argv)


def kick(socket_path: str, host: Host | None = None, runner: Runner = run_command) -> str | None:
    """Restart the installed service if it is the one serving ``socket_path``; what was done
    (for the caller's message), or None when no installed service serves that path."""
    host = host or Host.current()
    record = read_record(host)
    if record is None or os.path.abspath(socket_path) != record.socket_path \
            or not os.path.exists(record.unit_path):
        return None
    try:
        return f"Restarted the service (`{restart(host, runner)}`)"
    except ServiceError as err:
        return f"Tried to restart the service ({err.message})"


def create_identity(host: Host, name: str, runner: Runner = run_command) -> list[Step]:
    """Make the self-signed code-signing identity ``name`` (``imsg.service.signing``); the
    steps performed. ServiceError when it exists already or a step fails; the private key
    never outlives the run."""
    if host.platform != "darwin":
        raise ServiceError("Code-signing identities are for macOS, where the service's app "
                           "bundle is signed; Linux needs none")
    if any(label == name for _, label in identities(runner)):
        raise ServiceError(f'A code-signing identity "{name}" exists already; use it with '
                           f'`imsg service install --sign-identity "{name}"`')
    steps = identity_steps(host, name, secrets.token_hex(16))
    try:
        execute(steps, runner)
    finally:
        execute([steps[-1]])
    require_identity(name, runner)
    return steps


def identity_dry_run(host: Host, name: str) -> list[Step]:
    return identity_steps(host, name, "<one-time random password>")


__all__ = ["ADHOC_WARNING", "Plan", "Record", "create_identity", "identity_dry_run",
           "install", "installed", "kick", "plan", "read_record", "record_note", "restart",
           "service_socket_path", "status", "uninstall_steps"]
