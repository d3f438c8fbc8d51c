"""ChatDB: the read API over Messages' chat.db. Returns models, raises ``imsg.errors`` only.

Every query that returns messages fetches its extras (chat context, participants, attachments,
tapbacks, reply parents, polls, contact names) in batches: the number of queries does not grow
with the number of messages. The connection is shared by threads behind one lock; each call is
a short read transaction of its own (``history``/``search`` keep one statement open while they
read, so all of their rows come from one snapshot).

``history`` and ``search`` count *logical* messages: a link-preview row that belongs to its text
row (``imsg.chatdb.previews``) is folded into it, so ``limit`` messages may take more rows.
They read rows lazily until ``limit`` logical messages are certain.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, NamedTuple

from imsg.chatdb import assemble
from imsg.chatdb.assemble import chunks as _chunks
from imsg.chatdb.chats import (
    UNJOINED,
    ChatRef,
    chat_ref,
    group_payload,
    list_chats,
    unread_counts,
)
from imsg.chatdb.connection import (
    Schema,
    connect_readonly,
    default_db_path,
    fetch_all,
    lenient_text,
    probe_schema,
    translate_errors,
)
from imsg.chatdb.dates import apple_to_unix_ns, unix_ns_to_apple
from imsg.chatdb.filters import Filters
from imsg.chatdb.models import Chat, Group, Message, ScheduledMessage, Stats
from imsg.chatdb.previews import Dated, fold_page, is_url_preview
from imsg.chatdb.queries import (
    FIELD,
    KIND_NAMES,
    SEND_STATUS_COLUMNS,
    Queries,
    send_status_sql,
)
from imsg.errors import ChatNotFound, InvalidInput

_REF_CACHE_MAX = 10_000

__all__ = ["UNJOINED", "ChatDB", "ChatRef", "Filters", "SearchText"]

_F = FIELD
_PAIRS = 450  # (chat, ROWID) pairs per query: 900 bound parameters
_RECENT_MESSAGES = 2_000  # list_attachments across chats looks at these first


class SearchText(NamedTuple):
    """One row as ``search`` sees it (what the search index stores; a tuple: one per row)."""

    rowid: int
    guid: str
    date: int | None  # message.date as stored: search orders by it
    edited: int  # date_edited, 0 when never edited
    retracted: int  # date_retracted, 0 when never unsent
    texts: tuple[str, ...]  # every text search can match the row by; () if it never returns it
    audio: bool  # a voice message: its transcript may be written after the row


def row_date_ns(row: Sequence[Any]) -> int | None:
    """Unix ns of a message row's ``date``; None for 0, NULL or a corrupt value."""
    return apple_to_unix_ns(row[_F["date"]])


class ChatDB:
    """Read-only access to one chat.db. Raises only ``imsg.errors`` exceptions.

    ``contacts_wait``: whether a read may wait for the contact catalog's first load (the CLI
    does; a long-running server passes False, and names appear once the catalog is loaded).
    """

    def __init__(self, path: str | None = None, *, contacts_wait: bool = True) -> None:
        self.path = os.path.abspath(os.path.expanduser(path or default_db_path()))
        self.contacts_wait = contacts_wait
        self._conn = connect_readonly(self.path)
        self._lock = threading.RLock()
        try:
            self.schema: Schema = probe_schema(self._conn, self.path)
        except BaseException:
            self._conn.close()
            raise
        self.q = Queries.for_schema(self.schema)
        self._unit_ns = self._detect_unit()
        # Chat context by chat id, valid while no other connection has committed anything
        # (SQLite's data_version): paging through a quiet database reads each chat once.
        self._ref_cache: dict[int, ChatRef] = {}
        self._ref_version: int | None = None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ChatDB:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- low level ---------------------------------------------------------------------------

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read query (SQL from ``Queries``); errors come out as ``imsg.errors``."""
        with self._lock, translate_errors(self.path):
            return fetch_all(self._conn, sql, params)

    def _detect_unit(self) -> bool:
        """True when dates are nanoseconds (all modern DBs), for SQL date bounds."""
        rows = self.rows(self.q.newest_date)
        value = rows[0][0] if rows else None
        return not isinstance(value, int | float) or abs(value) > 100_000_000_000

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Run several queries on one state of the database (one read transaction), holding
        the connection meanwhile. Keep it short: Messages cannot checkpoint past it."""
        with self._lock, translate_errors(self.path):
            self._conn.execute("BEGIN")
            try:
                yield
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")

    def bound(self, unix_ns: int) -> int:
        """A Unix-ns time as this database stores dates (for SQL comparisons)."""
        apple = unix_ns_to_apple(unix_ns)
        return apple if self._unit_ns else apple // 1_000_000_000

    def max_rowid(self) -> int:
        return int(self.rows(Queries.MAX_ROWID)[0][0])

    def oldest_rowid_since(self, unix_ns: int) -> int | None:
        """The lowest ROWID dated at or after ``unix_ns``; None if there is none."""
        value = self.rows(self.q.oldest_rowid_since, (self.bound(unix_ns),))[0][0]
        return None if value is None else int(value)

    def edit_marks(self, above: int, upto: int) -> list[tuple[int, int, int]]:
        """(ROWID, date_edited, date_retracted) of rows in (above, upto] with either set."""
        return [(int(r), assemble.small_int(e), assemble.small_int(d))
                for r, e, d in self.rows(self.q.edit_marks, (above, upto))]

    def handle_services(self, handle: str) -> set[str]:
        """Services (casefolded) ``handle`` has working history on (``Queries.handle_services``)."""
        rows = self.rows(self.q.handle_services, (handle,))
        return {str(row[0]).casefold() for row in rows if row[0]}

    def send_status_row(self, guid: str) -> dict[str, Any] | None:
        """The newest message row whose guid is ``guid`` as given, upper- or lower-cased:
        ``SEND_STATUS_COLUMNS`` → value (None for a column this database lacks); None when
        no row has it."""
        rows = self.rows(send_status_sql(self.schema), (guid, guid.upper(), guid.lower()))
        return dict(zip(SEND_STATUS_COLUMNS, rows[0], strict=True)) if rows else None

    def contact_names(self, handles: Iterable[str | None]) -> dict[str, str]:
        """{handle: contact name} for the handles the AddressBook knows (one batched look-up;
        empty when there is no readable AddressBook)."""
        wanted = sorted({h for h in handles if h})
        if not wanted:
            return {}
        from imsg.chatdb.contacts import contact_book

        return contact_book().names_for(wanted, wait=self.contacts_wait)

    # --- chats -------------------------------------------------------------------------------

    def _participants(self, chat_ids: Sequence[int]) -> dict[int, list[str]]:
        found: dict[int, set[str]] = {}
        for chunk in _chunks(sorted(set(chat_ids))):
            sql = self.q.participants(len(chunk))
            if sql is None:
                return {}
            for chat_id, handle in self.rows(sql, chunk):
                if handle and isinstance(handle, str):
                    found.setdefault(chat_id, set()).add(handle)
        return {chat_id: sorted(handles) for chat_id, handles in found.items()}

    def refs(self, rows: list[tuple[Any, ...]]) -> list[ChatRef]:
        """ChatRefs for ``Queries.chat_columns`` rows, participants read in one batch."""
        people = self._participants([row[0] for row in rows])
        return [chat_ref(row, people.get(row[0], [])) for row in rows]

    def chat_refs(self, chat_ids: Iterable[int]) -> dict[int, ChatRef]:
        ids = {c for c in chat_ids if isinstance(c, int) and c}  # a corrupt join may hold text
        version = self.rows("PRAGMA data_version")[0][0]
        if version != self._ref_version or len(self._ref_cache) > _REF_CACHE_MAX:
            self._ref_cache, self._ref_version = {}, version
        cache = self._ref_cache
        missing = sorted(ids - cache.keys())
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(missing):
            rows.extend(self.rows(self.q.chats_by_ids(len(chunk)), chunk))
        for ref in self.refs(rows):
            cache[ref.id] = ref
        return {chat_id: cache[chat_id] for chat_id in ids if chat_id in cache}

    def chat_id_by(self, *, guid: str | None = None, identifier: str | None = None) -> int:
        """The ROWID of the chat with this guid, or the newest chat with this identifier;
        raises ChatNotFound."""
        sql = self.q.chat_by_guid if guid is not None else self.q.chat_by_identifier
        rows = self.rows(sql, (guid if guid is not None else identifier,)) if sql else []
        if not rows:
            raise ChatNotFound(guid if guid is not None else str(identifier))
        return int(rows[0][0])

    def chat_ref(self, chat_id: int) -> ChatRef:
        """The chat with ROWID ``chat_id``; raises ChatNotFound."""
        rows = self.rows(self.q.chat_by_id(), (chat_id,))
        if not rows:
            raise ChatNotFound(chat_id)
        return self.refs(rows)[0]

    def chats(self, limit: int = 20, *, unread_only: bool = False) -> list[Chat]:
        """Chats by newest activity (any row, tapbacks included); chats without rows excluded.

        Each carries ``unread_count`` (when the database has ``message.is_read``) and, for
        direct chats, ``contact_name``. ``unread_only`` keeps chats with unread messages and
        raises UnsupportedByDatabase without ``message.is_read``."""
        _check_limit(limit)
        return list_chats(self, limit, unread_only=unread_only)

    def unread_counts(self, chat_ids: list[int] | None = None) -> dict[int, int]:
        """Logical unread inbound messages per chat (see ``imsg.chatdb.chats``); every chat
        with any when ``chat_ids`` is None. Empty without ``message.is_read``."""
        return unread_counts(self, chat_ids) if self.q.has_read_state else {}

    def group(self, chat_id: int) -> Group:
        return group_payload(self.chat_ref(chat_id))

    def stats(self, *, chat_id: int | None = None, time_zone: str | None = None,
              include_media: bool = False) -> Stats:
        """Message counts by chat, sender, service and day (``imsg.chatdb.stats``); raises
        ChatNotFound or InvalidInput (a time zone that is not an IANA name)."""
        from imsg.chatdb.stats import compute_stats

        return compute_stats(self, chat_id=chat_id, time_zone=time_zone,
                             include_media=include_media)

    def scheduled(self, limit: int = 50) -> list[ScheduledMessage]:
        """Send Later messages still to go, soonest first (``imsg.chatdb.scheduled``); raises
        UnsupportedByDatabase without Messages' scheduling columns."""
        from imsg.chatdb.scheduled import scheduled_messages

        _check_limit(limit)
        return scheduled_messages(self, limit)

    # --- messages ----------------------------------------------------------------------------

    def history(
        self,
        chat_id: int,
        *,
        limit: int = 50,
        filters: Filters | None = None,
        edit_history: bool = False,
        attachments: bool = True,
        convert_attachments: bool = False,
    ) -> list[Message]:
        """Newest first; tapback rows hidden; filters applied in SQL before the limit; link
        previews folded into their text rows (``limit`` counts logical messages).

        ``attachments=False`` leaves every ``attachments`` list empty (the RPC default);
        ``convert_attachments`` adds ``converted_path``/``converted_mime_type`` (or
        ``conversion_error``) to attachments that need a playable copy. Raises ChatNotFound,
        InvalidInput (limit below 1) or a DatabaseError."""
        _check_limit(limit)
        ref = self.chat_ref(chat_id)
        filters = filters or Filters()
        params: list[Any] = [chat_id]
        if filters.start_ns is not None:
            params.append(self.bound(filters.start_ns))
        if filters.end_ns is not None:
            params.append(self.bound(filters.end_ns))
        params.extend(filters.participants)
        sql = self.q.history(
            start=filters.start_ns is not None,
            end=filters.end_ns is not None,
            participants=len(filters.participants),
        )

        def admit(_: Message, text: Dated) -> bool:
            return filters.accepts(text[0], text[1])

        messages = self._logical(sql, params, limit, admit, refs={chat_id: ref},
                                 edit_history=edit_history, attachments=attachments)
        return _converted(messages) if convert_attachments else messages

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
        """Case-insensitive search over what history shows of every non-tapback row (the text,
        else the decoded body, a voice message's transcript), newest first, each message once
        (in its lowest chat, or ``chat_id``); ``attachments`` are always empty.

        ``match`` is ``contains`` (a literal substring: ``%``, ``_`` and ``\\`` mean
        themselves) or ``exact`` (the whole text), both with Unicode case folding; the query is
        trimmed and an empty one finds nothing. Link previews are folded as in history.
        ``rowids`` limits the search to those rows (the search index's candidates): the answer
        is the unrestricted one whenever ``rowids`` holds every matching row. Raises
        InvalidInput (another ``match``, limit below 1), ChatNotFound or a DatabaseError.
        """
        if match not in ("contains", "exact"):
            raise InvalidInput(f"Invalid match: {match!r} (use contains or exact)")
        _check_limit(limit)
        needle = query.strip().casefold()
        if not needle:
            return []
        if chat_id is not None:
            self.chat_ref(chat_id)
        exact = match == "exact"
        params: list[Any] = [] if chat_id is None else [chat_id]
        if rowids is not None:
            params.append(f"[{','.join(str(int(r)) for r in rowids)}]")

        def admit(preview: Message, text: Dated) -> bool:
            return (not exact or text[0].text.casefold() == needle
                    or preview.reply_to_guid == text[0].guid)

        with self._lock, translate_errors(self.path):
            self._conn.create_function("imsg_matches", 3, _matcher(needle, exact),
                                       deterministic=True)
            return self._logical(
                self.q.search(chat=chat_id is not None, among=rowids is not None), params,
                limit, admit, edit_history=edit_history, attachments=False, joined_only=True,
            )

    def _logical(
        self,
        sql: str,
        params: Sequence[Any],
        limit: int,
        admit: Callable[[Message, Dated], bool],
        *,
        refs: dict[int, ChatRef] | None = None,
        edit_history: bool,
        attachments: bool,
        joined_only: bool = False,
    ) -> list[Message]:
        """Read ``sql`` (newest first, no LIMIT) until ``limit`` logical messages are certain."""
        refs = dict(refs or {})
        items: list[Dated] = []
        partners: dict[int, Dated | None] = {}
        with self._lock, translate_errors(self.path), lenient_text(self._conn):
            cursor = self._conn.execute(sql, params)
            try:
                want = limit
                while True:
                    rows = cursor.fetchmany(want)
                    exhausted = len(rows) < want
                    if joined_only:
                        rows = [row for row in rows if isinstance(row[-1], int) and row[-1]]
                    items.extend(self._dated(rows, refs, edit_history=edit_history,
                                             attachments=attachments))
                    fresh = [(m.chat_id, m.id) for m, _ in items
                             if is_url_preview(m) and m.id not in partners]
                    if fresh:
                        partners.update(self._partners(fresh, items, refs,
                                                       edit_history=edit_history,
                                                       attachments=attachments))
                    logical, final = fold_page(items, partners, admit, exhausted=exhausted)
                    if exhausted or final >= limit:
                        return logical[:limit]
                    # Rows per logical message so far: read enough to finish in one more round.
                    ratio = len(items) / max(final, 1)
                    want = max(int((limit - final) * ratio) + 1, 10)
            finally:
                cursor.close()

    def _dated(self, rows: list[tuple[Any, ...]], refs: dict[int, ChatRef], *,
               edit_history: bool = False, attachments: bool = True) -> list[Dated]:
        messages = assemble.build(self, rows, refs, edit_history=edit_history,
                                  attachments=attachments)
        return [(m, row_date_ns(row)) for m, row in zip(messages, rows, strict=True)]

    def _partners(self, previews: list[tuple[int, int]], items: list[Dated],
                  refs: dict[int, ChatRef], **build: bool) -> dict[int, Dated | None]:
        """Each preview row's candidate text row (see ``preceding_text_rows``), from ``items``
        when it is there, else read from the database."""
        by_key = {(m.chat_id, m.id): (m, d) for m, d in items}
        found = self.preceding_text_rows(previews)
        wanted = [(chat, tid) for (chat, _), tid in found.items() if (chat, tid) not in by_key]
        by_key.update(self.dated_in_chats(wanted, refs, **build))
        return {pid: by_key.get((chat, found[(chat, pid)])) if (chat, pid) in found else None
                for chat, pid in previews}

    def preceding_text_rows(self, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], int]:
        """For (chat id, ROWID) pairs: the ROWID of the closest earlier row of that chat that is
        neither a tapback nor a link preview (pairs without one are absent)."""
        found: dict[tuple[int, int], int] = {}
        for chunk in _chunks(list(pairs), _PAIRS):
            flat = [value for pair in chunk for value in pair]
            for chat, rowid, text_id in self.rows(self.q.preceding_text_rows(len(chunk)), flat):
                if text_id is not None:
                    found[(chat, rowid)] = text_id
        return found

    def dated_in_chats(self, pairs: Sequence[tuple[int, int]],
                       refs: dict[int, ChatRef] | None = None, *, edit_history: bool = False,
                       attachments: bool = False) -> dict[tuple[int, int], Dated]:
        """Messages (with Unix-ns dates) by (chat id, ROWID), each in that chat."""
        found: dict[tuple[int, int], Dated] = {}
        refs = refs if refs is not None else {}
        for chunk in _chunks(list(dict.fromkeys(pairs)), _PAIRS):
            flat = [value for pair in chunk for value in pair]
            rows = self.rows(self.q.in_chats(len(chunk)), flat)
            for message, date_ns in self._dated(rows, refs, edit_history=edit_history,
                                                attachments=attachments):
                found[(message.chat_id, message.id)] = (message, date_ns)
        return found

    def list_attachments(self, *, chat_id: int | None = None, kind: str | None = None,
                         senders: Sequence[str] = (), from_me: bool = False,
                         start_ns: int | None = None, end_ns: int | None = None,
                         limit: int = 20) -> list[tuple[Message, int]]:
        """Up to ``limit`` attachments, newest first, as (message, index): the message with all
        its attachments, in chat ``chat_id`` (else in its lowest chat), and the attachment's
        index in ``message.attachments`` (what ``imsg.mcp`` calls the attachment by). Rows
        that show no attachments are left out (tapbacks, link previews, rows in no chat).

        ``kind``: one of ``KIND_NAMES`` (``queries.attachment_kind``), None for any;
        ``from_me``: only the user's; else ``senders``: only incoming rows from these handles
        (case-insensitive); dates within [``start_ns``, ``end_ns``). One snapshot, batched
        like ``history``; across chats the newest messages are searched first and every
        attachment only when they hold fewer than ``limit``. Raises ChatNotFound, InvalidInput
        (an unknown kind, limit below 1) or a DatabaseError."""
        _check_limit(limit)
        if kind is not None and kind not in KIND_NAMES:
            raise InvalidInput(f"Invalid kind: {kind!r} (use {', '.join(KIND_NAMES)})")
        refs = {chat_id: self.chat_ref(chat_id)} if chat_id is not None else {}
        query = partial(self.q.attachment_list, chat=chat_id is not None,
                        start=start_ns is not None, end=end_ns is not None,
                        senders=len(senders), mine=from_me, kind=kind is not None)
        sql = query()
        if sql is None:
            return []
        params: list[Any] = [] if chat_id is None else [chat_id]
        params.extend(self.bound(ns) for ns in (start_ns, end_ns) if ns is not None)
        if not from_me:
            params.extend(senders)
        if kind is not None:
            params.append(kind)
        params.append(limit)
        with self.snapshot():
            rows: list[tuple[Any, ...]] = []
            if chat_id is None:  # most answers are among the newest messages: look there first
                recent = query(recent=True)
                rows = self.rows(recent, [_RECENT_MESSAGES, *params]) if recent else []
            if len(rows) < limit:
                rows = self.rows(sql, params)
            found = self.dated_in_chats([(chat, rowid) for rowid, chat, _ in rows], refs,
                                        attachments=True)
        listed = []
        for rowid, chat, index in rows:
            message = found.get((chat, rowid), (None, None))[0]
            if message is not None and index < len(message.attachments):
                listed.append((message, int(index)))
        return listed

    def messages_after(
        self, rowid: int, *, limit: int, chat_id: int | None = None, reactions: bool = False,
        attachments: bool = True,
    ) -> list[tuple[Message, int | None]]:
        """Up to ``limit`` rows with ROWID > ``rowid`` in ROWID order, with each row's Unix-ns date.

        Rows not yet joined to a chat come back with ``chat_id`` 0 (callers decide what to do).
        """
        params: list[Any] = [rowid]
        if chat_id is not None:
            params.append(chat_id)
        params.append(limit)
        rows = self.rows(
            self.q.after_rowid(chat_filter=chat_id is not None, reactions=reactions), params
        )
        return self._with_dates(rows, attachments=attachments)

    def chat_rows_near(self, chat_id: int, rowid: int, *, after: bool,
                       limit: int) -> list[tuple[Message, int | None]]:
        """Up to ``limit`` non-tapback rows of chat ``chat_id`` just after (or before) ROWID
        ``rowid``, nearest first, with their Unix-ns dates."""
        return self._with_dates(self.rows(self.q.chat_rows_near(after=after),
                                          (chat_id, rowid, limit)))

    def join_states(self, rowids: Sequence[int]) -> dict[int, str]:
        """For each of these ROWIDs still in the database: ``"joined"`` (to a chat),
        ``"deleted"`` (in Recently Deleted: Messages moved its join there) or ``"unjoined"``."""
        states: dict[int, str] = {}
        for chunk in _chunks(list(rowids)):
            for rowid, joined, deleted in self.rows(self.q.join_states(len(chunk)), chunk):
                states[int(rowid)] = "joined" if joined else "deleted" if deleted else "unjoined"
        return states

    def message_keys_after(self, rowid: int, limit: int) -> list[tuple[int, str]]:
        """(ROWID, guid) of up to ``limit`` rows after ``rowid``, read without building any
        message (to find the one row that cannot be read)."""
        return [(int(key), guid if isinstance(guid, str) else "")
                for key, guid in self.rows(self.q.message_keys_after, (rowid, limit))]

    def rowid_of_guid(self, guid: str) -> int | None:
        rows = self.rows(self.q.rowid_of_guid, (guid,))
        return int(rows[0][0]) if rows else None

    def rowid_high_water(self) -> int:
        """The highest ROWID this file ever handed out: deleting the newest messages does not
        lower it, restoring an older copy does."""
        return int(self.rows(self.q.rowid_high_water)[0][0])

    def messages_by_rowid(self, rowids: Sequence[int], *,
                          attachments: bool = True) -> list[tuple[Message, int | None]]:
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(list(rowids)):
            rows.extend(self.rows(self.q.by_rowids(len(chunk)), chunk))
        return self._with_dates(rows, attachments=attachments)

    def _with_dates(self, rows: list[tuple[Any, ...]], *,
                    attachments: bool = True) -> list[tuple[Message, int | None]]:
        """``attachments=False``: attachment lists left empty (their files are not looked at;
        voice transcripts are still read)."""
        messages = self.build(rows, attachments=attachments)
        return [(m, row_date_ns(row)) for m, row in zip(messages, rows, strict=True)]

    def search_texts(
        self, after_rowid: int = 0, *, rowids: Sequence[int] | None = None, page: int = 5000
    ) -> Iterator[SearchText]:
        """What ``search`` matches, row by row in ROWID order: every row past ``after_rowid``,
        or only ``rowids``. The search index relies on this: each row's ``texts`` must hold every
        text ``search`` can match it by (more is harmless), so change both together."""
        if rowids is not None:
            for chunk in _chunks(sorted(set(rowids))):
                yield from self._search_texts(self.rows(self.q.search_texts(len(chunk)), chunk))
            return
        cursor = after_rowid
        while True:
            rows = self.rows(self.q.search_texts(), (cursor, page))
            yield from self._search_texts(rows)
            if len(rows) < page:
                return
            cursor = rows[-1][0]

    def _search_texts(self, rows: list[tuple[Any, ...]]) -> Iterator[SearchText]:
        from imsg.chatdb import decode

        transcripts: dict[int, str] = {}
        voice = [row[0] for row in rows if row[8] and not row[7]]
        for chunk in _chunks(voice):
            sql = self.q.attachments(len(chunk))
            for mid, *_, info in self.rows(sql, chunk) if sql else ():
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
            yield SearchText(rowid, guid or "", date, edited or 0, retracted or 0, texts,
                             bool(audio))

    def iter_texts(self, after_rowid: int = 0, page: int = 5000) -> Iterator[tuple[int, str]]:
        """(ROWID, text) of every message in ROWID order, in bounded pages (constant memory)."""
        from imsg.chatdb import decode

        cursor = after_rowid
        text_of = decode.row_text  # bound once: this loop runs for every message
        while True:
            rows = self.rows(self.q.all_texts, (cursor, page))
            for rowid, text, body in rows:
                yield rowid, text_of(text, body)
            if len(rows) < page:
                return
            cursor = rows[-1][0]

    def build(
        self,
        rows: list[tuple[Any, ...]],
        refs: dict[int, ChatRef] | None = None,
        *,
        edit_history: bool = False,
        attachments: bool = True,
        convert_attachments: bool = False,
    ) -> list[Message]:
        """Turn message rows (MESSAGE_FIELDS + chat_id) into Messages with batched extras."""
        return assemble.build(self, rows, refs, edit_history=edit_history,
                              attachments=attachments, convert=convert_attachments)


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1 (got {limit})")


def _converted(messages: list[Message]) -> list[Message]:
    from imsg.chatdb.convert import with_converted_attachments

    return [with_converted_attachments(m) if m.attachments else m for m in messages]


def _matcher(needle: str, exact: bool) -> Callable[[Any, Any, Any], bool]:
    """``imsg_matches(text, body, user_info)``: the text history shows (a voice message with
    no text shows its transcript), casefolded, contains or equals ``needle``. ``text`` comes
    as bytes and is decoded with replacement (invalid UTF-8 never fails the search)."""
    from imsg.chatdb import decode

    def matches(text: Any, body: Any, user_info: Any) -> bool:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        value = decode.row_text(text, body)
        if isinstance(user_info, bytes) and value.strip("\ufffc ") == "":
            value = decode.audio_transcription(user_info) or value
        folded = value.casefold()
        return folded == needle if exact else needle in folded

    return matches
