"""The ``imsg`` command: parse options, call the library, format. Nothing else.

Commands live in modules by family (``imsg.cli.read``, ``.watch``, ``.send``, ``.serve``…) and
are imported only when run: ``COMMANDS`` maps each name to its module and its one-line help,
so ``imsg --version`` and ``imsg --help`` import nothing but this shell.

Every command accepts the Swift tool's runtime flags (``--json``/``-j``/``--json-output``/
``--jsonOutput``, ``-v``/``--verbose``, ``--log-level``), ignored where they mean nothing, and
``--version``/``-V`` (the version, then exit 0), as an option (never as another option's value).
Usage errors use the Swift tool's words (``Missing required option: --to``, ``Invalid value
for option: --limit``, ``Unknown command: NAME``) on stderr, with exit code 2.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from imsg import version

# name → (module:attribute, one-line help), in the order `imsg --help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "chats": ("imsg.cli.read:chats", "List chats, most recent first."),
    "group": ("imsg.cli.read:group", "Show one chat's detail and participants."),
    "history": ("imsg.cli.read:history", "Show a chat's messages, newest first."),
    "search": ("imsg.cli.read:search", "Search message text, newest first."),
    "index": ("imsg.cli.index:index", "Build or update the full-text search index."),
    "stats": ("imsg.cli.stats:stats", "Count messages by chat, sender, service and day."),
    "scheduled": ("imsg.cli.stats:scheduled", "List messages scheduled with Send Later."),
    "completions": ("imsg.cli.completions:completions",
                    "Shell completion script, or a Markdown reference of every command."),
    "watch": ("imsg.cli.watch:watch", "Stream new messages until interrupted."),
    "send": ("imsg.cli.send:send", "Send a text and/or a file through Messages."),
    "send-attachment": ("imsg.cli.send:send_attachment", "Send one file to a chat."),
    "react": ("imsg.cli.send:react",
              "Tapback on a chat's latest message (bridge, else UI scripting)."),
    "read": ("imsg.cli.bridge:read", "Mark a chat read (IMCore bridge)."),
    "typing": ("imsg.cli.bridge:typing", "Show or stop the typing indicator (IMCore bridge)."),
    "launch": ("imsg.cli.bridge:launch", "Relaunch Messages.app with the IMCore bridge helper."),
    "status": ("imsg.cli.status:status", "What works here: basic and bridge features."),
    "send-rich": ("imsg.cli.bridge:send_rich",
                  "Send with effects, subject, reply, formatting, a file or link (bridge)."),
    "send-multipart": ("imsg.cli.bridge:send_multipart", "Send text parts as one message."),
    "send-sticker": ("imsg.cli.bridge:send_sticker", "Send a sticker (bridge)."),
    "poll": ("imsg.cli.bridge:poll", "Send a poll, vote, take a vote back (bridge)."),
    "tapback": ("imsg.cli.bridge:tapback", "Tapback on a specific message (bridge)."),
    "edit": ("imsg.cli.bridge:edit", "Edit a sent message (bridge)."),
    "unsend": ("imsg.cli.bridge:unsend", "Unsend a message (bridge)."),
    "delete-message": ("imsg.cli.bridge:delete_message", "Delete a message here (bridge)."),
    "notify-anyways": ("imsg.cli.bridge:notify_anyways", "Notify despite Focus (bridge)."),
    "chat-create": ("imsg.cli.bridge:chat_create", "Create a chat or group (bridge)."),
    "chat-name": ("imsg.cli.bridge:chat_name", "Rename a group (bridge)."),
    "chat-photo": ("imsg.cli.bridge:chat_photo", "Set or clear a group photo (bridge)."),
    "chat-add-member": ("imsg.cli.bridge:chat_add_member", "Add a group member (bridge)."),
    "chat-remove-member": ("imsg.cli.bridge:chat_remove_member",
                           "Remove a group member (bridge)."),
    "chat-leave": ("imsg.cli.bridge:chat_leave", "Leave a group (bridge)."),
    "chat-delete": ("imsg.cli.bridge:chat_delete", "Delete a chat here (bridge)."),
    "chat-mark": ("imsg.cli.bridge:chat_mark", "Mark a chat read or unread (bridge)."),
    "account": ("imsg.cli.bridge:account", "The iMessage account in use (bridge or --local)."),
    "whois": ("imsg.cli.bridge:whois", "Whether an address reaches iMessage."),
    "nickname": ("imsg.cli.bridge:nickname", "A Name & Photo nickname or Contacts name."),
    "name-photo": ("imsg.cli.bridge:name_photo", "Offer or share your Name & Photo (bridge)."),
    "rpc": ("imsg.cli.serve:rpc", "Serve JSON-RPC 2.0 on stdio or a Unix socket."),
    "mcp": ("imsg.cli.mcp:mcp", "Serve iMessage as MCP tools on stdio (Claude, Cursor…)."),
    "service": ("imsg.cli.serve:service", "Run `imsg rpc --socket` as a per-user service."),
    "doctor": ("imsg.cli.serve:doctor", "Check permissions, database and service; print fixes."),
    "sim": ("imsg.sim.cli:sim", "Simulate Messages: build a chat.db and write into it."),
    "gateway": ("imsg.cli.gateway:gateway", "Run iMessage as a chat channel for an agent or bot."),
    "pairing": ("imsg.cli.gateway:pairing", "List, approve or deny gateway pairing requests."),
}


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(version())
        ctx.exit()


RUNTIME_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--version", "-V"), {"is_flag": True, "is_eager": True, "callback": _print_version}),
    (("--json", "-j", "--json-output", "--jsonOutput"), {"is_flag": True}),
    (("--verbose", "-v"), {"is_flag": True}),
    (("--log-level",), {"default": None, "metavar": "LEVEL"}),
)


def add_runtime_options(command: click.Command) -> None:
    """Give ``command`` (and a group's subcommands) the runtime flags it does not declare;
    added ones are accepted and ignored (``expose_value=False``)."""
    declared = {opt for param in command.params for opt in param.opts}
    for decls, attrs in RUNTIME_OPTIONS:
        if declared.isdisjoint(decls):
            command.params.append(click.Option(list(decls), expose_value=False, hidden=True,
                                               **attrs))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_runtime_options(sub)


class ImsgGroup(click.Group):
    """The root group: lazy commands, Swift-compatible usage errors."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, _, attr = entry[0].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        if not getattr(command, "_imsg_runtime", False):
            add_runtime_options(command)
            command._imsg_runtime = True  # type: ignore[attr-defined]
        return command

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if name not in COMMANDS and not name.startswith("-"):
            raise UnknownCommand(name)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # One-line help from the table, so listing commands imports none of them.
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in COMMANDS.items()])

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        """Standalone runs print click's errors as one ``imsg: …`` stderr line."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            super().main(args, prog_name or "imsg", complete_var, False, **extra)
        except click.UsageError as err:
            click.echo(f"imsg: {_usage_message(err)}", err=True)
            sys.exit(err.exit_code)
        except click.ClickException as err:
            click.echo(f"imsg: {err.format_message()}", err=True)
            sys.exit(err.exit_code)
        except click.Abort:
            sys.exit(130)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        sys.exit(0)


class UnknownCommand(click.UsageError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown command: {name}\nCommands: {', '.join(COMMANDS)}")


@click.group(cls=ImsgGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", "-V", is_flag=True, is_eager=True, expose_value=False,
              callback=_print_version, help="Show the version and exit.")
@click.pass_context
def main(ctx: click.Context) -> None:
    """iMessage for agents, bots and scripts.

    Reads Messages' database (~/Library/Messages/chat.db, needs Full Disk Access), watches it for
    new messages, sends through Messages.app, and serves all of it as JSON-RPC.

    \b
    Example:
      imsg chats --limit 5
      imsg history --chat-id 3 --limit 20 --json
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _usage_message(err: click.UsageError) -> str:
    """Click's usage errors in the Swift tool's words."""
    if isinstance(err, click.MissingParameter) and err.param is not None and err.param.opts:
        return f"Missing required option: {err.param.opts[0]}"
    if isinstance(err, click.BadParameter) and err.param is not None and err.param.opts:
        text = err.message
        if text.startswith("Invalid value for option:"):
            return text
        return f"Invalid value for option: {err.param.opts[0]} ({text})"
    return err.format_message()
