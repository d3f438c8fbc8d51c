"""The MCP server: imsg's tools on the official SDK (``mcp``'s ``MCPServer``), over stdio.

This module only declares tools (names, typed parameters with descriptions written for a
model, annotations) and runs them: the work is in ``reading``, ``attachments``, ``waiting``,
``sending`` and ``diagnose``, over the same library the CLI and ``imsg rpc`` use. The SDK
speaks the protocol; nothing here frames a message.

- **Threads**: reads run on ``READERS`` threads, each with its own connection
  (``imsg.rpc.context.Database``: opened lazily, reopened when the file is replaced, a missing
  database or Full Disk Access retried on every call, so fixing it needs no restart); sends and
  other actions run one at a time on their own thread; each ``wait_for_message`` blocks a
  worker thread of its own and is closed when its request is cancelled or the server stops.
- **Errors**: an ``imsg.errors`` failure is an MCP tool error (``isError``) with the CLI's
  one-line message (``answers.error_result``); arguments that do not fit a tool's schema are
  refused by the SDK the same way. The server never exits because a tool failed.
- **Streams**: stdout carries protocol frames only. The SDK points descriptor 1 at stderr while
  it serves; ``serve`` also makes ``sys.stdout`` unbuffered so nothing printed can be held back
  and flushed onto the wire at exit. Logs (every send and its outcome) go to stderr.
- **Tools listed**: the reading tools always; ``send_message`` and ``react`` unless
  ``--read-only``; ``typing`` and ``mark_read`` when the IMCore bridge's helper was ready at
  start (restart the server after ``imsg launch``).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import anyio
from mcp.server import MCPServer
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field

from imsg import __version__
from imsg.chatdb.reader import ChatDB
from imsg.errors import ImsgError
from imsg.mcp import attachments, reading
from imsg.mcp.answers import Answer, error_result, to_result
from imsg.mcp.diagnose import diagnose
from imsg.mcp.sending import Actions, Policy
from imsg.mcp.waiting import MAX_TIMEOUT_S, Outcome, Waiter
from imsg.rpc.context import Database

READERS = 2
T = TypeVar("T")

INSTRUCTIONS = """\
iMessage on this Mac. Messages are shown one per line as `#<id> HH:MM <sender>: <text>` under \
day headers, newest first unless said otherwise; `me` is the user. Use the #id with \
get_context, get_attachment, react and as wait_for_message's `since`. Tools that take a chat \
accept chat_id or `chat`: a contact name, phone number, email or group name (no need to call \
find_chat first). To send and wait for the answer: send_message, then wait_for_message with \
since = the id it returned."""

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
ACT = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                      open_world_hint=True)

ChatId = Annotated[int | None, Field(description="The chat's id (the N of `[chat N]`).", ge=1)]
ChatQuery = Annotated[str | None, Field(
    description="Instead of chat_id: a contact name (typos are fine), phone number, email, "
                "group name, or several people ('Alice, Bob'). The best match is used; others "
                "are mentioned.")]
Before = Annotated[str | None, Field(
    description="Only messages before this time: ISO-8601 (2026-05-16 or "
                "2026-05-16T15:24:00Z; no zone means local time), or 2h / 3d / 1w ago, "
                "today, yesterday.")]
After = Annotated[str | None, Field(description="Only messages at or after this time (same "
                                                "forms as before).")]
MessageId = Annotated[int, Field(description="The message's id (the N of `#N`).", ge=1)]
Sender = Annotated[str | None, Field(
    description="Only messages from this person: a contact name, phone number, email, or "
                "'me'.")]


@dataclass(frozen=True, slots=True)
class Config:
    db_path: str
    policy: Policy
    region: str = "US"


class Tools:
    """The tools of one server: its database, its threads, its policy."""

    def __init__(self, config: Config, *, bridge_ready: bool) -> None:
        self.config = config
        self.bridge_ready = bridge_ready
        self.database = Database(config.db_path)
        self.actions = Actions(self.database.path, config.policy, config.region)
        self._readers = ThreadPoolExecutor(READERS, thread_name_prefix="imsg-mcp-read")
        self._actor = ThreadPoolExecutor(1, thread_name_prefix="imsg-mcp-act")

    def close(self) -> None:
        self._readers.shutdown(wait=False, cancel_futures=True)
        self._actor.shutdown(wait=True)
        self.database.close()

    async def _run(self, pool: ThreadPoolExecutor, work: Callable[[ChatDB], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, lambda: work(self.database.get()))

    async def read(self, work: Callable[[ChatDB], Answer]) -> CallToolResult:
        try:
            return to_result(await self._run(self._readers, work))
        except ImsgError as err:
            return error_result(err)

    async def act(self, work: Callable[[ChatDB], Answer]) -> CallToolResult:
        try:
            return to_result(await self._run(self._actor, work))
        except ImsgError as err:
            return error_result(err)

    async def wait(self, *, chat_id: int | None, chat: str | None, sender: str | None,
                   since: int | None, timeout_s: float, include_mine: bool) -> CallToolResult:
        try:
            waiter, label = await self._run(self._readers, lambda db: self._waiter(
                db, chat_id, chat, sender, since, include_mine))
            try:
                outcome = await anyio.to_thread.run_sync(waiter.wait, timeout_s,
                                                         abandon_on_cancel=True)
            finally:
                waiter.close()
            return to_result(await self._run(self._readers, lambda db: _waited(
                db, outcome, label, timeout_s)))
        except ImsgError as err:
            return error_result(err)

    def _waiter(self, db: ChatDB, chat_id: int | None, chat: str | None, sender: str | None,
                since: int | None, include_mine: bool) -> tuple[Waiter, str]:
        from imsg.mcp import formatting as fmt

        names: dict[str, str] = {}
        scope = None
        if chat_id is not None or (chat and chat.strip()):
            scope, _ = reading.target_chat(db, chat_id, chat, names)
        senders: tuple[str, ...] = ()
        mine_only = False
        if sender and sender.strip():
            mine_only, senders = reading.senders_named(db, sender, scope, names)
            include_mine = include_mine or mine_only
        label = fmt.chat_header(scope, names) if scope else "any chat"

        def accept(message: Any) -> bool:
            if mine_only:
                return bool(message.is_from_me)
            return include_mine or not message.is_from_me

        waiter = Waiter(self.database.path, since=since or None,
                        chat_id=scope.id if scope else None, senders=senders, accept=accept)
        return waiter, label


def _waited(db: ChatDB, outcome: Outcome, label: str, timeout_s: float) -> Answer:
    from imsg.mcp import formatting as fmt
    from imsg.mcp.finding import chat_by_id

    message = outcome.message
    if message is None:
        return Answer(f"No new message in {label} within {timeout_s:g}s. To keep waiting "
                      f"without missing any, call wait_for_message again with "
                      f"since={outcome.cursor}.",
                      {"message": None, "cursor": outcome.cursor, "timed_out": True})
    chat = chat_by_id(db, message.chat_id)
    names = reading.names_for(db, [chat], [message])
    lines = [f"New message in {fmt.chat_header(chat, names)} (cursor {outcome.cursor}; pass "
             f"since={outcome.cursor} to wait for the next one):",
             *fmt.messages_block([message], names, reading.today())]
    return Answer("\n".join(lines), {"chat": fmt.chat_data(chat, names),
                                     "message": fmt.message_data(message),
                                     "cursor": outcome.cursor, "timed_out": False})


def build(config: Config, *, bridge_ready: bool | None = None) -> tuple[MCPServer, Tools]:
    """The server and its tools (module docstring for what is listed when)."""
    if bridge_ready is None:
        from imsg.bridge.client import BridgeClient

        bridge_ready = not config.policy.read_only and BridgeClient().ready()
    tools = Tools(config, bridge_ready=bridge_ready)
    server = MCPServer("imsg", title="iMessage (imsg)", version=__version__,
                       instructions=INSTRUCTIONS, log_level="WARNING")
    _reading_tools(server, tools)
    if not config.policy.read_only:
        _acting_tools(server, tools)
        if tools.bridge_ready:
            _bridge_tools(server, tools)
    return server, tools


def _reading_tools(server: MCPServer, tools: Tools) -> None:
    async def find_chat(
        query: Annotated[str, Field(description="A contact name (typos are fine), phone number "
                                                "in any format, email, group name, or several "
                                                "people: 'Alice, Bob'.", min_length=1)],
        limit: Annotated[int, Field(description="How many chats at most.", ge=1, le=50)] = 5,
    ) -> CallToolResult:
        """Find the chats of a person, a number, an email, a group name or several people; best
        match first, each with its last message and unread count."""
        return await tools.read(lambda db: reading.find_chat(db, query=query, limit=limit))

    async def list_chats(
        limit: Annotated[int, Field(description="How many chats at most.", ge=1, le=200)] = 20,
        unread_only: Annotated[bool, Field(description="Only chats with unread messages.")]
        = False,
    ) -> CallToolResult:
        """List chats, most recent activity first, each with its people, unread count and last
        message."""
        return await tools.read(lambda db: reading.list_chats(db, limit=limit,
                                                              unread_only=unread_only))

    async def get_unread(
        chats: Annotated[int, Field(description="How many chats at most.", ge=1, le=100)] = 10,
        per_chat: Annotated[int, Field(description="How many messages per chat at most.",
                                       ge=1, le=200)] = 20,
    ) -> CallToolResult:
        """The unread incoming messages themselves, grouped by chat, most recent chat first."""
        return await tools.read(lambda db: reading.get_unread(db, chat_limit=chats,
                                                              per_chat=per_chat))

    async def read_messages(
        chat_id: ChatId = None,
        chat: ChatQuery = None,
        limit: Annotated[int, Field(description="How many messages at most.", ge=1, le=500)]
        = 50,
        before: Before = None,
        after: After = None,
        participants: Annotated[list[str] | None, Field(
            description="Only messages involving these members of the chat (names or "
                        "handles).")] = None,
    ) -> CallToolResult:
        """Read a chat's messages, newest first: text exactly as sent (edits and unsends
        marked), who reacted how, what each reply answers, attachments (with their index for
        get_attachment) and voice-message transcripts. Give chat_id, or chat as a name,
        number, email or group name."""
        return await tools.read(lambda db: reading.read_messages(
            db, chat_id=chat_id, chat=chat, limit=limit, before=before, after=after,
            participants=participants or ()))

    async def get_context(
        message_id: MessageId,
        before: Annotated[int, Field(description="Messages before it.", ge=0, le=100)] = 5,
        after: Annotated[int, Field(description="Messages after it.", ge=0, le=100)] = 5,
    ) -> CallToolResult:
        """The messages around one message (e.g. a search hit), oldest first, the message
        itself marked with >>."""
        return await tools.read(lambda db: reading.get_context(
            db, message_id=message_id, before=before, after=after))

    async def search_messages(
        query: Annotated[str, Field(description="Text to look for (case-insensitive, also in "
                                                "voice-message transcripts).", min_length=1)],
        chat_id: ChatId = None,
        chat: ChatQuery = None,
        sender: Sender = None,
        after: After = None,
        before: Before = None,
        limit: Annotated[int, Field(description="How many messages at most.", ge=1,
                                    le=reading.SEARCH_LIMIT_MAX)] = 20,
    ) -> CallToolResult:
        """Search message text across all chats (or one), newest first, optionally only from
        one person and within dates. Use get_context on a hit to see the conversation."""
        return await tools.read(lambda db: reading.search_messages(
            db, query=query, chat_id=chat_id, chat=chat, sender=sender, after=after,
            before=before, limit=limit))

    async def get_attachment(
        message_id: MessageId,
        index: Annotated[int, Field(description="Which attachment of the message (the N of "
                                                "`[N: image …]`).", ge=0)] = 0,
        max_pixels: Annotated[int, Field(description="Longest side of a returned image.",
                                         ge=64, le=4096)] = attachments.DEFAULT_MAX_PIXELS,
    ) -> CallToolResult:
        """Look at an attachment: an image is returned as an image (downscaled); other files
        as their type, size, path and, for voice messages, the transcript."""
        return await tools.read(lambda db: attachments.get_attachment(
            db, message_id=message_id, index=index, max_pixels=max_pixels))

    async def list_attachments(
        chat_id: ChatId = None,
        chat: ChatQuery = None,
        kind: Annotated[Literal["image", "video", "audio", "file", "any"], Field(
            description="Only this kind: image (photos), video, audio (voice messages), file "
                        "(documents and anything else), or any (stickers too).")] = "any",
        sender: Sender = None,
        before: Before = None,
        after: After = None,
        limit: Annotated[int, Field(description="How many attachments at most.", ge=1,
                                    le=100)] = 20,
    ) -> CallToolResult:
        """List shared files (photos, videos, voice messages, documents), newest first, in one
        chat or all, optionally by kind, sender and dates: one line each with its message #id
        and index (pass both to get_attachment to look at one), name, size, whether it is
        still in iCloud, and a voice message's transcript."""
        return await tools.read(lambda db: attachments.list_attachments(
            db, chat_id=chat_id, chat=chat, kind=kind, sender=sender, before=before,
            after=after, limit=limit))

    async def wait_for_message(
        chat_id: ChatId = None,
        chat: ChatQuery = None,
        sender: Sender = None,
        since: Annotated[int | None, Field(
            description="Only messages after this message id or cursor (e.g. the id "
                        "send_message returned): none is missed, even one that arrived before "
                        "this call. Default: from now.", ge=0)] = None,
        timeout_s: Annotated[float, Field(description="How long to wait, in seconds.", gt=0,
                                          le=MAX_TIMEOUT_S)] = 60.0,
        include_mine: Annotated[bool, Field(description="Also return messages the user sent "
                                                        "(from another device).")] = False,
    ) -> CallToolResult:
        """Wait until a new message arrives (in one chat, from one person, or anywhere) and
        return it, or say that none came within the timeout. The answer's cursor, passed back
        as since, continues exactly where this wait stopped."""
        return await tools.wait(chat_id=chat_id, chat=chat, sender=sender, since=since,
                                timeout_s=timeout_s, include_mine=include_mine)

    async def diagnose_tool() -> CallToolResult:
        """Check what imsg needs here (Full Disk Access, contacts, Automation, the bridge) and
        say how to fix what is missing."""
        # No database connection needed: it must answer when the database cannot be opened.
        return to_result(await anyio.to_thread.run_sync(lambda: diagnose(
            tools.database.path, tools.config.policy, tools.bridge_ready)))

    for fn in (find_chat, list_chats, get_unread, read_messages, get_context, search_messages,
               list_attachments, get_attachment):
        server.add_tool(fn, annotations=READ)
    server.add_tool(wait_for_message, annotations=READ)
    server.add_tool(diagnose_tool, name="diagnose", annotations=READ)


def _acting_tools(server: MCPServer, tools: Tools) -> None:
    async def send_message(
        to: Annotated[str | None, Field(
            description="Recipient: a contact name, phone number, email, or chat_id:N / "
                        "chat_guid:G / chat_identifier:S / imessage:H / sms:H.")] = None,
        chat_id: ChatId = None,
        text: Annotated[str | None, Field(description="The message text.")] = None,
        file: Annotated[str | None, Field(description="Path of a file to send (after the "
                                                      "text).")] = None,
    ) -> CallToolResult:
        """Send a text and/or a file through Messages to a person or a chat (give to or
        chat_id). Returns once Messages has stored it, with its message id: pass that as
        wait_for_message's since to wait for the answer."""
        return await tools.act(lambda db: _sent(db, tools.actions.send(
            db, to=to, chat_id=chat_id, text=text, file=file)))

    async def react(
        message_id: MessageId,
        reaction: Annotated[Literal["love", "like", "dislike", "laugh", "emphasis", "question"],
                            Field(description="The tapback.")],
    ) -> CallToolResult:
        """Put a tapback on a message. Without the IMCore bridge only a chat's latest message
        can get one."""
        return await tools.act(lambda db: _reacted(tools.actions.react(
            db, message_id=message_id, reaction=reaction, bridge_ready=tools.bridge_ready)))

    server.add_tool(send_message, annotations=ACT)
    server.add_tool(react, annotations=ACT)


def _bridge_tools(server: MCPServer, tools: Tools) -> None:
    async def typing(
        chat_id: ChatId = None,
        chat: ChatQuery = None,
        on: Annotated[bool, Field(description="Show (true) or stop (false) the typing "
                                              "indicator.")] = True,
    ) -> CallToolResult:
        """Show or stop the typing indicator in a chat (IMCore bridge)."""
        def work(db: ChatDB) -> Answer:
            tools.config.policy.require_sending()
            target, _ = reading.target_chat(db, chat_id, chat, {})
            tools.actions.bridge_call(db, "typing", db.chat_ref(target.id), {"typing": on})
            state = "shown" if on else "stopped"
            return Answer(f"Typing indicator {state} in chat {target.id}.",
                          {"ok": True, "chat_id": target.id, "typing": on})
        return await tools.act(work)

    async def mark_read(chat_id: ChatId = None, chat: ChatQuery = None) -> CallToolResult:
        """Mark a chat as read (sends read receipts where they are on; IMCore bridge)."""
        def work(db: ChatDB) -> Answer:
            tools.config.policy.require_sending()
            target, _ = reading.target_chat(db, chat_id, chat, {})
            tools.actions.bridge_call(db, "read", db.chat_ref(target.id), {})
            return Answer(f"Marked chat {target.id} as read.", {"ok": True, "chat_id": target.id})
        return await tools.act(work)

    server.add_tool(typing, annotations=ACT)
    server.add_tool(mark_read, annotations=ACT)


def _sent(db: ChatDB, result: dict[str, object]) -> Answer:
    message_id, chat_id = result.get("id"), result.get("chat_id")
    where = f" in chat {chat_id}" if chat_id else ""
    text = (f"Sent{where} as #{message_id} ({result.get('service', 'iMessage')}). To wait for "
            f"the answer: wait_for_message(chat_id={chat_id}, since={message_id}).")
    return Answer(text, dict(result))


def _reacted(result: dict[str, object]) -> Answer:
    return Answer(f"Reacted {result.get('reaction_type')} in chat {result.get('chat_id')}.",
                  dict(result))


def serve(config: Config) -> None:
    """Run the server on stdin/stdout until stdin closes (module docstring for the streams)."""
    _quiet_stdout()
    _log_to_stderr()
    server, tools = build(config)
    logging.getLogger("imsg.mcp").info("serving %s (%s)", tools.database.path,
                                       config.policy.describe())
    _warm_contacts()
    try:
        server.run("stdio")
    finally:
        tools.close()


def _quiet_stdout() -> None:
    """``sys.stdout`` unbuffered on descriptor 1: while the SDK serves, descriptor 1 is stderr,
    and nothing printed waits in a buffer to be flushed onto the wire at exit."""
    sys.stdout.flush()
    raw = open(sys.stdout.fileno(), "wb", buffering=0, closefd=False)  # noqa: SIM115
    sys.stdout = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)


def _log_to_stderr() -> None:
    """Plain one-line logs on stderr: ``imsg mcp: …`` for ours (INFO and up: every send), the
    SDK's from WARNING up (set before the SDK configures logging, which then keeps it)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("imsg mcp: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("imsg.mcp").setLevel(logging.INFO)


def _warm_contacts() -> None:
    """Start loading the AddressBook now, so the first answer has names without waiting."""
    from imsg.chatdb.contacts import contact_book

    contact_book().available(wait=False)


def default_db_path(db: str | None) -> str:
    from imsg.chatdb.connection import default_db_path as messages_db

    return os.path.abspath(os.path.expanduser(db or messages_db()))
