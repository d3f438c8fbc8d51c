"""Sending commands: send, send-attachment, react.

While one of them waits for Messages, SIGINT, SIGTERM and SIGHUP stop its osascript (and
its process group) instead of orphaning it: the command then fails with SendInterrupted,
saying the outcome is unknown.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import click

from imsg.cli.options import (
    NON_NEGATIVE,
    POSITIVE,
    Output,
    chat_id_option,
    common,
    verbose_option,
)
from imsg.errors import ImsgError, InvalidInput

if TYPE_CHECKING:
    from imsg.send.sender import SendResult

MAX_TIMEOUT_S = 24 * 60 * 60


class Seconds(click.ParamType[float]):
    """A finite number of seconds above 0 and at most a day (never nan or inf)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or not 0 < number <= MAX_TIMEOUT_S:
            name = param.opts[0] if param is not None and param.opts else "value"
            self.fail(f"Invalid value for option: {name} ({value!r}: seconds, more than 0 "
                      f"and at most {MAX_TIMEOUT_S})", param, ctx)
        return number


def timeout_option(func: Any) -> Any:
    return click.option("--timeout", type=Seconds(), default=30.0, show_default=True,
                        help="Seconds to wait for Messages.")(func)


def max_file_option(func: Any) -> Any:
    return click.option("--max-file-mb", type=POSITIVE, default=100, show_default=True,
                        help="Refuse larger files.")(func)


@click.command()
@click.option("--to", help="Phone, email, contact name or any target form (e.g. sms:+1555…).")
@chat_id_option(required=False)
@click.option("--chat-identifier", default=None, help="Chat identifier (e.g. chat123…).")
@click.option("--chat-guid", default=None, help="Chat guid (e.g. any;+;chat123…).")
@click.option("--text", default=None, help="Message text (sent before the file).")
@click.option("--file", "file_path", default=None, help="File to attach (copied for Messages).")
@click.option("--service", default="auto", show_default=True,
              help="imessage, sms or auto (auto: from local history, iMessage first).")
@click.option("--region", default="US", show_default=True,
              help="Country for phone numbers without a country code.")
@click.option("--no-sms-fallback", is_flag=True,
              help="Never retry a failed iMessage text over SMS.")
@max_file_option
@timeout_option
@verbose_option
@common
def send(to: str | None, chat_id: int | None, chat_identifier: str | None,
         chat_guid: str | None, text: str | None, file_path: str | None, service: str,
         region: str, no_sms_fallback: bool, max_file_mb: int, timeout: float, db: str | None,
         as_json: bool, verbose: bool, **_: Any) -> None:
    """Send a text and/or a file through Messages and confirm it in chat.db.

    Exactly one target: --to, --chat-id, --chat-identifier or --chat-guid. Prints `sent`, or
    with --json {"status":"sent","ok":true,"transport":"applescript","id":…,"guid":…,
    "message_id":…,"chat_id":…,"chat_guid":…,"service":"iMessage"}. A send is reported only
    once its row is in chat.db (up to 8 s); a failure says whether it may have gone out.
    With --verbose, stderr also says which row confirmed it and how long that took.

    \b
    Example:
      imsg send --to +15555550123 --text "on my way"
      imsg send --to "Jane Appleseed" --text "hi" --no-sms-fallback
      imsg send --chat-id 7 --text "photos" --file ~/Pictures/a.jpg --json
    """
    from imsg.send import children
    from imsg.send.sender import send as send_message
    from imsg.send.targets import check_service, target_from_fields

    if to is None and chat_id is None and chat_identifier is None and chat_guid is None:
        raise click.UsageError("Missing required option: --to")
    if to is not None and (chat_id, chat_identifier, chat_guid) != (None, None, None):
        raise click.UsageError("Invalid value for option: --to (give --to or one chat option, "
                               "not both)")
    if not text and not file_path:
        raise click.UsageError("Missing required option: --text or file")
    check_service(service)
    target = target_from_fields(to=to, chat_id=chat_id, chat_identifier=chat_identifier,
                                chat_guid=chat_guid, region=region, service=service)
    with children.stop_on_signals():
        result = send_message(target, text=text, file=file_path, db_path=db, region=region,
                              timeout_s=timeout, max_file_bytes=max_file_mb * 1024 * 1024,
                              allow_sms_fallback=not no_sms_fallback)
    if verbose:
        click.echo(f"imsg: confirmed row {result.id} in chat {result.chat_id} via "
                   f"{result.service}; verified in {result.verify_ms:.1f} ms", err=True)
    out = Output(as_json)
    out.obj(result.to_dict()) if as_json else out.line("sent")


@click.command("send-attachment")
@click.option("--chat", "chat_guid", default=None, help="Chat guid (see `imsg chats --json`).")
@chat_id_option(required=False)
@click.option("--file", "file_path", required=True, help="The file to send.")
@click.option("--transport", type=click.Choice(["auto", "dylib", "applescript"]),
              default="auto", show_default=True,
              help="auto: the IMCore bridge when it is ready, else AppleScript; dylib: the "
                   "bridge only (launching it if needed).")
@click.option("--audio", is_flag=True, help="As a voice message (needs the IMCore bridge).")
@click.option("--reply-to", default=None, help="Thread under this message guid (needs the "
              "IMCore bridge).")
@click.option("--part", type=NON_NEGATIVE, default=0, show_default=True,
              help="Part of --reply-to's message to thread under.")
@max_file_option
@timeout_option
@common
def send_attachment(chat_guid: str | None, chat_id: int | None, file_path: str, transport: str,
                    audio: bool, reply_to: str | None, part: int, max_file_mb: int,
                    timeout: float, db: str | None, as_json: bool, **_: Any) -> None:
    """Send one file to a chat and confirm it in chat.db (the file's row must join the chat).

    Exactly one of --chat GUID and --chat-id. A direct guid Messages has no chat for yet
    (e.g. iMessage;-;+15555550123) reaches that handle. Prints `send-attachment: sent
    (guid=…)`, or with --json {"success":true,"ok":true,"transport":"applescript","id":…,
    "guid":…,"message_id":…,…}; a failure with --json also prints {"success":false,"error":…}
    (plus the delivery object's keys for a send failure) before the error on stderr.
    Through the IMCore bridge (--transport auto when it is ready, or dylib) it is confirmed
    by the helper instead, and --audio (a voice message) and --reply-to work; without the
    bridge they fail before anything is sent.

    \b
    Example:
      imsg send-attachment --chat 'any;+;chat123456' --file ~/Pictures/a.jpg --json
      imsg send-attachment --chat-id 7 --file report.pdf --transport auto
    """
    from imsg.bridge.commands import attachment_via_bridge

    out = Output(as_json)
    try:
        bridged = attachment_via_bridge(transport, chat_guid, chat_id, file_path, audio=audio,
                                        reply_to=reply_to, part=part, db_path=db)
        if bridged is not None:
            out.obj({"success": True, **bridged}) if as_json else out.line(
                f"send-attachment: sent (guid={bridged.get('guid', '')})")
            return
        result = _send_attachment(chat_guid, chat_id, file_path, audio, reply_to, max_file_mb,
                                  timeout, db)
    except ImsgError as err:
        if as_json:
            delivery = err.rpc_data if isinstance(err.rpc_data, dict) else {}
            out.obj({"success": False, "error": err.message, **delivery})
        raise
    if as_json:
        out.obj({"success": True, **result.to_dict()})
    else:
        out.line(f"send-attachment: sent (guid={result.guid})")


def _send_attachment(chat_guid: str | None, chat_id: int | None, file_path: str, audio: bool,
                     reply_to: str | None, max_file_mb: int, timeout: float,
                     db: str | None) -> SendResult:
    from imsg.send import children
    from imsg.send.sender import send as send_message
    from imsg.send.targets import Target, chat_target

    if (chat_guid is None) == (chat_id is None):
        raise InvalidInput("Missing required option: --chat" if chat_guid is None else
                           "Invalid value for option: --chat (give --chat or --chat-id, not "
                           "both)")
    if audio:
        raise InvalidInput("--audio requires bridge transport; AppleScript cannot send voice "
                           "messages")
    if reply_to:
        raise InvalidInput("reply_to requires bridge transport; AppleScript fallback cannot "
                           "send threaded replies")
    target: Target = (chat_target("chat_guid", chat_guid) if chat_guid is not None
                      else chat_target("chat_id", str(chat_id)))
    with children.stop_on_signals():
        return send_message(target, file=file_path, db_path=db, timeout_s=timeout,
                            max_file_bytes=max_file_mb * 1024 * 1024)


@click.command()
@chat_id_option(required=True)
@click.option("--reaction", "-r", required=True,
              help="love, like, dislike, laugh, emphasis or question (or an alias/emoji).")
@timeout_option
@common
def react(chat_id: int, reaction: str, timeout: float, db: str | None, as_json: bool,
          **_: Any) -> None:
    """Put a standard tapback on the chat's latest message: through the IMCore bridge when
    it is ready (`imsg status`), else by UI scripting.

    Limits: needs Automation (Messages, System Events) and Accessibility permission; brings
    Messages to the front and opens the chat through its search (typing the chat's name with
    control characters and line breaks removed); reacts only to the latest message; custom
    emoji tapbacks cannot be sent. Verified in chat.db afterwards.

    \b
    Example:
      imsg react --chat-id 7 --reaction like
      imsg react --chat-id 7 -r ❤️ --json
    """
    from imsg.bridge.commands import react_via_bridge
    from imsg.send import children
    from imsg.send.sender import react as send_reaction

    result = react_via_bridge(chat_id, reaction, db)  # a real tapback when the bridge is ready
    if result is None:
        with children.stop_on_signals():
            result = send_reaction(chat_id, reaction, db_path=db, timeout_s=timeout)
    out = Output(as_json)
    if as_json:
        out.obj(result)
    else:
        out.line(f"Sent {result['reaction_emoji']} reaction to chat {chat_id}")
