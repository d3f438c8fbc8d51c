"""Bridge commands: launch, typing, read, tapback, send-rich, send-multipart, send-sticker,
poll, edit, unsend, delete-message, notify-anyways, chat-*, account, whois, nickname.

Each needs the IMCore helper injected into Messages (SIP off); when none is ready it runs
`imsg launch`'s flow first, as the Swift tool does. Output: with --json the helper's answer
as one object (`{"success": true, …}`: OpenClaw reads the last JSON line and takes the id
from messageGuid), else a one-line summary. A failure prints `{"success": false, "error": …}`
(plus the delivery object's keys for a mutation) with --json, and the error on stderr.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from imsg.cli.options import (
    NON_NEGATIVE,
    POSITIVE,
    Output,
    chat_id_option,
    common,
    parse_duration,
    split_list,
)
from imsg.errors import ImsgError, InvalidInput, SendError

F = TypeVar("F", bound=Callable[..., Any])


def reports(func: F) -> F:
    """Print ``{"success": false, "error": …}`` on stdout for --json before the error goes to
    stderr (``common`` turns it into one line and the exit code)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ImsgError as err:
            if kwargs.get("as_json"):
                delivery = err.rpc_data if isinstance(err, SendError) else {}
                Output(True).obj({"success": False, "error": err.message, **delivery})
            raise

    return wrapper  # type: ignore[return-value]


def bridge_command(name: str) -> Callable[[Callable[..., Any]], click.Command]:
    def decorate(func: Callable[..., Any]) -> click.Command:
        return click.command(name)(common(reports(func)))
    return decorate


def _client() -> Any:
    from imsg.bridge.commands import launching_client

    return launching_client()


def _emit(as_json: bool, data: dict[str, Any], summary: str) -> None:
    out = Output(as_json)
    if as_json:
        out.obj({"success": True, **data})
    else:
        out.line(summary)


def _guid_note(data: dict[str, Any]) -> str:
    guid = data.get("messageGuid")
    return f" (guid={guid})" if isinstance(guid, str) and guid else ""


def _chat(chat: str | None, chat_id: int | None, db: str | None) -> str:
    from imsg.bridge.commands import chat_guid_of

    if (chat is None) == (chat_id is None):
        raise InvalidInput("Missing required option: --chat" if chat is None else
                           "Invalid value for option: --chat (give --chat or --chat-id, not "
                           "both)")
    return chat if chat is not None else chat_guid_of(db, int(str(chat_id)))


chat_option = click.option("--chat", required=True, help="Chat guid (see `imsg chats --json`).")
message_option = click.option("--message", "message", required=True,
                              help="Message guid (p:N/GUID picks part N).")
part_option = click.option("--part", type=NON_NEGATIVE, default=0, show_default=True,
                           help="Message part index.")


# --- launch -----------------------------------------------------------------------------------

@click.command()
@click.option("--dylib", default=None, help="The helper dylib to inject (default: search).")
@click.option("--kill-only", is_flag=True, help="Only quit Messages.app.")
@click.option("--force", is_flag=True, help="Relaunch even when a current helper runs.")
@common
def launch(dylib: str | None, kill_only: bool, force: bool, db: str | None, as_json: bool,
           **_: Any) -> None:
    """Relaunch Messages.app with the IMCore bridge helper injected (needs SIP disabled and
    imsg-bridge-helper.dylib from the Swift imsg release or Homebrew), then wait until it is
    ready (IMSG_LAUNCH_READY_TIMEOUT seconds, default 15). Quits Messages first.

    \b
    Example:
      imsg launch
      imsg launch --dylib /opt/homebrew/lib/imsg-bridge-helper.dylib --json
    """
    from imsg.bridge.launch import launch as run_launch
    from imsg.errors import LaunchFailed

    out = Output(as_json)
    try:
        result = run_launch(dylib=dylib, kill_only=kill_only, force=force)
    except LaunchFailed as err:
        if as_json:
            if err.reason in ("sip_enabled", "sip_unknown", "dylib_not_found"):
                out.obj({"status": "error", "error": err.reason, "message": err.message})
            else:
                out.obj({"status": "error", "dylib": err.dylib or "", "error": err.message})
        raise
    out.obj(result) if as_json else out.line(str(result["message"]))


# --- typing and read --------------------------------------------------------------------------

def _direct_options(func: F) -> F:
    func = click.option("--chat-guid", default=None, help="Chat guid.")(func)
    func = click.option("--chat-identifier", default=None, help="Chat identifier.")(func)
    func = chat_id_option(required=False)(func)
    return click.option("--to", "--handle", "to", default=None,
                        help="Phone or email of a direct chat.")(func)


@bridge_command("typing")
@_direct_options
@click.option("--duration", default=None, callback=lambda c, p, v: None if v is None
              else parse_duration(c, p, v), help="Show it this long, then stop (e.g. 5s).")
@click.option("--stop", type=click.BOOL, is_flag=False, flag_value=True, default=False,
              metavar="[true|false]", help="Stop the typing indicator (`--stop` alone, or "
              "`--stop true` as the Swift tool takes it).")
@click.option("--service", type=click.Choice(["imessage", "sms"]), default="imessage",
              show_default=True)
def typing(to: str | None, chat_id: int | None, chat_identifier: str | None,
           chat_guid: str | None, duration: float | None, stop: bool, service: str,
           db: str | None, as_json: bool, **_: Any) -> None:
    """Show (or --stop) the typing indicator in a chat. JSON adds the Swift tool's `status`:
    `started`, `stopped`, or `completed` with `duration_s` after --duration.

    \b
    Example:
      imsg typing --to +15555550123 --duration 5s
      imsg typing --chat-guid 'iMessage;-;+15555550123' --stop
    """
    from imsg.bridge.commands import direct_target

    handle = direct_target(db, to=to, chat_id=chat_id, chat_identifier=chat_identifier,
                           chat_guid=chat_guid, service=service)
    client = _client()
    data = client.call("typing", {"handle": handle, "typing": not stop})
    status: dict[str, Any] = {"status": "stopped" if stop else "started"}
    if duration is not None and not stop:
        time.sleep(duration)
        data = client.call("typing", {"handle": handle, "typing": False})
        summary = f"typing: shown for {duration:g}s"
        status = {"status": "completed", "duration_s": str(duration)}
    else:
        summary = "typing: stopped" if stop else "typing: started"
    _emit(as_json, {**data, "handle": handle, "typing": not stop and duration is None,
                    **status}, summary)


@bridge_command("read")
@_direct_options
def read(to: str | None, chat_id: int | None, chat_identifier: str | None,
         chat_guid: str | None, db: str | None, as_json: bool, **_: Any) -> None:
    """Mark a chat read (sends read receipts where they are on).

    \b
    Example:
      imsg read --to +15555550123
    """
    from imsg.bridge.commands import direct_target

    handle = direct_target(db, to=to, chat_id=chat_id, chat_identifier=chat_identifier,
                           chat_guid=chat_guid)
    data = _client().call("read", {"handle": handle})
    _emit(as_json, {**data, "handle": handle, "marked_as_read": True},
          f"marked as read: {handle}")


# --- tapbacks and message changes -------------------------------------------------------------

@bridge_command("tapback")
@chat_option
@message_option
@click.option("--kind", default=None,
              help="love, like, dislike, laugh, emphasize or question (or an alias).")
@click.option("--emoji", default=None, help="A custom emoji tapback (newer helpers).")
@part_option
@click.option("--remove", is_flag=True, help="Take the tapback back.")
def tapback(chat: str, message: str, kind: str | None, emoji: str | None, part: int,
            remove: bool, db: str | None, as_json: bool, **_: Any) -> None:
    """Put a tapback on a specific message (any part of it).

    \b
    Example:
      imsg tapback --chat 'iMessage;-;+15555550123' --message 8DF2… --kind love
      imsg tapback --chat 'any;+;chat123' --message 8DF2… --emoji 🎉 --json
    """
    from imsg.bridge import vocab
    from imsg.bridge.probe import probe

    guid, embedded = vocab.message_target(message)
    part = embedded if embedded is not None and part == 0 else part
    if (kind is None) == (emoji is None):
        raise InvalidInput("Missing required option: --kind" if kind is None else
                           "Invalid value for option: --emoji (give --kind or --emoji)")
    client = _client()
    params: dict[str, Any] = {"chatGuid": chat, "selectedMessageGuid": guid, "partIndex": part}
    if emoji is not None:
        if not client.ready() or not probe(client).selector("emojiTapbackSend"):
            raise InvalidInput("Emoji tapbacks need a bridge helper that reports "
                               "emojiTapbackSend; use --kind")
        params.update(emoji=emoji.strip(), remove=remove)
        shown = f"remove-{emoji.strip()}" if remove else emoji.strip()
    else:
        name, prefixed = vocab.tapback_kind(kind or "")
        shown = f"remove-{name}" if remove or prefixed else name
        params["reactionType"] = shown
    data = client.call("send-reaction", params)
    _emit(as_json, {**data, "reaction": shown}, f"tapback: {shown} sent")


@bridge_command("edit")
@chat_option
@message_option
@click.option("--new-text", required=True, help="The new text.")
@click.option("--bc-text", default=None,
              help="What older devices see (default: the new text).")
@part_option
def edit(chat: str, message: str, new_text: str, bc_text: str | None, part: int,
         db: str | None, as_json: bool, **_: Any) -> None:
    """Edit one of your sent messages.

    \b
    Example:
      imsg edit --chat 'iMessage;-;+15555550123' --message 8DF2… --new-text "fixed typo"
    """
    data = _client().call("edit-message", {
        "chatGuid": chat, "messageGuid": message, "editedMessage": new_text,
        "backwardsCompatibilityMessage": bc_text or new_text, "partIndex": part})
    _emit(as_json, data, "edit: sent")


@bridge_command("unsend")
@chat_option
@message_option
@part_option
def unsend(chat: str, message: str, part: int, db: str | None, as_json: bool,
           **_: Any) -> None:
    """Unsend one of your messages (within Messages' time limit).

    \b
    Example:
      imsg unsend --chat 'iMessage;-;+15555550123' --message 8DF2…
    """
    data = _client().call("unsend-message", {"chatGuid": chat, "messageGuid": message,
                                             "partIndex": part})
    _emit(as_json, data, "unsend: sent")


def _message_command(name: str, action: str, summary: str, doc: str) -> click.Command:
    @bridge_command(name)
    @chat_option
    @message_option
    def command(chat: str, message: str, db: str | None, as_json: bool, **_: Any) -> None:
        data = _client().call(action, {"chatGuid": chat, "messageGuid": message})
        _emit(as_json, data, summary)

    command.help = doc
    return command


delete_message = _message_command(
    "delete-message", "delete-message", "delete-message: deleted",
    "Delete a message from this Mac's copy of the chat.\n\n\b\nExample:\n"
    "  imsg delete-message --chat 'iMessage;-;+15555550123' --message 8DF2…")
notify_anyways = _message_command(
    "notify-anyways", "notify-anyways", "notify-anyways: sent",
    "Notify the recipient even though they have Focus on.\n\n\b\nExample:\n"
    "  imsg notify-anyways --chat 'iMessage;-;+15555550123' --message 8DF2…")


# --- sending ----------------------------------------------------------------------------------

@bridge_command("send-rich")
@chat_option
@click.option("--text", default=None, help="Message text.")
@click.option("--file", "file_path", default=None, help="A file to send (the text captions it).")
@click.option("--url", default=None, help="Send a link card for this URL (alone).")
@click.option("--effect", default=None,
              help="impact, loud, gentle, invisibleink, confetti, lasers, fireworks, balloons, "
                   "sparkles, spotlight, echo, love, celebration (or a com.apple.… id).")
@click.option("--subject", default=None, help="A subject line.")
@click.option("--reply-to", default=None, help="Thread under this message guid.")
@part_option
@click.option("--format", "format_json", default=None,
              help='Formatting ranges: [{"start":0,"length":5,"styles":["bold"]}] (UTF-16).')
@click.option("--format-file", default=None, help="Formatting ranges from a JSON file.")
@click.option("--no-dd-scan", is_flag=True, help="Do not detect dates, links and addresses.")
def send_rich(chat: str, text: str | None, file_path: str | None, url: str | None,
              effect: str | None, subject: str | None, reply_to: str | None, part: int,
              format_json: str | None, format_file: str | None, no_dd_scan: bool,
              db: str | None, as_json: bool, **_: Any) -> None:
    """Send with what AppleScript cannot: effects, a subject, a threaded reply, bold/italic
    ranges; or a file (confirmed in chat.db) or a link card.

    \b
    Example:
      imsg send-rich --chat 'iMessage;-;+15555550123' --text "hi" --effect confetti
      imsg send-rich --chat 'any;+;chat123' --text "agreed" --reply-to 8DF2… --json
      imsg send-rich --chat 'any;+;chat123' --file ~/Pictures/a.jpg --text "look"
    """
    from imsg.bridge.commands import formatting_from
    from imsg.bridge.commands import send_rich as run

    formatting = formatting_from(format_json, format_file)
    data, how = run(_client(), db, chat, text=text, file=file_path, url=url, effect=effect,
                    subject=subject, reply_to=reply_to, part=part, formatting=formatting,
                    dd_scan=not no_dd_scan)
    if how == "attachment":
        summary = "send-rich: attachment queued"
    elif data.get("messageGuid"):
        summary = f"send-rich: sent{_guid_note(data)}"
    else:
        summary = "send-rich: queued"
    _emit(as_json, data, summary)


@bridge_command("send-multipart")
@chat_option
@click.option("--parts", "parts_json", default=None,
              help='Parts as JSON: ["one", {"text": "two"}].')
@click.option("--parts-file", default=None, help="Parts from a JSON file.")
@click.option("--effect", default=None, help="An expressive-send or screen effect.")
@click.option("--subject", default=None, help="A subject line.")
def send_multipart(chat: str, parts_json: str | None, parts_file: str | None,
                   effect: str | None, subject: str | None, db: str | None, as_json: bool,
                   **_: Any) -> None:
    """Send several text parts as one message (confirmed in chat.db).

    \b
    Example:
      imsg send-multipart --chat 'iMessage;-;+15555550123' --parts '["Hello", "world"]'
    """
    from pathlib import Path

    from imsg.bridge.commands import send_multipart as run

    if (parts_json is None) == (parts_file is None):
        raise InvalidInput("Missing required option: --parts" if parts_json is None else
                           "Invalid value for option: --parts (give --parts or --parts-file)")
    try:
        parts = json.loads(parts_json if parts_json is not None
                           else Path(str(parts_file)).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"Invalid value for option: --parts ({exc})") from None
    data = run(_client(), db, chat, parts, effect=effect, subject=subject)
    count = data.get("parts_count", len(parts) if isinstance(parts, list) else 0)
    _emit(as_json, data, f"send-multipart: {count} parts queued{_guid_note(data)}")


@bridge_command("send-sticker")
@click.option("--chat", default=None, help="Chat guid.")
@chat_id_option(required=False)
@click.option("--file", "file_path", required=True, help="PNG, GIF or JPEG, ≤ 500 KiB, ≤ 618 px.")
@click.option("--attach-to", default=None, help="Stick it onto this message guid.")
@click.option("--target-part", type=NON_NEGATIVE, default=None, help="Part of that message.")
def send_sticker(chat: str | None, chat_id: int | None, file_path: str, attach_to: str | None,
                 target_part: int | None, db: str | None, as_json: bool, **_: Any) -> None:
    """Send a sticker, on its own or stuck onto a message.

    \b
    Example:
      imsg send-sticker --chat 'iMessage;-;+15555550123' --file party.png --attach-to 8DF2…
    """
    from imsg.bridge.commands import send_sticker as run

    data = run(_client(), _chat(chat, chat_id, db), file_path, attach_to=attach_to,
               part=target_part)
    _emit(as_json, data, f"send-sticker: sent{_guid_note(data)}")


@click.group()
def poll() -> None:
    """Native polls: send one, vote, take a vote back.

    \b
    Example:
      imsg poll send --chat 'any;+;chat123' --question Dinner? --option Pizza --option Sushi
      imsg poll vote --chat 'any;+;chat123' --poll 8DF2… --option-index 2
    """


@poll.command("send")
@click.option("--chat", default=None, help="Chat guid.")
@chat_id_option(required=False)
@click.option("--question", required=True, help="The question.")
@click.option("--option", "options", multiple=True, required=True, help="A choice (repeat).")
@click.option("--comment", default=None, help="The caption sent after it (default: the "
              "question).")
@click.option("--no-comment", is_flag=True, help="Send no caption.")
@click.option("--reply-to", default=None, help="Thread under this message guid.")
@common
@reports
def poll_send(chat: str | None, chat_id: int | None, question: str, options: tuple[str, ...],
              comment: str | None, no_comment: bool, reply_to: str | None, db: str | None,
              as_json: bool, **_: Any) -> None:
    """Send a poll (and its caption, checked in chat.db for 8 s).

    \b
    Example:
      imsg poll send --chat 'any;+;chat123' --question Dinner? --option Pizza --option Sushi
    """
    from imsg.bridge.commands import poll_send as run

    data = run(_client(), db, _chat(chat, chat_id, db), question, list(options),
               comment=comment, no_comment=no_comment, reply_to=reply_to)
    _emit(as_json, data, f"poll: created{_guid_note(data)}")


def _vote_command(name: str, unvote: bool) -> click.Command:
    @poll.command(name)
    @click.option("--chat", default=None, help="Chat guid.")
    @chat_id_option(required=False)
    @click.option("--poll", "poll_guid", required=True, help="The poll's message guid.")
    @click.option("--option-id", default=None, help="The choice by id.")
    @click.option("--option-index", type=POSITIVE, default=None, help="The choice by number.")
    @click.option("--option", default=None, help="The choice by its text.")
    @common
    @reports
    def command(chat: str | None, chat_id: int | None, poll_guid: str, option_id: str | None,
                option_index: int | None, option: str | None, db: str | None, as_json: bool,
                **_: Any) -> None:
        from imsg.bridge.commands import poll_vote

        data = poll_vote(_client(), db, _chat(chat, chat_id, db), poll_guid,
                         option_id=option_id, option_index=option_index, option=option,
                         unvote=unvote)
        _emit(as_json, data, f"poll: {name}d {data.get('option_text')}")

    command.help = (f"{'Take back your vote for' if unvote else 'Vote for'} one choice of a "
                    f"poll.\n\n\b\nExample:\n  imsg poll {name} --chat 'any;+;chat123' "
                    "--poll 8DF2… --option Pizza")
    return command


poll_vote = _vote_command("vote", unvote=False)
poll_unvote = _vote_command("unvote", unvote=True)


# --- chats and groups -------------------------------------------------------------------------

@bridge_command("chat-create")
@click.option("--addresses", multiple=True, required=True,
              help="Recipients (comma-separated or repeated).")
@click.option("--name", default=None, help="Group name.")
@click.option("--text", default=None, help="A first message.")
@click.option("--service", default="iMessage", show_default=True, help="Only iMessage.")
def chat_create(addresses: tuple[str, ...], name: str | None, text: str | None, service: str,
                db: str | None, as_json: bool, **_: Any) -> None:
    """Create a chat (a group with several addresses); every recipient must be reachable.

    \b
    Example:
      imsg chat-create --addresses +15555550123,jane@example.com --name "Trip" --text "hi"
    """
    recipients = split_list(addresses)
    if service.strip().lower() != "imessage":
        raise InvalidInput("Invalid value for option: --service (only iMessage)")
    params: dict[str, Any] = {"addresses": recipients, "service": "iMessage"}
    if name:
        params["displayName"] = name
    if text:
        params["message"] = text
    data = _client().call("create-chat", params)
    _emit(as_json, data, f"chat-create: created {data.get('chatGuid', '')}".rstrip())


def _chat_command(name: str, action: str, summary: str, doc: str,
                  field: tuple[str, str, str] | None = None) -> click.Command:
    def command(chat: str, db: str | None, as_json: bool, **kwargs: Any) -> None:
        params: dict[str, Any] = {"chatGuid": chat}
        if field is not None:
            params[field[1]] = kwargs[field[0]]
        data = _client().call(action, params)
        _emit(as_json, data, summary.format(**kwargs))

    command.__doc__ = doc
    command.__name__ = name.replace("-", "_")
    if field is not None:
        command = click.option(f"--{field[0]}", field[0], required=True, help=field[2])(command)
    return bridge_command(name)(chat_option(command))


chat_name = _chat_command(
    "chat-name", "set-display-name", "chat-name: renamed",
    "Rename a group.\n\n\b\nExample:\n  imsg chat-name --chat 'any;+;chat123' --name Trip",
    ("name", "newName", "The new name."))
chat_add_member = _chat_command(
    "chat-add-member", "add-participant", "chat-add-member: added {address}",
    "Add someone to a group.\n\n\b\nExample:\n"
    "  imsg chat-add-member --chat 'any;+;chat123' --address +15555550188",
    ("address", "address", "Phone or email to add."))
chat_remove_member = _chat_command(
    "chat-remove-member", "remove-participant", "chat-remove-member: removed {address}",
    "Remove someone from a group.\n\n\b\nExample:\n"
    "  imsg chat-remove-member --chat 'any;+;chat123' --address +15555550188",
    ("address", "address", "Phone or email to remove."))
chat_leave = _chat_command(
    "chat-leave", "leave-chat", "chat-leave: left",
    "Leave a group.\n\n\b\nExample:\n  imsg chat-leave --chat 'any;+;chat123'")
chat_delete = _chat_command(
    "chat-delete", "delete-chat", "chat-delete: deleted",
    "Delete a chat from this Mac.\n\n\b\nExample:\n  imsg chat-delete --chat 'any;+;chat123'")


@bridge_command("chat-photo")
@chat_option
@click.option("--file", "file_path", default=None, help="The new photo (omit to clear it).")
def chat_photo(chat: str, file_path: str | None, db: str | None, as_json: bool,
               **_: Any) -> None:
    """Set (or clear) a group's photo.

    \b
    Example:
      imsg chat-photo --chat 'any;+;chat123' --file ~/Pictures/group.jpg
    """
    from imsg.bridge.files import stage

    client = _client()
    params: dict[str, Any] = {"chatGuid": chat}
    if file_path:
        params["filePath"] = str(stage(file_path, "update-group-photo", client.transport))
    data = client.call("update-group-photo", params)
    _emit(as_json, data, "chat-photo: set" if file_path else "chat-photo: cleared")


@bridge_command("chat-mark")
@chat_option
@click.option("--read", "read_", is_flag=True, help="Mark it read.")
@click.option("--unread", is_flag=True, help="Mark it unread.")
def chat_mark(chat: str, read_: bool, unread: bool, db: str | None, as_json: bool,
              **_: Any) -> None:
    """Mark a chat read or unread (one of the two).

    \b
    Example:
      imsg chat-mark --chat 'iMessage;-;+15555550123' --unread
    """
    if read_ == unread:
        raise InvalidInput("Missing required option: --read or --unread" if not read_ else
                           "Invalid value for option: --unread (give --read or --unread, not "
                           "both)")
    mark = "read" if read_ else "unread"
    data = _client().call(f"mark-chat-{mark}", {"chatGuid": chat})
    _emit(as_json, data, f"chat-mark: {mark}")


# --- introspection ----------------------------------------------------------------------------

def _fields(data: dict[str, Any]) -> str:
    return "\n".join(f"{key}: {json.dumps(value) if not isinstance(value, str) else value}"
                     for key, value in data.items())


@bridge_command("account")
@click.option("--local", is_flag=True, help="From chat.db, without the bridge.")
def account(local: bool, db: str | None, as_json: bool, **_: Any) -> None:
    """The iMessage account Messages uses (--local: the accounts chat.db records).

    \b
    Example:
      imsg account --json
      imsg account --local
    """
    if local:
        from imsg.bridge.local import accounts

        data = accounts(db)
        lines = [f"{a['login'] or '(none)'} {a['account_id']} ({a['chat_count']} chats)"
                 for a in data["accounts"]]
        Output(as_json).item(data, "\n".join(lines) or "no accounts")
        return
    data = _client().call("get-account-info", {})
    _emit(as_json, data, _fields(data))


@bridge_command("whois")
@click.option("--address", required=True, help="Phone or email.")
@click.option("--type", "alias_type", type=click.Choice(["phone", "email"]), default=None,
              help="What the address is (default: email when it has an @).")
@click.option("--local", is_flag=True, help="From chat.db history, without the bridge.")
def whois(address: str, alias_type: str | None, local: bool, db: str | None, as_json: bool,
          **_: Any) -> None:
    """Whether an address reaches iMessage (--local: what local history shows).

    \b
    Example:
      imsg whois --address +15555550123
      imsg whois --address jane@example.com --local --json
    """
    if local:
        from imsg.bridge.local import whois as local_whois

        data = local_whois(db, address)
        Output(as_json).item(data, f"{address}: {data['service']}"
                                   f"{'' if data['known'] else ' (not in local history)'}")
        return
    alias = alias_type or ("email" if "@" in address else "phone")
    data = _client().call("check-imessage-availability", {"address": address,
                                                          "aliasType": alias})
    _emit(as_json, data, _fields(data))


@bridge_command("nickname")
@click.option("--address", default=None, help="Phone or email (default: your own).")
@click.option("--local", is_flag=True, help="From Contacts (the AddressBook), no bridge.")
def nickname(address: str | None, local: bool, db: str | None, as_json: bool,
             **_: Any) -> None:
    """A Name & Photo nickname (--local: the Contacts name of --address).

    \b
    Example:
      imsg nickname --address +15555550123 --local
    """
    if local:
        from imsg.bridge.local import nickname as local_nickname

        if not address:
            raise InvalidInput("Missing required option: --address")
        data = local_nickname(address)
        Output(as_json).item(data, data.get("local_contact_name") or f"{address}: not found")
        return
    params = {"address": address} if address else {}
    data = _client().call("get-nickname-info", params)
    _emit(as_json, data, _fields(data))


# --- watch --bb-events ------------------------------------------------------------------------

def print_bridge_events(out: Output, on_status: Callable[[str], None]) -> Any:
    """Print the helper's events as they come, on a thread of their own (``imsg watch
    --bb-events``); returns the ``threading.Event`` that stops it, or None (said on stderr)
    when the event log cannot be read. JSON: ``{"kind":"bridge-event","event","ts"?,
    "data"}``; text: ``<ts> [bridge] <event>``."""
    import threading

    from imsg.bridge.container import Container
    from imsg.bridge.events import EventsReadFailed, EventsUnavailable, open_tail

    try:
        tail = open_tail(Container.default().events)
    except EventsUnavailable as exc:
        on_status(f"bridge events unavailable: {exc}")
        return None
    stop = threading.Event()

    def run() -> None:
        try:
            for event in tail.follow(stop):
                if out.as_json:
                    out.obj({"kind": "bridge-event", **event})
                else:
                    out.line(f"{event.get('ts', '-')} [bridge] {event['event']}")
        except EventsReadFailed as exc:
            on_status(f"bridge events stopped: {exc}")
        except OSError:
            pass  # stdout went away: the watch itself reports that
        finally:
            tail.close()

    threading.Thread(target=run, name="imsg-bridge-events", daemon=True).start()
    return stop


@click.group("name-photo")
def name_photo() -> None:
    """Your Name & Photo (the profile Messages shares): should it be offered in a chat, and
    share it.

    \b
    Example:
      imsg name-photo status --chat 'iMessage;-;+15555550123'
      imsg name-photo share --chat 'iMessage;-;+15555550123' --json
    """


@name_photo.command("status")
@chat_option
@common
@reports
def name_photo_status(chat: str, db: str | None, as_json: bool, **_: Any) -> None:
    """Whether Messages would offer to share your Name & Photo in the chat."""
    data = _client().call("should-offer-nickname-sharing", {"chatGuid": chat})
    _emit(as_json, data, _fields(data))


@name_photo.command("share")
@chat_option
@common
@reports
def name_photo_share(chat: str, db: str | None, as_json: bool, **_: Any) -> None:
    """Share your Name & Photo with everyone in the chat (no vCard is sent)."""
    data = _client().call("share-nickname", {"chatGuid": chat})
    _emit(as_json, data, "name-photo: shared")
