"""``imsg watch``."""

from __future__ import annotations

from typing import Any

import click

from imsg.chatdb.reader import Filters
from imsg.cli.options import (
    ANY_INT,
    Output,
    chat_id_option,
    common,
    filter_options,
    parse_duration,
    split_list,
    status_to_stderr,
)
from imsg.cli.read import convert_option, emit_messages


@click.command()
@chat_id_option(required=False, help="Only this chat (default: all chats).")
@click.option("--since-rowid", type=ANY_INT, default=None,
              help="Start after this message id (0 or absent: only new messages).")
@click.option("--debounce", default="250ms", show_default=True, callback=parse_duration,
              help="Wait this long after a change before reading (e.g. 0ms, 250ms, 1s).")
@filter_options
@click.option("--attachments", is_flag=True, help="List attachments (JSON always has them).")
@click.option("--reactions", is_flag=True, help="Also stream tapbacks as reaction events.")
@click.option("--updates", is_flag=True,
              help='Also stream edits and unsends ("event": "edited" / "retracted").')
@click.option("--hold", default="2s", show_default=True, callback=parse_duration,
              help="How long a message Messages has not filed in a chat yet holds back the"
                   " ones after it (awake time).")
@click.option("--horizon", default="5m", show_default=True, callback=parse_duration,
              help="How long such a message is waited for before it is reported on stderr"
                   " and skipped.")
@convert_option
@click.option("--bb-events", is_flag=True,
              help="Also print the IMCore bridge's events (typing) as they come, best effort.")
@common
def watch(chat_id: int | None, since_rowid: int | None, debounce: float,
          participants: tuple[str, ...], start: str | None, end: str | None, attachments: bool,
          reactions: bool, updates: bool, hold: float, horizon: float, convert_attachments: bool,
          bb_events: bool, db: str | None, as_json: bool, **_: Any) -> None:
    """Stream new messages until interrupted (Ctrl-C exits 0).

    Delivery: every message filed in a chat exactly once while running, in id order except
    one whose chat Messages wrote late (it comes when its chat does). To resume after a
    restart without losing anything, store the `cursor` of the last message you handled
    (JSON) and pass it back as --since-rowid (you may then see a message twice, never miss
    one). A message never filed in a chat within --horizon, or one that cannot be read, is
    reported on stderr and skipped. Conditions such as the database being locked or replaced
    are reported on stderr; the watch carries on.

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
                      debounce_s=debounce, hold_s=hold, horizon_s=horizon,
                      on_status=status_to_stderr)
    events_stop = None
    if bb_events:
        from imsg.cli.bridge import print_bridge_events

        events_stop = print_bridge_events(out, status_to_stderr)
    try:
        for event in watcher.events():
            emit_messages(out, [event.message], attachments, convert=convert_attachments)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.close()
        if events_stop is not None:
            events_stop.set()
