"""Serving commands: rpc, service, doctor."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from imsg.cli.options import db_option, handles_errors, json_option, verbose_option
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
               help="Bridge stdin/stdout to a running `imsg rpc --socket` (same default path).")
@db_option
@verbose_option
@click.option("--log-level", default=None, metavar="LEVEL",
              help="debug, info, warning (default) or error.")
@handles_errors
def rpc(socket_path: str | None, connect_path: str | None, db: str | None, verbose: bool,
        log_level: str | None) -> None:
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

    logging.basicConfig(stream=sys.stderr, format="imsg rpc: %(message)s",
                        level=_log_level(log_level, verbose))
    if socket_path is not None and connect_path is not None:
        raise click.UsageError("use --socket or --connect, not both")
    if socket_path is not None:
        from imsg.rpc.listener import serve_socket

        sys.exit(serve_socket(socket_path or None, db))
    from imsg.rpc.server import serve_stdio

    if connect_path is None:
        sys.exit(serve_stdio(db))
    from imsg.rpc.connect import bridge, connect
    from imsg.rpc.listener import default_socket_path

    try:
        sock = connect(connect_path or default_socket_path())
    except ImsgError as err:  # stay up and answer every request with the fix, as on startup
        sys.exit(serve_stdio(db, failure=err))
    sys.exit(bridge(sock))


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

    \b
    Example:
      imsg service install --dry-run
      imsg service install && imsg service status
      imsg rpc --connect       # what a gateway spawns to reach the service
    """


def service_plan(socket_path: str | None, db: str | None) -> Any:
    from imsg.service import plan

    return plan(socket_path, db)


@service.command("install")
@click.option("--socket", "socket_path", default=None, metavar="PATH",
              help="Socket path (default: see `imsg rpc --help`).")
@click.option("--dry-run", is_flag=True, help="Print the unit and the commands; change nothing.")
@db_option
@handles_errors
def service_install(socket_path: str | None, dry_run: bool, db: str | None) -> None:
    """Write the service unit and start it (again, if it was running).

    \b
    Example:
      imsg service install --socket /tmp/imsg/rpc.sock --dry-run
    """
    from imsg.service import install

    p = service_plan(socket_path, db)
    if dry_run:
        click.echo(f"# would write {p.unit_path}:")
        click.echo(p.unit_text.rstrip("\n"))
        click.echo(f"# would create {os.path.dirname(p.log_path)}/ for logs")
        for argv in p.install_commands:
            click.echo(f"# would run: {' '.join(argv)}")
        return
    install(p)
    click.echo(f"installed {p.unit_path}; serving on {p.socket_path}; logs in {p.log_path}")


@service.command("uninstall")
@click.option("--dry-run", is_flag=True, help="Print the commands; change nothing.")
@handles_errors
def service_uninstall(dry_run: bool) -> None:
    """Stop the service and remove its unit.

    \b
    Example:
      imsg service uninstall
    """
    from imsg.service import uninstall

    p = service_plan(None, None)
    if dry_run:
        for argv in p.uninstall_commands:
            click.echo(f"# would run: {' '.join(argv)}")
        click.echo(f"# would remove {p.unit_path}")
        return
    removed = uninstall(p)
    click.echo(f"removed {p.unit_path}" if removed else "not installed")


@service.command("status")
@click.option("--socket", "socket_path", default=None, metavar="PATH",
              help="Socket path to check (default: see `imsg rpc --help`).")
@json_option
@handles_errors
def service_status(socket_path: str | None, as_json: bool) -> None:
    """Say whether the service is installed, running and reachable.

    \b
    Example:
      imsg service status --json
    """
    import json

    from imsg.service import status

    info = status(service_plan(socket_path, None))
    if as_json:
        click.echo(json.dumps(info))
        return
    click.echo(f"manager    {info['manager']}")
    click.echo(f"installed  {'yes' if info['installed'] else 'no'} ({info['unit_path']})")
    click.echo(f"running    {'yes' if info['running'] else 'no'} {info['detail']}".rstrip())
    click.echo(f"socket     {info['socket_path']}: {info['socket']}")
    click.echo(f"logs       {info['log_path']}")


@click.command()
@click.option("--socket", "socket_path", default=None, metavar="PATH",
              help="Service socket to check (default: see `imsg rpc --help`).")
@json_option
@db_option
@handles_errors
def doctor(socket_path: str | None, as_json: bool, db: str | None) -> None:
    """Check database access (Full Disk Access), Automation permission, osascript and the
    service socket, and print the fix for each failure. Exits 1 if a check fails.

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
