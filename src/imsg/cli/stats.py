"""``imsg stats`` and ``imsg scheduled list``: what chat.db adds up to, and what waits to go."""

from __future__ import annotations

from typing import Any

import click

from imsg import format
from imsg.chatdb.reader import ChatDB
from imsg.cli.options import POSITIVE, Output, chat_id_option, common


@click.command()
@chat_id_option(required=False, help="Only this chat (default: every chat).")
@click.option("--time-zone", metavar="IANA",
              help="Count days in this zone, e.g. Europe/Paris (default: this machine's).")
@click.option("--media", is_flag=True, help="Also count attachments by type and chat.")
@common
def stats(chat_id: int | None, time_zone: str | None, media: bool, db: str | None,
          as_json: bool, **_: Any) -> None:
    """Count messages by chat, sender, service and day.

    Tapbacks are not messages; a link preview counts with its text; a message in several
    chats counts once in the totals and once per chat.

    \b
    Example:
      imsg stats
      imsg stats --chat-id 3 --time-zone America/New_York --media --json
    """
    out = Output(as_json)
    with ChatDB(db) as chat_db:
        report = chat_db.stats(chat_id=chat_id, time_zone=time_zone, include_media=media)
    if as_json:
        out.obj(report)
    else:
        for line in format.stats_lines(report):
            out.line(line)


@click.group(invoke_without_command=False)
def scheduled() -> None:
    """Messages scheduled with Send Later (macOS 15+), read-only.

    \b
    Example:
      imsg scheduled list
    """


@scheduled.command(name="list")
@click.option("--limit", default=50, show_default=True, type=POSITIVE)
@common
def scheduled_list(limit: int, db: str | None, as_json: bool, **_: Any) -> None:
    """List Send Later messages still to go, soonest first.

    \b
    Example:
      imsg scheduled list --limit 10
      imsg scheduled list --json
    """
    out = Output(as_json)
    with ChatDB(db) as chat_db:
        messages = chat_db.scheduled(limit)
    for message in messages:
        out.item(message, format.scheduled_line(message))
