"""``imsg gateway`` (run, check, status, send) and ``imsg pairing`` (list, approve, deny).

Every command takes ``--state-dir DIR`` (``IMSG_STATE_DIR``; default: the per-user state
directory), so the running gateway and ``imsg pairing approve`` always use the same state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from contextlib import closing
from typing import TYPE_CHECKING, Any, TypeVar

import click

from imsg.cli.options import Output, handles_errors, json_option
from imsg.errors import ConfigInvalid, InvalidInput

if TYPE_CHECKING:
    from imsg.gateway.state import State

APPROVED_TEXT = "✅ imsg gateway access approved. Send a message to start chatting."


F = TypeVar("F", bound=Callable[..., Any])


def config_option(required: bool) -> Callable[[F], F]:
    return click.option("--config", "config_path", required=required,
                        type=click.Path(dir_okay=False),
                        help="Gateway config: TOML ([imessage]) or an OpenClaw JSON5 file.")


def state_dir_option(func: F) -> F:
    return click.option("--state-dir", envvar="IMSG_STATE_DIR", show_envvar=True,
                        type=click.Path(file_okay=False),
                        help="Where pairing, cursors and the journal live "
                             "(default: the per-user state directory).")(func)


def _state_dir(value: str | None) -> str:
    from imsg.gateway.runner import default_state_dir

    return value or default_state_dir()


def _open_state(state_dir: str | None) -> closing[State]:
    """The gateway state under ``--state-dir``, closed when the ``with`` block ends."""
    from imsg.gateway.state import State

    return closing(State(_state_dir(state_dir)))


def _load(path: str, *, require_handler: bool = False) -> Any:
    from imsg.gateway.config import load_config

    return load_config(path, require_handler=require_handler)


def _setup_logging(verbose: bool, level: str | None) -> None:
    name = (level or ("debug" if verbose else "info")).upper()
    numeric = logging.getLevelName(name)
    if not isinstance(numeric, int):
        raise InvalidInput(f"Invalid value for option: --log-level ({level!r}: use debug, info, "
                           "warning or error)")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("imsg.gateway")
    logger.handlers[:] = [handler]
    logger.setLevel(numeric)
    logger.propagate = False


@click.group()
def gateway() -> None:
    """iMessage as a chat channel for an agent or bot: pairing, allowlists, mention gating,
    echo suppression, durable delivery, on top of a child `imsg rpc`.

    \b
    Example:
      imsg gateway check --config bot.toml
      imsg gateway run --config bot.toml
      imsg pairing approve ABCD2345
    """


@gateway.command()
@config_option(required=True)
@state_dir_option
@click.option("--verbose", "-v", is_flag=True, help="Log debug lines too.")
@click.option("--log-level", default=None, metavar="LEVEL",
              help="debug, info (default), warning or error.")
@handles_errors
def run(config_path: str, state_dir: str | None, verbose: bool, log_level: str | None) -> None:
    """Run every enabled account until SIGTERM/SIGINT.

    Logs to stderr, one line per message dropped or dispatched, with the reason. A stop lets
    running handlers finish (shutdownGraceMs) and keeps every message not yet handled in the
    journal for the next start.

    \b
    Example:
      imsg gateway run --config bot.toml --state-dir ~/.local/state/imsg
    """
    from imsg.gateway.runner import Gateway

    config = _load(config_path, require_handler=True)
    _setup_logging(verbose, log_level)
    log = logging.getLogger("imsg.gateway")
    for problem in config.problems:
        log.warning("config %s", problem)
    asyncio.run(Gateway(config, _state_dir(state_dir), log=log).run())


@gateway.command()
@config_option(required=True)
@state_dir_option
@json_option
@handles_errors
def check(config_path: str, state_dir: str | None, as_json: bool) -> None:
    """Validate the config strictly and print the effective config of each account, and the
    state directory the other commands will use.

    Each problem is one line naming its key path; exit 23 when any is an error.

    \b
    Example:
      imsg gateway check --config bot.toml --json
    """
    out = Output(as_json)
    try:
        config = _load(config_path)
    except ConfigInvalid as err:
        if as_json:
            out.line(json.dumps({"ok": False, "problems": [
                {"path": p.path, "message": p.message, "severity": p.severity}
                for p in err.problems] or [{"path": "", "message": line, "severity": "error"}
                                           for line in err.lines]}, ensure_ascii=False))
        else:
            for problem in err.problems or err.lines:
                click.echo(str(problem), err=True)
        sys.exit(err.exit_code)
    if as_json:
        out.line(json.dumps({"ok": True, "problems": [
            {"path": p.path, "message": p.message, "severity": p.severity}
            for p in config.problems],
            "state_dir": _state_dir(state_dir),
            "default_account": config.default_account,
            "accounts": [a.describe() for a in config.accounts]}, ensure_ascii=False))
        return
    for problem in config.problems:
        click.echo(str(problem), err=True)
    out.line(f"ok: {config.path} ({len(config.accounts)} account"
             f"{'s' if len(config.accounts) != 1 else ''}, default {config.default_account}; "
             f"state in {_state_dir(state_dir)})")
    for account in config.accounts:
        out.line(f"[{account.id}]")
        for key, value in account.describe().items():
            if key != "account":
                out.line(f"  {key} = {json.dumps(value, ensure_ascii=False)}")


@gateway.command()
@config_option(required=True)
@state_dir_option
@json_option
@handles_errors
def status(config_path: str, state_dir: str | None, as_json: bool) -> None:
    """Per account: the child's probe, the durable cursor, the journal, pending pairing
    requests and the last error.

    \b
    Example:
      imsg gateway status --config bot.toml --json
    """
    from imsg.errors import ImsgError
    from imsg.gateway.oneshot import probe_account

    config = _load(config_path)
    out = Output(as_json)
    with _open_state(state_dir) as state:
        for account in config.accounts:
            report: dict[str, Any] = {"account": account.id, "enabled": account.enabled}
            try:
                if not account.enabled:
                    raise ImsgError("not started: the account is disabled")
                info = asyncio.run(probe_account(account))
                report["child"] = {"ok": True, **info.to_json()}
            except ImsgError as err:
                report["child"] = {"ok": False, "error": err.message}
            report["cursor"] = state.cursor(account.id)
            report["journal"] = state.counts(account.id)
            report["pairing"] = [r.to_json() for r in state.pairing_requests(account.id)]
            report.update(state.account_status(account.id) or {"last_error": None})
            report.pop("probe", None)
            report.pop("probe_at", None)
            if as_json:
                out.line(json.dumps(report, ensure_ascii=False))
            else:
                _print_status(out, report)


def _print_status(out: Output, report: dict[str, Any]) -> None:
    child = report["child"]
    out.line(f"[{report['account']}]{'' if report['enabled'] else ' (disabled)'}")
    if child["ok"]:
        bridge = "ready" if child["bridge"]["ready"] else "not ready"
        out.line(f"  child: ok ({child['probe']}, version {child['version'] or '?'}, "
                 f"protocol {child['protocol_version'] or '-'}, bridge {bridge})")
    else:
        out.line(f"  child: failed: {child['error']}")
    out.line(f"  cursor: {report['cursor'] if report['cursor'] is not None else 'none yet'}")
    journal = report["journal"]
    out.line("  journal: " + (", ".join(f"{n} {s}" for s, n in sorted(journal.items()))
                              or "empty"))
    pending = report["pairing"]
    out.line(f"  pairing: {len(pending)} pending")
    for request in pending:
        minutes = max(0, int((request["expires_at"] - time.time()) / 60))
        out.line(f"    {request['code']}  {request['sender']}  (expires in {minutes} min)")
    if report.get("last_error"):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(report["last_error_at"]))
        out.line(f"  last error: {report['last_error']} (at {when})")


@gateway.command()
@config_option(required=True)
@state_dir_option
@click.option("--account", "account_id", default=None, help="Account (default: defaultAccount).")
@click.argument("target")
@click.option("--text", default="", help="Text to send (chunked like replies).")
@click.option("--file", "files", multiple=True, type=click.Path(dir_okay=False),
              help="A file to send (repeatable).")
@json_option
@handles_errors
def send(config_path: str, state_dir: str | None, account_id: str | None, target: str,
         text: str, files: tuple[str, ...], as_json: bool) -> None:
    """Send a proactive message (cron, alerts) to TARGET through the account's imsg.

    TARGET: chat_id:N, chat_guid:G, chat_identifier:S, imessage:H, sms:H, auto:H, or a phone
    number or email. Text is chunked like replies (textChunkLimit, chunkMode).

    \b
    Example:
      imsg gateway send --config bot.toml chat_id:3 --text "backup finished"
      imsg gateway send --config bot.toml +15555550123 --file report.pdf
    """
    import os

    from imsg.gateway.handlers import Reply
    from imsg.gateway.oneshot import send as send_reply

    if not text.strip() and not files:
        raise InvalidInput("Missing required option: --text or --file")
    config = _load(config_path)
    account = config.account(account_id)
    with _open_state(state_dir) as state:
        reply = Reply(text, tuple(os.path.abspath(f) for f in files))
        outcomes = asyncio.run(send_reply(account, target, reply, state))
    out = Output(as_json)
    for outcome in outcomes:
        result = outcome.result or {}
        out.item({"ok": True, **result} if as_json else None,
                 f"sent {result.get('guid') or result.get('id') or ''}".rstrip())


@click.group()
def pairing() -> None:
    """Pending pairing requests of the gateway: list, approve, deny.

    A stranger who writes while dmPolicy = "pairing" gets a code; approving it lets that
    sender write to the bot in direct chats (never in groups).

    \b
    Example:
      imsg pairing list
      imsg pairing approve ABCD2345 --notify --config bot.toml
    """


@pairing.command(name="list")
@config_option(required=False)
@state_dir_option
@click.option("--account", "account_id", default=None, help="Only this account.")
@json_option
@handles_errors
def list_requests(config_path: str | None, state_dir: str | None, account_id: str | None,
                  as_json: bool) -> None:
    """List pending pairing requests (codes expire after an hour).

    \b
    Example:
      imsg pairing list --json
    """
    if config_path:
        _load(config_path)
    with _open_state(state_dir) as state:
        requests = state.pairing_requests(account_id)
    out = Output(as_json)
    if not requests and not as_json:
        out.line("no pending pairing requests")
    for request in requests:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(request.created_at))
        out.item(request.to_json(), f"{request.code}  {request.sender}  account "
                                    f"{request.account}  requested {when}")


@pairing.command()
@click.argument("code")
@click.option("--notify", is_flag=True, help="Tell the sender (needs --config).")
@config_option(required=False)
@state_dir_option
@json_option
@handles_errors
def approve(code: str, notify: bool, config_path: str | None, state_dir: str | None,
            as_json: bool) -> None:
    """Approve CODE: its sender may now write to the bot in direct chats.

    \b
    Example:
      imsg pairing approve ABCD2345
      imsg pairing approve abcd2345 --notify --config bot.toml
    """
    from imsg.gateway.handlers import Reply
    from imsg.gateway.oneshot import send as send_reply

    if notify and not config_path:
        raise InvalidInput("Missing required option: --config (--notify sends through the "
                           "account's imsg)")
    config = _load(config_path) if config_path else None
    with _open_state(state_dir) as state:
        request = state.approve(code)
        notified = False
        if notify and config is not None:
            account = config.account(request.account)
            target = (f"chat_id:{request.chat_id}" if request.chat_id is not None
                      else request.sender)
            asyncio.run(send_reply(account, target, Reply(APPROVED_TEXT), state))
            notified = True
    Output(as_json).item({**request.to_json(), "approved": True, "notified": notified},
                         f"approved {request.sender} (account {request.account})"
                         + ("; notified" if notified else ""))


@pairing.command()
@click.argument("code")
@config_option(required=False)
@state_dir_option
@json_option
@handles_errors
def deny(code: str, config_path: str | None, state_dir: str | None, as_json: bool) -> None:
    """Deny CODE: its sender gets no access and no new code until the request expires.

    \b
    Example:
      imsg pairing deny ABCD2345
    """
    if config_path:
        _load(config_path)
    with _open_state(state_dir) as state:
        request = state.deny(code)
    Output(as_json).item({**request.to_json(), "denied": True},
                         f"denied {request.sender} (account {request.account})")
