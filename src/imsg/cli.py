"""The ``imsg`` command: parse options, call the library, format. Nothing else.

Library errors (``imsg.errors``) become one line on stderr and their exit code; stdout carries
only results (one JSON object per line with ``--json``, flushed per line).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from imsg import __version__, format
from imsg.chatdb.models import to_json
from imsg.chatdb.reader import ChatDB, Filters
from imsg.errors import ImsgError

F = TypeVar("F", bound=Callable[..., Any])


class Output:
    """Writes results to stdout, one line at a time, flushed so pipes see them at once."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._out = sys.stdout.buffer

    def line(self, text: str) -> None:
        self._out.write(text.encode("utf-8", "surrogateescape") + b"\n")
        self._out.flush()

    def obj(self, obj: Any) -> None:
        self._out.write(to_json(obj) + b"\n")
        self._out.flush()


def fail(err: ImsgError) -> None:
    click.echo(f"imsg: {err.message}", err=True)
    sys.exit(err.exit_code)


def handles_errors(func: F) -> F:
    """Turn library errors into one stderr line + exit code; a closed pipe into a quiet exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ImsgError as err:
            fail(err)
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): exit quietly, without a traceback.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)

    return wrapper  # type: ignore[return-value]


def db_option(func: F) -> F:
    return click.option(
        "--db", "db", envvar="IMSG_DB", type=click.Path(dir_okay=False),
        default=None, show_envvar=True,
        help="Path to chat.db (default ~/Library/Messages/chat.db).",
    )(func)


def json_option(func: F) -> F:
    return click.option(
        "--json", "-j", "--json-output", "--jsonOutput", "as_json", is_flag=True,
        help="One JSON object per line.",
    )(func)


def compat_options(func: F) -> F:
    """Flags the Swift tool accepts on every command; kept so existing scripts still parse."""
    func = click.option("--verbose", "-v", is_flag=True, hidden=True)(func)
    return click.option("--log-level", hidden=True, default=None)(func)


def common(func: F) -> F:
    return compat_options(json_option(db_option(handles_errors(func))))


def split_list(values: Iterable[str]) -> list[str]:
    """``--participants a,b --participants c`` → ``[a, b, c]``."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", message="%(version)s")
def main() -> None:
    """iMessage for agents, bots and scripts.

    Reads Messages' database (~/Library/Messages/chat.db, needs Full Disk Access), watches it for
    new messages, sends through Messages.app, and serves all of it as JSON-RPC.

    \b
    Example:
      imsg chats --limit 5
      imsg history --chat-id 3 --limit 20 --json
    """


@main.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@common
def chats(limit: int, db: str | None, as_json: bool, **_: Any) -> None:
    """List chats, most recent first.

    \b
    Example:
      imsg chats --limit 10
      imsg chats --json | jq .identifier
    """
    out = Output(as_json)
    with ChatDB(db) as chat_db:
        for chat in chat_db.chats(limit):
            out.obj(chat) if as_json else out.line(format.chat_line(chat))


@main.command()
@click.option("--chat-id", required=True, type=int, help="Chat ROWID (see `imsg chats`).")
@common
def group(chat_id: int, db: str | None, as_json: bool, **_: Any) -> None:
    """Show one chat's detail and participants (direct chats too).

    \b
    Example:
      imsg group --chat-id 7
    """
    out = Output(as_json)
    with ChatDB(db) as chat_db:
        detail = chat_db.group(chat_id)
    if as_json:
        out.obj(detail)
    else:
        for line in format.group_lines(detail):
            out.line(line)


def filter_options(func: F) -> F:
    func = click.option("--end", help="Only messages before this ISO-8601 time (exclusive).")(func)
    func = click.option("--start", help="Only messages at/after this ISO-8601 time.")(func)
    return click.option(
        "--participants", multiple=True,
        help="Only messages from these handles (comma-separated or repeated).",
    )(func)


@main.command()
@click.option("--chat-id", required=True, type=int, help="Chat ROWID (see `imsg chats`).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@filter_options
@click.option("--attachments", is_flag=True, help="List attachments (JSON always has them).")
@click.option("--edit-history", is_flag=True, help="Include every version of edited messages.")
@common
def history(chat_id: int, limit: int, participants: tuple[str, ...], start: str | None,
            end: str | None, attachments: bool, edit_history: bool, db: str | None,
            as_json: bool, **_: Any) -> None:
    """Show a chat's messages, newest first (tapbacks are folded into `reactions`).

    \b
    Example:
      imsg history --chat-id 3 --limit 20
      imsg history --chat-id 3 --start 2026-05-01T00:00:00Z --participants +15555550123 --json
    """
    out = Output(as_json)
    filters = Filters.parse(split_list(participants), start, end)
    with ChatDB(db) as chat_db:
        messages = chat_db.history(chat_id, limit=limit, filters=filters,
                                   edit_history=edit_history)
    emit_messages(out, messages, attachments)


@main.command()
@click.option("--query", required=True, help="Text to look for (case-insensitive).")
@click.option("--match", type=click.Choice(["contains", "exact"]), default="contains",
              show_default=True)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--chat-id", type=int, default=None, help="Only this chat.")
@click.option("--edit-history", is_flag=True, help="Include every version of edited messages.")
@common
def search(query: str, match: str, limit: int, chat_id: int | None, edit_history: bool,
           db: str | None, as_json: bool, **_: Any) -> None:
    """Search message text, newest first (also rows whose text only lives in attributedBody).

    \b
    Example:
      imsg search --query "dinner"
      imsg search --query "ok" --match exact --chat-id 3 --json
    """
    out = Output(as_json)
    with ChatDB(db) as chat_db:
        messages = chat_db.search(query, match=match, limit=limit, chat_id=chat_id,
                                  edit_history=edit_history)
    emit_messages(out, messages, attachments=False)


def emit_messages(out: Output, messages: Iterable[Any], attachments: bool) -> None:
    for message in messages:
        if out.as_json:
            out.obj(message)
        else:
            for line in format.message_lines(message, attachments=attachments):
                out.line(line)


def _register_subcommands() -> None:
    from imsg.sim.cli import sim

    main.add_command(sim)


_register_subcommands()


@main.command()
@click.option("--to", help="Phone, email or any target form (e.g. sms:+15555550123).")
@click.option("--chat-id", type=int, default=None, help="Chat ROWID (see `imsg chats`).")
@click.option("--chat-identifier", default=None, help="Chat identifier (e.g. chat123…).")
@click.option("--chat-guid", default=None, help="Chat guid (e.g. any;+;chat123…).")
@click.option("--text", default=None, help="Message text (sent before the file).")
@click.option("--file", "file_path", default=None, help="File to attach (copied for Messages).")
@click.option("--service", type=click.Choice(["imessage", "sms", "auto"]), default="auto",
              show_default=True, help="auto: from local history, iMessage first.")
@click.option("--region", default="US", show_default=True,
              help="Country for phone numbers without a country code.")
@click.option("--max-file-mb", type=click.IntRange(min=1), default=100, show_default=True,
              help="Refuse larger files.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Seconds to wait for Messages.")
@common
def send(to: str | None, chat_id: int | None, chat_identifier: str | None,
         chat_guid: str | None, text: str | None, file_path: str | None, service: str,
         region: str, max_file_mb: int, timeout: float, db: str | None, as_json: bool,
         verbose: bool, **_: Any) -> None:
    """Send a text and/or a file through Messages and confirm it in chat.db.

    Exactly one target: --to, --chat-id, --chat-identifier or --chat-guid. Prints `sent`, or
    with --json {"status":"sent","ok":true,"id":…,"guid":…,"chat_id":…,"service":…}.
    With --verbose, stderr also says which row confirmed it and how long that took.

    \b
    Example:
      imsg send --to +15555550123 --text "on my way"
      imsg send --chat-id 7 --text "photos" --file ~/Pictures/a.jpg --json
    """
    from imsg.send.sender import send as send_message
    from imsg.send.targets import target_from_fields

    target = target_from_fields(to=to, chat_id=chat_id, chat_identifier=chat_identifier,
                                chat_guid=chat_guid, region=region, service=service)
    result = send_message(target, text=text, file=file_path, db_path=db, region=region,
                          timeout_s=timeout, max_file_bytes=max_file_mb * 1024 * 1024)
    if verbose:
        click.echo(f"imsg: confirmed row {result.id} in chat {result.chat_id} via "
                   f"{result.service}; verified in {result.verify_ms:.1f} ms", err=True)
    out = Output(as_json)
    out.obj(result.to_dict()) if as_json else out.line("sent")


@main.command()
@click.option("--chat-id", required=True, type=int, help="Chat ROWID (see `imsg chats`).")
@click.option("--reaction", "-r", required=True,
              help="love, like, dislike, laugh, emphasis or question (or an alias/emoji).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Seconds to wait for Messages.")
@common
def react(chat_id: int, reaction: str, timeout: float, db: str | None, as_json: bool,
          **_: Any) -> None:
    """Put a standard tapback on the chat's latest message (UI scripting).

    Limits: needs Automation (Messages, System Events) and Accessibility permission; brings
    Messages to the front and opens the chat through its search; reacts only to the latest
    message; custom emoji tapbacks cannot be sent. Verified in chat.db afterwards.

    \b
    Example:
      imsg react --chat-id 7 --reaction like
      imsg react --chat-id 7 -r ❤️ --json
    """
    from imsg.send.sender import react as send_reaction

    result = send_reaction(chat_id, reaction, db_path=db, timeout_s=timeout)
    out = Output(as_json)
    if as_json:
        out.obj(result)
    else:
        out.line(f"Sent {result['reaction_emoji']} reaction to chat {chat_id}")


_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}


def parse_duration(ctx: click.Context | None, param: click.Parameter | None, value: str) -> float:
    """``250ms``, ``1.5s``, ``2m``, ``1h`` or a bare number of seconds → seconds (as Swift imsg;
    compound values like ``2s500ms`` are rejected)."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", value or "")
    if match is None:
        raise click.BadParameter(f"{value!r} is not a duration (e.g. 250ms, 1s, 0ms)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2) or ""]


@main.command()
@click.option("--chat-id", type=int, default=None, help="Only this chat (default: all chats).")
@click.option("--since-rowid", type=int, default=None,
              help="Start after this message id (0 or absent: only new messages).")
@click.option("--debounce", default="250ms", show_default=True, callback=parse_duration,
              help="Wait this long after a change before reading (e.g. 0ms, 250ms, 1s).")
@filter_options
@click.option("--attachments", is_flag=True, help="List attachments (JSON always has them).")
@click.option("--reactions", is_flag=True, help="Also stream tapbacks as reaction events.")
@click.option("--updates", is_flag=True,
              help='Also stream edits and unsends ("event": "edited" / "retracted").')
@common
def watch(chat_id: int | None, since_rowid: int | None, debounce: float,
          participants: tuple[str, ...], start: str | None, end: str | None, attachments: bool,
          reactions: bool, updates: bool, db: str | None, as_json: bool, **_: Any) -> None:
    """Stream new messages until interrupted (Ctrl-C exits 0).

    Delivery: each message exactly once and in id order while running. To resume after a
    restart without losing anything, store the last `id` you handled and pass it back as
    --since-rowid (you may then see a message twice, never miss one). Conditions such as the
    database being locked or replaced are reported on stderr; the watch carries on.

    \b
    Example:
      imsg watch --json
      imsg watch --chat-id 3 --since-rowid 41234 --debounce 0ms --json
      imsg watch --reactions --updates --participants +15555550123 --json
    """
    from imsg.chatdb.connection import default_db_path
    from imsg.watch import Watcher

    out = Output(as_json)
    filters = Filters.parse(split_list(participants), start, end)
    watcher = Watcher(db or default_db_path(), since_rowid=since_rowid, chat_id=chat_id,
                      filters=filters, reactions=reactions, updates=updates,
                      debounce_s=debounce, on_status=_status_to_stderr)
    try:
        for event in watcher.events():
            emit_messages(out, [event.message], attachments)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.close()


def _status_to_stderr(text: str) -> None:
    click.echo(f"imsg: {text}", err=True)


# --- rpc, service, doctor ---------------------------------------------------------------------

def optional_path(*decls: str, help: str) -> Callable[[F], F]:
    """An option that takes a PATH or, given alone, means "the default path" (value "")."""
    return click.option(*decls, is_flag=False, flag_value="", default=None, metavar="[PATH]",
                        help=help)


@main.command()
@optional_path("--socket", "socket_path",
               help="Serve many clients on a Unix socket (default $IMSG_SOCKET, else "
                    "$XDG_RUNTIME_DIR/imsg/rpc.sock or the per-user equivalent).")
@optional_path("--connect", "connect_path",
               help="Bridge stdin/stdout to a running `imsg rpc --socket` (same default path).")
@db_option
@compat_options
@handles_errors
def rpc(socket_path: str | None, connect_path: str | None, db: str | None, verbose: bool,
        **_: Any) -> None:
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
                        level=logging.INFO if verbose else logging.WARNING)
    if socket_path is not None and connect_path is not None:
        raise click.UsageError("use --socket or --connect, not both")
    if socket_path is not None:
        from imsg.rpc.listener import serve_socket

        sys.exit(serve_socket(socket_path or None, db))
    from imsg.rpc.server import serve_stdio

    if connect_path is None:
        sys.exit(serve_stdio(db))
    from imsg.rpc.bridge import bridge, connect
    from imsg.rpc.listener import default_socket_path

    try:
        sock = connect(connect_path or default_socket_path())
    except ImsgError as err:  # stay up and answer every request with the fix, as on startup
        sys.exit(serve_stdio(db, failure=err))
    sys.exit(bridge(sock))


@main.group()
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


@main.command()
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
