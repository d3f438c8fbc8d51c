"""ChatDB: the read API over Messages' chat.db. Returns models, raises ``imsg.errors`` only.

Every query that returns messages fetches its extras (chat context, participants, attachments,
tapbacks, reply parents) in batches: the number of queries does not grow with the number of
messages. The connection is shared by threads behind one lock; each call is a short read
transaction of its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from imsg.chatdb import decode
from imsg.chatdb.connection import (
    Schema,
    connect_readonly,
    default_db_path,
    probe_schema,
    translate_errors,
)
from imsg.chatdb.dates import (
    APPLE_EPOCH_UNIX,
    apple_to_unix_ns,
    iso_from_apple,
    iso_from_unix_ns,
    parse_iso,
    unix_ns_to_apple,
)
from imsg.chatdb.models import Attachment, Chat, Group, Message, Reaction
from imsg.chatdb.queries import FIELD, SEND_STATUS_COLUMNS, Queries, send_status_sql
from imsg.errors import ChatNotFound, InvalidInput

T = TypeVar("T")
_BATCH = 500
_F = FIELD
_APPLE_EPOCH_ISO = iso_from_unix_ns(APPLE_EPOCH_UNIX * 1_000_000_000)


@dataclass(frozen=True, slots=True)
class ChatRef:
    """The chat context merged into every message."""

    id: int
    identifier: str
    guid: str
    name: str  # display_name, or the identifier when it is empty
    service: str
    is_group: bool
    participants: list[str]
    account_id: str | None
    account_login: str | None
    last_addressed_handle: str | None
    last_date: int | None = None


UNJOINED = ChatRef(0, "", "", "", "", False, [], None, None, None)


@dataclass(frozen=True, slots=True)
class SearchText:
    """One row as ``search`` sees it (what the search index stores)."""

    rowid: int
    guid: str
    date: int  # message.date as stored: search orders by it
    edited: int  # date_edited, 0 when never edited
    retracted: int  # date_retracted, 0 when never unsent
    texts: tuple[str, ...]  # every text search can match the row by; () if it never returns it
    audio: bool  # a voice message: its transcript may be written after the row


@dataclass(slots=True)
class Filters:
    """Message filters shared by history and watch (dates as Unix ns, inclusive start)."""

    participants: tuple[str, ...] = ()
    start_ns: int | None = None
    end_ns: int | None = None
    _wanted: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        # accepts() runs for every watched row: fold the handles once, not per row.
        self._wanted = frozenset(p.casefold() for p in self.participants)

    @classmethod
    def parse(
        cls,
        participants: Iterable[str] | None = None,
        start: str | None = None,
        end: str | None = None,
    ) -> Filters:
        """Validate user input; raises InvalidDate/InvalidInput."""
        handles = tuple(p.strip() for p in participants or () if p and p.strip())
        filters = cls(handles, parse_iso(start) if start else None, parse_iso(end) if end else None)
        if (
            filters.start_ns is not None
            and filters.end_ns is not None
            and filters.start_ns >= filters.end_ns
        ):
            raise InvalidInput("--start must be before --end")
        return filters

    def accepts(self, message: Message, date_ns: int | None) -> bool:
        if self._wanted and message.sender.casefold() not in self._wanted:
            return False
        if date_ns is not None:
            if self.start_ns is not None and date_ns < self.start_ns:
                return False
            if self.end_ns is not None and date_ns >= self.end_ns:
                return False
        return True


@dataclass(slots=True)
class _Extras:
    attachments: dict[int, list[Attachment]] = field(default_factory=dict)
    transcripts: dict[int, str] = field(default_factory=dict)
    reactions: dict[str, list[Reaction]] = field(default_factory=dict)
    parents: dict[str, tuple[str, str]] = field(default_factory=dict)


def _chunks(items: Sequence[T], size: int = _BATCH) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class ChatDB:
    """Read-only access to one chat.db. Raises only ``imsg.errors`` exceptions."""

    def __init__(self, path: str | None = None) -> None:
        self.path = os.path.abspath(os.path.expanduser(path or default_db_path()))
        self._conn = connect_readonly(self.path)
        self._lock = threading.RLock()
        try:
            self.schema: Schema = probe_schema(self._conn, self.path)
        except BaseException:
            self._conn.close()
            raise
        self.q = Queries.for_schema(self.schema)
        self._unit_ns = self._detect_unit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ChatDB:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- low level ---------------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, translate_errors(self.path):
            return self._conn.execute(sql, params).fetchall()

    def _detect_unit(self) -> bool:
        """True when dates are nanoseconds (all modern DBs), for SQL date bounds."""
        rows = self._rows("SELECT date FROM message WHERE date != 0 ORDER BY ROWID DESC LIMIT 1")
        return not rows or abs(rows[0][0] or 0) > 100_000_000_000

    def _bound(self, unix_ns: int) -> int:
        apple = unix_ns_to_apple(unix_ns)
        return apple if self._unit_ns else apple // 1_000_000_000

    def max_rowid(self) -> int:
        return int(self._rows(Queries.MAX_ROWID)[0][0])

    def oldest_rowid_since(self, unix_ns: int) -> int | None:
        """The lowest ROWID dated at or after ``unix_ns``; None if there is none."""
        value = self._rows(Queries.OLDEST_ROWID_SINCE, (self._bound(unix_ns),))[0][0]
        return None if value is None else int(value)

    def edit_marks(self, above: int, upto: int) -> list[tuple[int, int, int]]:
        """(ROWID, date_edited, date_retracted) of rows in (above, upto] with either set."""
        return [(int(r), int(e or 0), int(d or 0))
                for r, e, d in self._rows(self.q.edit_marks, (above, upto))]

    def handle_services(self, handle: str) -> set[str]:
        """Services (casefolded) ``handle`` was seen on, as a handle or a direct chat."""
        rows = self._rows(Queries.HANDLE_SERVICES, (handle, handle))
        return {str(row[0]).casefold() for row in rows if row[0]}

    def send_status_row(self, guid: str) -> dict[str, Any] | None:
        """The newest message row whose guid is ``guid`` as given, upper- or lower-cased:
        ``SEND_STATUS_COLUMNS`` → value (None for a column this database lacks); None when
        no row has it."""
        rows = self._rows(send_status_sql(self.schema), (guid, guid.upper(), guid.lower()))
        return dict(zip(SEND_STATUS_COLUMNS, rows[0], strict=True)) if rows else None

    # --- chats -------------------------------------------------------------------------------

    def _chat_ref(self, row: Sequence[Any], participants: list[str]) -> ChatRef:
        rowid, identifier, guid, display, service, style, acct, login, last_handle, last = row
        identifier = identifier or ""
        guid = guid or ""
        name = display or identifier
        return ChatRef(
            id=rowid,
            identifier=identifier,
            guid=guid,
            name=name,
            service=service or "",
            is_group=style == 43 or ";+;" in guid or ";+;" in identifier,
            participants=participants,
            account_id=acct or None,
            account_login=login or None,
            last_addressed_handle=last_handle or None,
            last_date=last,
        )

    def _participants(self, chat_ids: Sequence[int]) -> dict[int, list[str]]:
        found: dict[int, set[str]] = {}
        for chunk in _chunks(sorted(set(chat_ids))):
            for chat_id, handle in self._rows(Queries.participants(len(chunk)), chunk):
                if handle:
                    found.setdefault(chat_id, set()).add(handle)
        return {chat_id: sorted(handles) for chat_id, handles in found.items()}

    def _refs(self, rows: list[tuple[Any, ...]]) -> list[ChatRef]:
        people = self._participants([row[0] for row in rows])
        return [self._chat_ref(row, people.get(row[0], [])) for row in rows]

    def chat_refs(self, chat_ids: Iterable[int]) -> dict[int, ChatRef]:
        ids = sorted({c for c in chat_ids if c})
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(ids):
            rows.extend(self._rows(self.q.chats_by_ids(len(chunk)), chunk))
        return {ref.id: ref for ref in self._refs(rows)}

    def chat_id_by(self, *, guid: str | None = None, identifier: str | None = None) -> int:
        """The ROWID of the chat with this guid, or the newest chat with this identifier;
        raises ChatNotFound."""
        if guid is not None:
            rows = self._rows(Queries.CHAT_BY_GUID, (guid,))
        else:
            rows = self._rows(Queries.CHAT_BY_IDENTIFIER, (identifier,))
        if not rows:
            raise ChatNotFound(guid if guid is not None else str(identifier))
        return int(rows[0][0])

    def chat_ref(self, chat_id: int) -> ChatRef:
        """The chat with ROWID ``chat_id``; raises ChatNotFound."""
        rows = self._rows(self.q.chat_by_id(), (chat_id,))
        if not rows:
            raise ChatNotFound(chat_id)
        return self._refs(rows)[0]

    def chats(self, limit: int = 20) -> list[Chat]:
        """Chats by newest activity (any row, tapbacks included); chats without rows excluded."""
        _check_limit(limit)
        refs = self._refs(self._rows(self.q.recent_chats(), (limit,)))
        return [
            Chat(
                id=r.id,
                name=r.name,
                identifier=r.identifier,
                service=r.service,
                last_message_at=iso_from_apple(r.last_date) or "",
                guid=r.guid or None,
                display_name=r.name,  # the Swift tool's display_name is its name expression
                is_group=r.is_group,
                participants=r.participants,
                account_id=r.account_id,
                account_login=r.account_login,
                last_addressed_handle=r.last_addressed_handle,
            )
            for r in refs
        ]

    def group(self, chat_id: int) -> Group:
        r = self.chat_ref(chat_id)
        return Group(
            id=r.id,
            identifier=r.identifier,
            guid=r.guid,
            name=r.name,
            service=r.service,
            is_group=r.is_group,
            participants=r.participants,
            account_id=r.account_id,
            account_login=r.account_login,
            last_addressed_handle=r.last_addressed_handle,
        )

    # --- messages ----------------------------------------------------------------------------

    def history(
        self,
        chat_id: int,
        *,
        limit: int = 50,
        filters: Filters | None = None,
        edit_history: bool = False,
    ) -> list[Message]:
        """Newest first; tapback rows hidden; filters applied in SQL before the limit."""
        _check_limit(limit)
        ref = self.chat_ref(chat_id)
        filters = filters or Filters()
        params: list[Any] = [chat_id]
        if filters.start_ns is not None:
            params.append(self._bound(filters.start_ns))
        if filters.end_ns is not None:
            params.append(self._bound(filters.end_ns))
        params.extend(filters.participants)
        params.append(limit)
        sql = self.q.history(
            start=filters.start_ns is not None,
            end=filters.end_ns is not None,
            participants=len(filters.participants),
        )
        rows = self._rows(sql, params)
        return self.build(rows, {chat_id: ref}, edit_history=edit_history)

    def search(
        self,
        query: str,
        *,
        match: str = "contains",
        limit: int = 50,
        chat_id: int | None = None,
        edit_history: bool = False,
        rowids: Collection[int] | None = None,
    ) -> list[Message]:
        """Case-insensitive search over the decoded text of every non-tapback row, newest first.

        ``match`` is ``contains`` or ``exact`` (whole text). An empty query finds nothing.
        ``rowids`` limits the search to those rows (the search index's candidates): the answer
        is the unrestricted one whenever ``rowids`` holds every matching row.
        """
        if match not in ("contains", "exact"):
            raise InvalidInput(f"Invalid match: {match!r} (use contains or exact)")
        _check_limit(limit)
        needle = query.strip().casefold()
        if not needle:
            return []
        if chat_id is not None:
            self.chat_ref(chat_id)
        matches = _matcher(needle, match == "exact")
        with self._lock, translate_errors(self.path):
            self._conn.create_function("imsg_matches", 2, matches, deterministic=True)
            params: list[Any] = [] if chat_id is None else [chat_id]
            if rowids is not None:
                params.append(f"[{','.join(str(int(r)) for r in rowids)}]")
            rows = self._conn.execute(
                self.q.search(chat=chat_id is not None, among=rowids is not None),
                [*params, limit],
            ).fetchall()
        return self.build(rows, edit_history=edit_history)

    def messages_after(
        self, rowid: int, *, limit: int, chat_id: int | None = None, reactions: bool = False
    ) -> list[tuple[Message, int | None]]:
        """Up to ``limit`` rows with ROWID > ``rowid`` in ROWID order, with each row's Unix-ns date.

        Rows not yet joined to a chat come back with ``chat_id`` 0 (callers decide what to do).
        """
        params: list[Any] = [rowid]
        if chat_id is not None:
            params.append(chat_id)
        params.append(limit)
        rows = self._rows(
            self.q.after_rowid(chat_filter=chat_id is not None, reactions=reactions), params
        )
        return self._with_dates(rows)

    def messages_by_rowid(self, rowids: Sequence[int]) -> list[tuple[Message, int | None]]:
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(list(rowids)):
            rows.extend(self._rows(self.q.by_rowids(len(chunk)), chunk))
        return self._with_dates(rows)

    def _with_dates(self, rows: list[tuple[Any, ...]]) -> list[tuple[Message, int | None]]:
        messages = self.build(rows)
        return [
            (m, apple_to_unix_ns(row[_F["date"]])) for m, row in zip(messages, rows, strict=True)
        ]

    def search_texts(
        self, after_rowid: int = 0, *, rowids: Sequence[int] | None = None, page: int = 5000
    ) -> Iterator[SearchText]:
        """What ``search`` matches, row by row in ROWID order: every row past ``after_rowid``,
        or only ``rowids``. The search index relies on this: each row's ``texts`` must hold every
        text ``search`` can match it by (more is harmless), so change both together."""
        if rowids is not None:
            for chunk in _chunks(sorted(set(rowids))):
                yield from self._search_texts(self._rows(self.q.search_texts(len(chunk)), chunk))
            return
        cursor = after_rowid
        while True:
            rows = self._rows(self.q.search_texts(), (cursor, page))
            yield from self._search_texts(rows)
            if len(rows) < page:
                return
            cursor = rows[-1][0]

    def _search_texts(self, rows: list[tuple[Any, ...]]) -> Iterator[SearchText]:
        transcripts: dict[int, str] = {}
        voice = [row[0] for row in rows if row[8] and not row[7]]
        for chunk in _chunks(voice):
            for mid, *_, info in self._rows(Queries.attachments(len(chunk)), chunk):
                transcript = decode.audio_transcription(info) if info else None
                if transcript and mid not in transcripts:
                    transcripts[mid] = transcript
        text_of = decode.row_text  # bound once: this loop runs for every message
        for rowid, guid, date, edited, retracted, text, body, tapback, audio in rows:
            texts: tuple[str, ...] = ()
            if not tapback:
                texts = (text_of(text, body),)
                if rowid in transcripts:
                    texts += (transcripts[rowid],)
            yield SearchText(rowid, guid or "", date or 0, edited or 0, retracted or 0, texts,
                             bool(audio))

    def iter_texts(self, after_rowid: int = 0, page: int = 5000) -> Iterator[tuple[int, str]]:
        """(ROWID, text) of every message in ROWID order, in bounded pages (constant memory)."""
        cursor = after_rowid
        text_of = decode.row_text  # bound once: this loop runs for every message
        while True:
            rows = self._rows(self.q.all_texts, (cursor, page))
            for rowid, text, body in rows:
                yield rowid, text_of(text, body)
            if len(rows) < page:
                return
            cursor = rows[-1][0]

    # --- assembling messages -----------------------------------------------------------------

    def build(
        self,
        rows: list[tuple[Any, ...]],
        refs: dict[int, ChatRef] | None = None,
        *,
        edit_history: bool = False,
    ) -> list[Message]:
        """Turn message rows (MESSAGE_FIELDS + chat_id) into Messages with batched extras."""
        if not rows:
            return []
        chat_ids = {row[-1] for row in rows if row[-1]}
        refs = dict(refs or {})
        missing = chat_ids - refs.keys()
        if missing:
            refs.update(self.chat_refs(missing))
        extras = self._extras(rows)
        return [
            self._message(row, refs.get(row[-1] or 0, UNJOINED), extras, edit_history)
            for row in rows
        ]

    def _extras(self, rows: list[tuple[Any, ...]]) -> _Extras:
        extras = _Extras()
        with_files = [r[_F["rowid"]] for r in rows if r[_F["has_attachments"]]]
        for chunk in _chunks(with_files):
            for mid, fname, tname, uti, mime, size, sticker, info in self._rows(
                Queries.attachments(len(chunk)), chunk
            ):
                path = os.path.expanduser(fname) if fname else ""
                transcript = decode.audio_transcription(info) if info else None
                extras.attachments.setdefault(mid, []).append(
                    Attachment(
                        filename=fname or "",
                        transfer_name=tname or "",
                        uti=uti or "",
                        mime_type=mime or "",
                        total_bytes=size or 0,
                        is_sticker=bool(sticker),
                        original_path=path,
                        missing=not path or not os.path.isfile(path),
                        transcription=transcript,
                    )
                )
                if transcript and mid not in extras.transcripts:
                    extras.transcripts[mid] = transcript
        self._load_reactions(rows, extras)
        parents = {r[_F["thread_originator_guid"]] for r in rows if r[_F["thread_originator_guid"]]}
        parents |= {
            decode.target_guid(r[_F["assoc_guid"]])
            for r in rows
            if r[_F["assoc_guid"]] and not decode.is_reaction_type(r[_F["assoc_type"]])
        }
        for chunk in _chunks(sorted(parents)):
            for guid, text, body, sender, caller in self._rows(Queries.parents(len(chunk)), chunk):
                extras.parents[guid] = (decode.row_text(text, body), sender or caller or "")
        return extras

    def _load_reactions(self, rows: list[tuple[Any, ...]], extras: _Extras) -> None:
        """Aggregate tapbacks per target in date order: one per sender; remove deletes."""
        if not self.q.has_tapbacks:
            return
        variants: list[str] = []
        for r in rows:
            guid = r[_F["guid"]]
            if not guid or decode.is_reaction_type(r[_F["assoc_type"]]):
                continue
            parts = max(r[_F["part_count"]] or 0, 4)
            variants.extend([guid, f"bp:{guid}", *(f"p:{i}/{guid}" for i in range(parts))])
        state: dict[str, dict[tuple[bool, str], Reaction]] = {}
        for chunk in _chunks(variants, 900):
            for (
                rid,
                assoc,
                kind,
                emoji_col,
                text,
                body,
                handle,
                caller,
                from_me,
                date,
            ) in self._rows(self.q.reactions(len(chunk)), chunk):
                tap = decode.tapback(kind, assoc, emoji_col, decode.row_text(text, body))
                if tap is None:
                    continue
                sender = handle or caller or ""
                key = (bool(from_me), "" if from_me else sender)
                per_target = state.setdefault(tap.target_guid, {})
                emoji = tap.emoji or ""
                if tap.is_add:
                    per_target[key] = Reaction(
                        id=rid,
                        type=tap.kind,
                        emoji=emoji,
                        sender=sender,
                        is_from_me=bool(from_me),
                        created_at=iso_from_apple(date) or "",
                    )
                else:
                    current = per_target.get(key)
                    if (
                        current
                        and current.type == tap.kind
                        and (tap.kind != "custom" or not emoji or current.emoji == emoji)
                    ):
                        del per_target[key]
        extras.reactions = {guid: list(per.values()) for guid, per in state.items() if per}

    def _message(
        self, row: tuple[Any, ...], ref: ChatRef, extras: _Extras, edit_history: bool
    ) -> Message:
        rowid = row[_F["rowid"]]
        guid = row[_F["guid"]] or ""
        text = decode.row_text(row[_F["text"]], row[_F["body"]])
        sender = row[_F["sender"]] or row[_F["destination_caller_id"]] or ""
        is_from_me = bool(row[_F["is_from_me"]])
        if row[_F["is_audio"]] and text.strip("\ufffc ") == "":
            text = extras.transcripts.get(rowid, text)
        fields: dict[str, Any] = {}
        tap = decode.tapback(
            row[_F["assoc_type"]], row[_F["assoc_guid"]], row[_F["assoc_emoji"]], text
        )
        if tap is not None:
            fields.update(
                is_reaction=True, is_reaction_add=tap.is_add, reacted_to_guid=tap.target_guid
            )
            if tap.emoji:
                fields.update(reaction_type=tap.kind, reaction_emoji=tap.emoji)
        elif row[_F["assoc_guid"]]:
            fields["reply_to_guid"] = decode.target_guid(row[_F["assoc_guid"]])
        originator = row[_F["thread_originator_guid"]] if tap is None else None
        parent = extras.parents.get(originator or "") or extras.parents.get(
            fields.get("reply_to_guid") or ""
        )
        if parent:
            fields.update(reply_to_text=parent[0], reply_to_sender=parent[1])
        edited, retracted = row[_F["date_edited"]], row[_F["date_retracted"]]
        if edited or retracted or row[_F["summary"]]:
            info = decode.summary_info(row[_F["summary"]])
            unsent = bool(retracted) or (bool(info.retracted_parts) and not text.strip("\ufffc"))
            if unsent:
                text = ""
                fields["retracted_at"] = iso_from_apple(retracted or edited)
            elif edited:
                fields["edited_at"] = iso_from_apple(edited)
            if edit_history and info.history:
                fields["edit_history"] = info.history
        event = decode.group_event(
            row[_F["item_type"]] or 0,
            row[_F["group_action"]] or 0,
            row[_F["other_handle"]],
            row[_F["group_title"]],
        )
        if event is not None:
            fields["group_event"] = event
            text = text or decode.describe_group_event(event, "You" if is_from_me else sender)
        if row[_F["balloon"]] == decode.URL_BALLOON:
            fields["url_preview"] = decode.url_preview(row[_F["payload"]], text)
        return Message(
            id=rowid,
            chat_id=ref.id,
            guid=guid,
            thread_originator_guid=originator or None,
            sender=sender,
            is_from_me=is_from_me,
            text=text,
            created_at=iso_from_apple(row[_F["date"]]) or _APPLE_EPOCH_ISO,
            attachments=extras.attachments.get(rowid, []),
            reactions=extras.reactions.get(guid, []),
            destination_caller_id=row[_F["destination_caller_id"]] or None,
            chat_identifier=ref.identifier,
            chat_guid=ref.guid,
            chat_name=ref.name,
            participants=ref.participants,
            is_group=ref.is_group,
            service=row[_F["service"]] or None,
            **fields,
        )


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1 (got {limit})")


def _matcher(needle: str, exact: bool) -> Callable[[str | None, bytes | None], bool]:
    def matches(text: str | None, body: bytes | None) -> bool:
        value = decode.row_text(text, body).casefold()
        return value == needle if exact else needle in value

    return matches
