"""Serving commands: rpc, service, doctor."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from imsg.cli.options import (
    NON_NEGATIVE,
    Output,
    db_option,
    handles_errors,
    json_option,
    verbose_option,
)
from imsg.errors import ImsgError

F = TypeVar("F", bound=Callable[..., Any])

def optional_path(*decls: str, help: str) -> Callable[[F], F]:
    """An option that takes a PATH or, given alone, means "the default path" (value "")."""
    return click.option(*decls, is_flag=False, flag_value="", default=None, metavar="[PATH]",
                        help=help)


@click.command()
@optional_path("--socket", "socket_path",
               help="Serve many clients on a Unix socket (default $IMSG_SOCKET, else "
                    "$XDG_RUNTIME_DIR/imsg/rpc.sock or the per-user equivalent).")
@optional_path("--connect", "connect_path",
               help="Bridge stdin/stdout to a running `imsg rpc --socket` (default: "
                    "$IMSG_SOCKET, else the installed service's socket, else the default path).")
@click.option("--log-file", metavar="PATH", default=None,
              help="With --socket: log to PATH (size-capped, rotated to PATH.1) instead of "
                   "stderr.")
@click.option("--exit-with-parent", is_flag=True,
              help="With --socket: stop when the process that started it exits (used by the "
                   "service's launcher).")
@db_option
@verbose_option
@click.option("--log-level", default=None, metavar="LEVEL",
              help="debug, info, warning (default) or error.")
@handles_errors
def rpc(socket_path: str | None, connect_path: str | None, log_file: str | None,
        exit_with_parent: bool, db: str | None, verbose: bool, log_level: str | None) -> None:
    """Serve JSON-RPC 2.0: a request per line on stdin, a response or notification per line on
    stdout (nothing else is ever written there; logs go to stderr).

    Methods: chats.list, chats.get (alias group), messages.history, messages.search,
    watch.subscribe, watch.unsubscribe, send, status. Exits 0 when stdin closes.

    \b
    Example:
      echo '{"jsonrpc":"2.0","id":1,"method":"chats.list","params":{"limit":3}}' | imsg rpc
      imsg rpc --socket        # the service: many clients on a Unix socket
      imsg rpc --connect       # for a gateway that spawns a child: talk to the service
    """
    import logging

    level = _log_level(log_level, verbose)
    if socket_path is not None and connect_path is not None:
        raise click.UsageError("use --socket or --connect, not both")
    if (log_file or exit_with_parent) and socket_path is None:
        raise click.UsageError("--log-file and --exit-with-parent go with --socket")
    if socket_path is not None:
        sys.exit(_serve_socket(socket_path, db, level, log_file, exit_with_parent))
    logging.basicConfig(stream=sys.stderr, format="imsg rpc: %(message)s", level=level)
    from imsg.rpc.server import serve_stdio

    if connect_path is None:
        sys.exit(serve_stdio(db))
    from imsg.rpc.client import open_service
    from imsg.rpc.connect import bridge
    from imsg.service import Host
    from imsg.service.core import service_socket_path

    path = os.path.abspath(os.path.expanduser(connect_path)) if connect_path \
        else service_socket_path(Host.current())
    try:
        sock = open_service(path)
    except ImsgError as err:  # stay up and answer every request with the fix, as on startup
        sys.exit(serve_stdio(db, failure=err))
    sys.exit(bridge(sock, path))


def _serve_socket(path: str, db: str | None, level: int, log_file: str | None,
                  exit_with_parent: bool) -> int:
    from imsg.rpc.listener import serve_socket
    from imsg.rpc.logsetup import configure

    try:
        configure(level, os.path.abspath(os.path.expanduser(log_file)) if log_file else None)
    except OSError as exc:
        raise ImsgError(f"Cannot open the log file {log_file}: {exc.strerror or exc}") from None
    return serve_socket(path or None, db, exit_with_parent=exit_with_parent)


def _log_level(name: str | None, verbose: bool) -> int:
    import logging

    if name:
        level = logging.getLevelName(name.strip().upper())
        if isinstance(level, int):
            return level
        raise click.BadParameter(f"unknown log level {name!r}", param_hint="--log-level")
    return logging.INFO if verbose else logging.WARNING


@click.group()
def service() -> None:
    """Run `imsg rpc --socket` as a per-user service (launchd agent on macOS, systemd user
    unit on Linux), so only that service needs Full Disk Access.

    On macOS the agent runs a small app bundle (~/Applications/imsg-rpc.app) that starts imsg
    as its child: the bundle, never Python, is what you add under Full Disk Access.

    \b
    Example:
      imsg service install --dry-run
      imsg service install --sign-identity "imsg Local Signing"
      imsg service status && imsg service logs -f
      imsg rpc --connect       # what a gateway spawns to reach the service
    """


@service.command("install")
@click.option("--socket", "socket_path", default=None, metavar="PATH",
              help="Socket path (default: see `imsg rpc --help`).")
@click.option("--sign-identity", default=None, metavar="NAME",
              help="macOS: sign the bundle with this keychain identity, so the Full Disk "
                   "Access grant survives upgrades (default: ad hoc, with a warning).")
@click.option("--wait", "wait_s", default=300.0, type=click.FloatRange(min=0), metavar="SECONDS",
              show_default=True,
              help="macOS: then wait this long for Full Disk Access to arrive (0: do not wait).")
@click.option("--no-open", is_flag=True,
              help="macOS: print the System Settings pane instead of opening it.")
@click.option("--dry-run", is_flag=True, help="Print every file and command; change nothing.")
@db_option
@handles_errors
def service_install(socket_path: str | None, sign_identity: str | None, wait_s: float,
                    no_open: bool, dry_run: bool, db: str | None) -> None:
    """Build (macOS) and write the service, and (re)start it. Safe to run again: it refreshes
    everything in place, and keeps an unchanged bundle (and its grant).

    \b
    Example:
      imsg service install --dry-run
      imsg service install --socket ~/.imsg/rpc.sock --wait 0
    """
    from imsg.service import Host, install, plan
    from imsg.service.access import SETTINGS_URL, guide_access
    from imsg.service.core import record_note
    from imsg.service.steps import describe

    p = plan(Host.current(), socket_path, db, sign_identity=sign_identity)
    if dry_run:
        for line in [*describe(p.steps), record_note(p)]:
            click.echo(line)
        if p.bundle is not None:
            click.echo(f"$ open {SETTINGS_URL}  (then wait for Full Disk Access)")
        for note in p.notes:
            click.echo(f"# note: {note}")
        return
    for note in p.notes:
        click.echo(f"imsg: {note}", err=True)
    install(p)
    click.echo(f"installed {p.unit_path}; serving on {p.socket_path}; logs in {p.log_path}")
    if p.bundle is not None:
        guide_access(p.bundle.path, p.socket_path, wait_s, open_pane=not no_open,
                     say=click.echo)


@service.command("uninstall")
@click.option("--dry-run", is_flag=True, help="Print the commands; change nothing.")
@handles_errors
def service_uninstall(dry_run: bool) -> None:
    """Stop the service and remove its unit, app bundle and install record.

    \b
    Example:
      imsg service uninstall
    """
    from imsg.service import Host, installed, uninstall_steps
    from imsg.service.steps import describe, execute

    host = Host.current()
    steps = uninstall_steps(host)
    if dry_run:
        for line in describe(steps):
            click.echo(line)
        return
    was_installed = installed(host)
    execute(steps)
    if not was_installed:
        click.echo("not installed")
        return
    click.echo(f"removed {steps[1].path}")
    if host.manager == "launchd":
        from imsg.service.access import SETTINGS_PATH

        click.echo(f"Remove imsg-rpc from {SETTINGS_PATH} as well.")


@service.command("status")
@click.option("--socket", "socket_path", default=None, metavar="PATH",
              help="Socket path to check (default: the installed one).")
@json_option
@handles_errors
def service_status(socket_path: str | None, as_json: bool) -> None:
    """Say whether the service is installed, running and reachable.

    \b
    Example:
      imsg service status --json
    """
    import json

    from imsg.service import Host, status

    info = status(Host.current(), socket_path=socket_path)
    if as_json:
        click.echo(json.dumps(info))
        return
    state = info["state"]
    detail = ", ".join(f"{key} {state[key]}" for key in ("pid", "runs", "last_exit")
                       if key in state)
    click.echo(f"manager    {info['manager']}")
    click.echo(f"installed  {'yes' if info['installed'] else 'no'} ({info['unit_path']})")
    click.echo(f"running    {'yes' if info['running'] else 'no'}: {state['state']}"
               + (f" ({detail})" if detail else ""))
    click.echo(f"socket     {info['socket_path']}: {info['socket']}")
    if "bundle" in info:
        click.echo(f"bundle     {info['bundle']} (signed: {info['signature']})")
    click.echo(f"logs       {info['log_path']}")


@service.command("restart")
@handles_errors
def service_restart() -> None:
    """Restart the service (launchctl kickstart -k, or systemctl --user restart).

    \b
    Example:
      imsg service restart
    """
    from imsg.service import Host, restart

    click.echo(f"restarted: {restart(Host.current())}")


@service.command("logs")
@click.option("--follow", "-f", is_flag=True, help="Keep printing lines as they are written.")
@click.option("--lines", "-n", "count", default=50, type=NON_NEGATIVE, show_default=True,
              help="How many of the last lines to print first.")
@handles_errors
def service_logs(follow: bool, count: int) -> None:
    """Print the end of the service's log (size-capped: the older part is in <log>.1).

    \b
    Example:
      imsg service logs -n 100
      imsg service logs -f
    """
    import threading

    from imsg.service import Host, read_record
    from imsg.service.logs import follow as follow_log
    from imsg.service.logs import size, tail

    host = Host.current()
    record = read_record(host)
    path = record.log_path if record else host.log_path
    out = Output(False)
    end = size(path)
    lines = tail(path, count, end)
    if not lines and not follow and not os.path.exists(path):
        click.echo(f"imsg: no log at {path} yet", err=True)
        return
    for line in lines:
        out.line(line)
    if follow:
        stop = threading.Event()
        try:
            for line in follow_log(path, stop, offset=end):
                out.line(line)
        except KeyboardInterrupt:
            stop.set()


@service.group("identity")
def service_identity() -> None:
    """A local code-signing identity for the service's bundle (macOS).

    \b
    Example:
      imsg service identity create --dry-run
    """


@service_identity.command("create")
@click.option("--name", default="imsg Local Signing", show_default=True,
              help="The certificate's name, as --sign-identity takes it.")
@click.option("--dry-run", is_flag=True, help="Print every file and command; change nothing.")
@handles_errors
def service_identity_create(name: str, dry_run: bool) -> None:
    """Create a self-signed code-signing certificate in your login keychain (openssl +
    security; macOS asks for your password to trust it), for `imsg service install
    --sign-identity`.

    \b
    Example:
      imsg service identity create
      imsg service install --sign-identity "imsg Local Signing"
    """
    from imsg.service import Host
    from imsg.service.core import create_identity, identity_dry_run
    from imsg.service.steps import describe

    host = Host.current()
    if dry_run:
        for line in describe(identity_dry_run(host, name)):
            click.echo(line)
        return
    create_identity(host, name)
    click.echo(f'created "{name}"; now run: imsg service install --sign-identity "{name}"')


@click.command()
@click.option("--socket", "socket_path", default=None, metavar="PATH",
              help="Service socket to check (default: the installed one).")
@json_option
@db_option
@handles_errors
def doctor(socket_path: str | None, as_json: bool, db: str | None) -> None:
    """Check database access (Full Disk Access), Automation, osascript and the service (its
    state, socket, program, signature, TCC entries and tccd's decisions, and whether it can
    read the database), and print the fix for each failure. Exits 1 if a check fails.

    \b
    Example:
      imsg doctor
      imsg doctor --json | jq '.checks[] | select(.status != "ok")'
    """
    import json

    from imsg.doctor import ok, render, run_checks

    checks = run_checks(db, socket_path)
    if as_json:
        click.echo(json.dumps({"ok": ok(checks), "checks": [c.to_dict() for c in checks]}))
    else:
        for line in render(checks):
            click.echo(line)
    sys.exit(0 if ok(checks) else 1)
