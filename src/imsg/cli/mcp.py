"""``imsg mcp``: serve iMessage as MCP tools over stdio (``imsg.mcp``)."""

from __future__ import annotations

import click

from imsg.cli.options import GreedyOption, db_option, handles_errors


@click.command()
@db_option
@click.option("--allow-send", is_flag=True,
              help="Let the model send messages, tapbacks, typing indicators and read "
                   "receipts (off by default: read-only tools answer, sending ones refuse).")
@click.option("--allow-to", "allow_to", multiple=True, cls=GreedyOption, metavar="TARGET",
              help="With --allow-send: only these recipients (handles, chat_id:N, chat_guid:G, "
                   "chat_identifier:S or contact names; repeated or space-separated).")
@click.option("--read-only", is_flag=True,
              help="List reading tools only (no send_message, react, typing, mark_read).")
@handles_errors
def mcp(db: str | None, allow_send: bool, allow_to: tuple[str, ...], read_only: bool) -> None:
    """Serve iMessage as Model Context Protocol tools on stdin/stdout, for MCP hosts (Claude,
    Cursor, coding agents). stdout carries protocol frames only; logs, and a line for every
    send, go to stderr.

    Tools: find_chat, list_chats, get_unread, read_messages, get_context, search_messages,
    get_attachment, wait_for_message, diagnose; send_message and react unless --read-only;
    typing and mark_read when the IMCore bridge is running.

    \b
    Example (the host's configuration):
      {"mcpServers": {"imessage": {"command": "imsg", "args": ["mcp"]}}}
      imsg mcp --allow-send --allow-to +15555550123 chat_id:3
    """
    from imsg.errors import InvalidInput
    from imsg.mcp.sending import Policy
    from imsg.mcp.server import Config, default_db_path, serve

    try:
        policy = Policy.parse(allow_send=allow_send, read_only=read_only, allow_to=allow_to)
    except InvalidInput as err:
        raise click.UsageError(err.message) from None
    serve(Config(default_db_path(db), policy))
