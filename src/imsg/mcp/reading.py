"""The reading tools as plain functions over a ``ChatDB``: each returns an ``Answer`` (compact
text + structured data) or raises ``imsg.errors``. No MCP in sight.

Every answer names people by their contact names (one batched AddressBook look-up per answer),
carries message ids for follow-up calls, and ends with the call to make next when there is
more to read, so one intent takes one call where it can:

- ``read_messages`` takes the chat by id or by what ``find_chat`` takes (``chat="Alice"``),
  so "what did Alice say" is one call, not find-then-read;
- ``search_messages`` filters by sender (a name, a handle or ``me``) and dates itself;
- ``get_unread`` returns the unread messages themselves, grouped by chat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from imsg.chatdb.dates import iso_from_unix_ns
from imsg.chatdb.models import Chat, Message
from imsg.chatdb.previews import belongs_to, is_url_preview, with_preview
from imsg.chatdb.reader import ChatDB, Filters
from imsg.errors import InvalidInput
from imsg.mcp import formatting as fmt
from imsg.mcp.answers import Answer
from imsg.mcp.finding import (
    Found,
    all_chats,
    as_handle,
    chat_by_id,
    find_chats,
    fold,
    handles_named,
    resolve_chat,
    same_handle,
)
from imsg.mcp.when import parse_when

SEARCH_LIMIT_MAX = 100
SEARCH_SCAN_MAX = 5_000  # matching rows read at most while filtering by sender or date
ME = frozenset({"me", "myself", "i", "self"})


def today() -> date:
    return date.today()


def names_for(db: ChatDB, chats: Sequence[Chat], messages: Sequence[Message] = (),
           known: dict[str, str] | None = None) -> dict[str, str]:
    names = dict(known or {})
    wanted = fmt.handles_of(chats, messages) - names.keys()
    names.update(db.contact_names(wanted))
    return names


def _last_messages(db: ChatDB, chats: Sequence[Chat]) -> dict[int, Message]:
    last = {}
    for chat in chats:
        newest = db.history(chat.id, limit=1)
        if newest:
            last[chat.id] = newest[0]
    return last


def _chat_list(db: ChatDB, chats: Sequence[Chat], head: str,
               scores: dict[int, float] | None = None) -> Answer:
    last = _last_messages(db, chats)
    names = names_for(db, chats, list(last.values()))
    now = today()
    lines = [head]
    data = []
    for chat in chats:
        lines.extend(fmt.chat_summary(chat, names, now, last.get(chat.id)))
        item = fmt.chat_data(chat, names)
        if chat.id in last:
            item["last_message"] = fmt.message_data(last[chat.id])
        if scores is not None:
            item["score"] = round(scores[chat.id], 1)
        data.append(item)
    return Answer("\n".join(lines), {"chats": data})


def list_chats(db: ChatDB, *, limit: int = 20, unread_only: bool = False) -> Answer:
    """Chats by recent activity, each with its unread count and last message."""
    chats = db.chats(limit, unread_only=unread_only)
    kind = "chats with unread messages" if unread_only else "chats"
    head = (f"{len(chats)} {kind}, most recent first (times {fmt.zone_name()}):" if chats
            else f"No {kind}.")
    return _chat_list(db, chats, head)


def find_chat(db: ChatDB, *, query: str, limit: int = 5) -> Answer:
    """The chats that best match a person, handle, group name or several people."""
    names: dict[str, str] = {}
    found = find_chats(db, query, limit, names)
    if not found:
        return Answer(f"No chat matches {query!r}. Try list_chats, or a phone number or email.",
                      {"chats": []})
    many = "chats match" if len(found) != 1 else "chat matches"
    head = f"{len(found)} {many} {query!r}, best first (times {fmt.zone_name()}):"
    return _chat_list(db, [f.chat for f in found], head, {f.chat.id: f.score for f in found})


def target_chat(db: ChatDB, chat_id: int | None, chat: str | None,
                names: dict[str, str]) -> tuple[Chat, list[Found]]:
    """The chat a tool was pointed at, by id or by query (and the runners-up of a query)."""
    if chat_id is not None and chat:
        raise InvalidInput("Give chat_id or chat, not both")
    if chat_id is not None:
        return chat_by_id(db, chat_id), []
    if chat and chat.strip():
        return resolve_chat(db, chat, names)
    raise InvalidInput("Give chat_id, or chat: a contact name, a phone number, an email or a "
                       "group name")


def senders_named(db: ChatDB, sender: str, scope: Chat | None,
                  names: dict[str, str]) -> tuple[bool, tuple[str, ...]]:
    """Who ``sender`` names: (True, ()) for the user (``me``), else (False, the handles of
    ``scope``'s people, or of everyone's in any chat, that it names: ``handles_named``).
    ``names`` is filled with their contact names. Raises InvalidInput when no one matches."""
    if fold(sender) in ME:
        return True, ()
    pool = ([*scope.participants, scope.identifier] if scope else
            [h for c in all_chats(db) for h in c.participants])
    names.update(db.contact_names(h for h in pool if h not in names))
    handles = tuple(handles_named(sender, pool, names))
    if not handles:
        raise InvalidInput(f"No one matches {sender!r}" + (f" in chat {scope.id}" if scope else ""))
    return False, handles


def also(others: Sequence[Found], names: dict[str, str]) -> list[str]:
    if not others:
        return []
    listed = "; ".join(fmt.chat_header(f.chat, names) for f in others)
    return [f"(also matching: {listed})"]


def window(after: str | None, before: str | None) -> tuple[int | None, int | None]:
    start = parse_when(after) if after else None
    end = parse_when(before) if before else None
    if start is not None and end is not None and start >= end:
        raise InvalidInput("after must be earlier than before")
    return start, end


def read_messages(db: ChatDB, *, chat_id: int | None = None, chat: str | None = None,
                  limit: int = 50, before: str | None = None, after: str | None = None,
                  participants: Sequence[str] = ()) -> Answer:
    """A chat's messages, newest first, with reactions, replies, attachments, transcripts and
    link previews folded in. ``participants`` (names or handles of the chat's members) keeps
    the messages involving them."""
    names: dict[str, str] = {}
    target, others = target_chat(db, chat_id, chat, names)
    members = [*target.participants, target.identifier]
    names.update(db.contact_names(h for h in members if h not in names))
    handles: list[str] = []
    for wanted in participants:
        matched = handles_named(wanted, members, names)
        if not matched:
            raise InvalidInput(f"No participant of chat {target.id} matches {wanted!r}")
        handles.extend(matched)
    start, end = window(after, before)
    filters = Filters(tuple(dict.fromkeys(handles)), start, end)
    messages = db.history(target.id, limit=limit + 1, filters=filters)
    more = len(messages) > limit
    messages = messages[:limit]
    names = names_for(db, [target], messages, names)
    count = f"{len(messages)} message{'s' if len(messages) != 1 else ''}"
    lines = [f"{fmt.chat_header(target, names)}: {count}, newest first "
             f"(times {fmt.zone_name()})", *also(others, names)]
    lines.extend(fmt.messages_block(messages, names, today()))
    if more:
        lines.append(f"(older messages: read_messages(chat_id={target.id}, "
                     f"before=\"{messages[-1].created_at}\"))")
    data = {"chat": fmt.chat_data(target, names),
            "messages": [fmt.message_data(m) for m in messages], "has_more": more}
    return Answer("\n".join(lines), data)


def get_unread(db: ChatDB, *, chat_limit: int = 10, per_chat: int = 20) -> Answer:
    """Unread incoming messages, grouped by chat (most recent chat first), newest first in each
    chat, at most ``per_chat`` each."""
    chats = db.chats(chat_limit, unread_only=True)
    groups: list[tuple[Chat, list[Message]]] = []
    for chat in chats:
        recent = db.history(chat.id, limit=min((chat.unread_count or 0) + 20, 500))
        unread = [m for m in recent if not m.is_from_me and m.is_read is False]
        groups.append((chat, unread[:per_chat]))
    names = names_for(db, chats, [m for _, ms in groups for m in ms])
    total = sum(chat.unread_count or 0 for chat in chats)
    if not chats:
        return Answer("No unread messages.", {"chats": [], "total_unread": 0})
    lines = [f"{total} unread in {len(chats)} chat{'s' if len(chats) != 1 else ''}, most recent "
             f"chat first, newest first (times {fmt.zone_name()}):"]
    now = today()
    data = []
    for chat, unread in groups:
        shown = f", showing {len(unread)}" if len(unread) < (chat.unread_count or 0) else ""
        lines.append(f"== {fmt.chat_header(chat, names)}: {chat.unread_count} unread{shown} ==")
        lines.extend(fmt.messages_block(unread, names, now))
        data.append({"chat": fmt.chat_data(chat, names),
                     "messages": [fmt.message_data(m) for m in unread]})
    return Answer("\n".join(lines), {"chats": data, "total_unread": total})


def get_context(db: ChatDB, *, message_id: int, before: int = 5, after: int = 5) -> Answer:
    """The messages around one message of its chat, oldest first, the message itself marked."""
    found = db.messages_by_rowid([message_id])
    if not found or found[0][0].chat_id == 0:
        raise InvalidInput(f"No message #{message_id} in any chat")
    target, date_ns = found[0]
    chat = chat_by_id(db, target.chat_id)
    older: list[Message] = []
    if before and date_ns is not None:
        older = db.history(chat.id, limit=before, filters=Filters(end_ns=date_ns))[::-1]
    newer = _following(db, target, date_ns, after)
    shown = [*older, *newer]
    names = names_for(db, [chat], shown)
    lines = [f"{fmt.chat_header(chat, names)}: {len(shown)} messages around #{message_id}, "
             f"oldest first (times {fmt.zone_name()})"]
    lines.extend(fmt.messages_block(shown, names, today(), marked=message_id))
    data = {"chat": fmt.chat_data(chat, names), "message_id": message_id,
            "messages": [fmt.message_data(m) for m in shown]}
    return Answer("\n".join(lines), data)


def _following(db: ChatDB, target: Message, date_ns: int | None, count: int) -> list[Message]:
    """``target`` and up to ``count`` messages after it, oldest first, link previews folded
    into the text row they belong to."""
    rows = db.chat_rows_near(target.chat_id, target.id, after=True, limit=2 * count + 2)
    shown: list[tuple[Message, int | None]] = [(target, date_ns)]
    for message, when_ns in rows:
        text, text_ns = shown[-1]
        if is_url_preview(message) and belongs_to(message, when_ns, text, text_ns):
            shown[-1] = (with_preview(text, message), text_ns)
            continue
        if len(shown) > count:
            break
        shown.append((message, when_ns))
    return [message for message, _ in shown]


def sender_matcher(value: str) -> Callable[[Message], bool]:
    """Who wrote a message, as a model says it: ``me``, a handle, or a contact name (the
    sender's name must contain it, or start with its words)."""
    wanted = fold(value)
    if wanted in ME:
        return lambda m: m.is_from_me
    address = as_handle(value)
    if address is not None:
        return lambda m: not m.is_from_me and same_handle(m.sender, address)

    def named(message: Message) -> bool:
        name = fold(message.sender_name or "")
        if message.is_from_me or not name:
            return False
        return wanted in name or all(any(w.startswith(q) for w in name.split())
                                     for q in wanted.split())

    return named


def search_messages(db: ChatDB, *, query: str, chat_id: int | None = None,
                    chat: str | None = None, sender: str | None = None,
                    after: str | None = None, before: str | None = None,
                    limit: int = 20) -> Answer:
    """Messages whose text contains ``query`` (case-insensitive, also text only stored in
    ``attributedBody`` and voice transcripts), newest first, filtered by chat, sender and
    dates."""
    if not query.strip():
        raise InvalidInput("query must not be empty")
    names: dict[str, str] = {}
    scope: Chat | None = None
    others: list[Found] = []
    if chat_id is not None or (chat and chat.strip()):
        scope, others = target_chat(db, chat_id, chat, names)
    start, end = window(after, before)
    low = iso_from_unix_ns(start) if start is not None else None
    high = iso_from_unix_ns(end) if end is not None else None
    by = sender_matcher(sender) if sender and sender.strip() else None
    filtered = by is not None or low is not None or high is not None
    ask = limit if not filtered else min(limit * 4, SEARCH_SCAN_MAX)
    while True:
        found = db.search(query, limit=ask, chat_id=scope.id if scope else None)
        kept = [m for m in found if (by is None or by(m))
                and (low is None or m.created_at >= low) and (high is None or m.created_at < high)]
        older = low is not None and bool(found) and found[-1].created_at < low
        if len(kept) >= limit or len(found) < ask or older or ask >= SEARCH_SCAN_MAX:
            break
        ask = min(ask * 4, SEARCH_SCAN_MAX)
    kept = kept[:limit]
    chats = {scope.id: scope} if scope else {c: chat_by_id(db, c)
                                             for c in dict.fromkeys(m.chat_id for m in kept)}
    names = names_for(db, list(chats.values()), kept, names)
    where = f" in {fmt.chat_header(scope, names)}" if scope else ""
    if not kept:
        text = f"No messages match {query!r}{where}."
    else:
        text = "\n".join([
            f"{len(kept)} message{'s' if len(kept) != 1 else ''} match {query!r}{where}, "
            f"newest first (times {fmt.zone_name()}):", *also(others, names),
            *fmt.messages_block(kept, names, today(), chats=None if scope else chats)])
    data = {"query": query, "chats": [fmt.chat_data(c, names) for c in chats.values()],
            "messages": [fmt.message_data(m) for m in kept]}
    return Answer(text, data)
