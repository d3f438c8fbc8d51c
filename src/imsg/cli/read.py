"""Reading commands: chats, group, history, search."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from imsg.chatdb.reader import ChatDB, Filters
from imsg.cli.options import (
    POSITIVE,
    Output,
    chat_id_option,
    common,
    filter_options,
    split_list,
)

F = TypeVar("F", bound=Callable[..., Any])


def convert_option(func: F) -> F:
    return click.option(
        "--convert-attachments", is_flag=True,
        help="Add playable/viewable copies of CAF voice notes, GIFs and HEIC images"
             " (converted_path, converted_mime_type).",
    )(func)


@click.command()
@click.option("--limit", default=20, show_default=True, type=POSITIVE)
@click.option("--unread-only", is_flag=True, help="Only chats with unread messages.")
@common
def chats(limit: int, unread_only: bool, db: str | None, as_json: bool, **_: Any) -> None:
    """List chats, most recent first, with their unread counts (JSON `unread_count`).

    \b
    Example:
      imsg chats --limit 10
      imsg chats --unread-only --json | jq '{id, unread_count}'
    """
    out = Output(as_json)
    with ChatDB(db) as chat_db:
        for chat in chat_db.chats(limit, unread_only=unread_only):
            if as_json:
                out.obj(chat)
            else:
                from imsg import format  # human output only: JSON never needs it

                out.line(format.chat_line(chat))


@click.command()
@chat_id_option(required=True)
@common
def group(chat_id: int, db: str | None, as_json: bool, **_: Any) -> None:
    """Show one chat's detail and participants (direct chats too).

    \b
    Example:
      imsg group --chat-id 7
    """
    from imsg import format

    out = Output(as_json)
    with ChatDB(db) as chat_db:
        detail = chat_db.group(chat_id)
    if as_json:
        out.obj(detail)
    else:
        for line in format.group_lines(detail):
            out.line(line)


@click.command()
@chat_id_option(required=True)
@click.option("--limit", default=50, show_default=True, type=POSITIVE)
@filter_options
@click.option("--attachments", is_flag=True, help="List attachments (JSON always has them).")
@click.option("--edit-history", is_flag=True, help="Include every version of edited messages.")
@convert_option
@common
def history(chat_id: int, limit: int, participants: tuple[str, ...], start: str | None,
            end: str | None, attachments: bool, edit_history: bool, convert_attachments: bool,
            db: str | None, as_json: bool, **_: Any) -> None:
    """Show a chat's messages, newest first (tapbacks are folded into `reactions`).

    \b
    Example:
      imsg history --chat-id 3 --limit 20
      imsg history --chat-id 3 --start 2026-05-01T00:00:00Z --participants +15555550123 --json
      imsg history --chat-id 3 --attachments --convert-attachments
    """
    out = Output(as_json)
    filters = Filters.parse(split_list(participants), start, end)
    with ChatDB(db) as chat_db:
        messages = chat_db.history(chat_id, limit=limit, filters=filters,
                                   edit_history=edit_history,
                                   convert_attachments=convert_attachments)
    emit_messages(out, messages, attachments)


@click.command()
@click.option("--query", required=True, help="Text to look for (case-insensitive).")
@click.option("--match", type=click.Choice(["contains", "exact"]), default="contains",
              show_default=True)
@click.option("--limit", default=50, show_default=True, type=POSITIVE)
@chat_id_option(required=False, help="Only this chat.")
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
    from imsg.cli.index import build_progress
    from imsg.index import search as indexed_search

    out = Output(as_json)
    with ChatDB(db) as chat_db, build_progress() as progress:
        messages = indexed_search(chat_db, query, match=match, limit=limit, chat_id=chat_id,
                                  edit_history=edit_history, progress=progress)
    emit_messages(out, messages, attachments=False)


def emit_messages(out: Output, messages: Iterable[Any], attachments: bool, *,
                  convert: bool = False) -> None:
    """Messages as JSON lines or text; ``convert`` adds converted attachment copies first."""
    if convert:
        from imsg.chatdb.convert import with_converted_attachments

        messages = (with_converted_attachments(m) if m.attachments else m for m in messages)
    for message in messages:
        if out.as_json:
            out.obj(message)
        else:
            from imsg import format  # human output only: JSON never needs it

            for line in format.message_lines(message, attachments=attachments):
                out.line(line)
