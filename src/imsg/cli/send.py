"""Sending commands: send, react."""

from __future__ import annotations

from typing import Any

import click

from imsg.cli.options import POSITIVE, Output, chat_id_option, common, verbose_option


@click.command()
@click.option("--to", help="Phone, email or any target form (e.g. sms:+15555550123).")
@chat_id_option(required=False)
@click.option("--chat-identifier", default=None, help="Chat identifier (e.g. chat123…).")
@click.option("--chat-guid", default=None, help="Chat guid (e.g. any;+;chat123…).")
@click.option("--text", default=None, help="Message text (sent before the file).")
@click.option("--file", "file_path", default=None, help="File to attach (copied for Messages).")
@click.option("--service", type=click.Choice(["imessage", "sms", "auto"]), default="auto",
              show_default=True, help="auto: from local history, iMessage first.")
@click.option("--region", default="US", show_default=True,
              help="Country for phone numbers without a country code.")
@click.option("--max-file-mb", type=POSITIVE, default=100, show_default=True,
              help="Refuse larger files.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Seconds to wait for Messages.")
@verbose_option
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


@click.command()
@chat_id_option(required=True)
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
