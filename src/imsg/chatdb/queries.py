"""All SQL imsg runs against chat.db, built once per database from its probed schema.

Every column but ``ROWID`` and the join keys of ``chat_message_join`` is optional: a column this
database lacks (an older macOS, a newer one that renamed it) is replaced by a literal, and a
missing optional table turns the query that needs it into ``None`` (the reader then returns no
attachments, no participants…), so one renamed column never fails a whole command. User values
are always bound parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from imsg.chatdb.connection import Schema
from imsg.chatdb.previews import URL_BALLOON

POLLS_BUNDLE = "com.apple.messages.Polls"
_TABLES = {
    "m": "message", "r": "message", "t": "message", "h": "handle", "c": "chat",
    "a": "attachment", "j": "chat_message_join", "maj": "message_attachment_join",
    "chj": "chat_handle_join",
}

# (name in the row, column, fallback literal when the column is absent)
_MESSAGE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("rowid", "m.ROWID", "0"),
    ("guid", "m.guid", "''"),
    ("text", "m.text", "NULL"),
    ("body", "m.attributedBody", "NULL"),
    ("sender", "h.id", "NULL"),
    ("date", "m.date", "0"),
    ("is_from_me", "m.is_from_me", "0"),
    ("service", "m.service", "NULL"),
    ("destination_caller_id", "m.destination_caller_id", "NULL"),
    ("assoc_guid", "m.associated_message_guid", "NULL"),
    ("assoc_type", "m.associated_message_type", "0"),
    ("assoc_emoji", "m.associated_message_emoji", "NULL"),
    ("thread_originator_guid", "m.thread_originator_guid", "NULL"),
    ("thread_originator_part", "m.thread_originator_part", "NULL"),
    ("reply_to_guid", "m.reply_to_guid", "NULL"),
    ("is_audio", "m.is_audio_message", "0"),
    ("balloon", "m.balloon_bundle_id", "NULL"),
    ("date_edited", "m.date_edited", "0"),
    ("date_retracted", "m.date_retracted", "0"),
    ("summary", "m.message_summary_info", "NULL"),
    ("item_type", "m.item_type", "0"),
    ("group_action", "m.group_action_type", "0"),
    ("group_title", "m.group_title", "NULL"),
    ("other_handle", "m.other_handle", "0"),
    ("has_attachments", "m.cache_has_attachments", "1"),
    ("part_count", "m.part_count", "NULL"),
    ("payload", "m.payload_data", "NULL"),
    ("is_read", "m.is_read", "NULL"),
    ("date_read", "m.date_read", "0"),
)
MESSAGE_FIELDS = tuple(name for name, _, _ in _MESSAGE_COLUMNS)
FIELD = {name: i for i, name in enumerate(MESSAGE_FIELDS)}

_CHAT_COLUMNS = (
    ("c.chat_identifier", "NULL"), ("c.guid", "NULL"), ("c.display_name", "NULL"),
    ("c.service_name", "NULL"), ("c.style", "NULL"), ("c.account_id", "NULL"),
    ("c.account_login", "NULL"), ("c.last_addressed_handle", "NULL"),
)
_ATTACHMENT_COLUMNS = (
    ("a.filename", "NULL"), ("a.transfer_name", "NULL"), ("a.uti", "NULL"),
    ("a.mime_type", "NULL"), ("a.total_bytes", "0"), ("a.is_sticker", "0"),
    ("a.user_info", "NULL"),
)

# What an attachment is, by its MIME type's major type, or by its UTI when Messages left the
# MIME type empty; a sticker is a kind of its own and anything else a file.
# ``attachment_kind`` and ``Queries.attachment_kind`` both read this table: change it, not them.
ATTACHMENT_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("image", ("public.image", "public.jpeg", "public.png", "public.heic", "public.heif",
               "com.compuserve.gif", "public.tiff", "org.webmproject.webp", "com.microsoft.bmp",
               "public.camera-raw-image")),
    ("video", ("public.movie", "public.video", "com.apple.quicktime-movie", "public.mpeg-4",
               "com.apple.m4v-video", "public.3gpp", "public.avi")),
    ("audio", ("public.audio", "com.apple.coreaudio-format", "public.mp3", "public.mpeg-4-audio",
               "com.apple.m4a-audio", "public.aiff-audio", "public.aifc-audio",
               "com.microsoft.waveform-audio", "org.3gpp.adaptive-multi-rate-audio")),
)
KIND_NAMES = ("image", "video", "audio", "file", "sticker")


def attachment_kind(mime_type: str, uti: str, is_sticker: bool) -> str:
    """``sticker``, ``image``, ``video``, ``audio`` or ``file`` (``ATTACHMENT_KINDS``)."""
    if is_sticker:
        return "sticker"
    mime = mime_type.lower()
    if mime:
        return next((kind for kind, _ in ATTACHMENT_KINDS if mime.startswith(f"{kind}/")),
                    "file")
    known = uti.lower()
    return next((kind for kind, utis in ATTACHMENT_KINDS if known in utis), "file")


def _marks(count: int) -> str:
    return ",".join("?" * count)


_T = TypeVar("_T")
_P = ParamSpec("_P")
_MISSING = object()


def _sql(method: Callable[Concatenate[Queries, _P], _T]) -> Callable[Concatenate[Queries, _P], _T]:
    """Memoize one of ``Queries``' builders (their arguments are counts and flags)."""

    name = method.__name__

    def memoized(self: Queries, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        key = (name, args, tuple(sorted(kwargs.items())))
        found = self._memo.get(key, _MISSING)
        if found is _MISSING:
            found = self._memo[key] = method(self, *args, **kwargs)
        return cast("_T", found)

    functools.update_wrapper(memoized, method)
    return memoized


@dataclass(frozen=True, slots=True)
class Queries:
    """SQL text for one database's schema."""

    schema: Schema
    message_select: str
    # Every SQL text (and schema answer) built once per database, then reused: queries run
    # thousands of times a second under load, their text never changes.
    _memo: dict[tuple[Any, ...], Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def for_schema(cls, schema: Schema) -> Queries:
        probe = cls(schema, "")
        select = ", ".join(probe._message_column(name, expr, fallback)
                           for name, expr, fallback in _MESSAGE_COLUMNS)
        return cls(schema, select)

    # --- schema ------------------------------------------------------------------------------

    def has(self, qualified: str) -> bool:
        """``"m.is_read"`` → whether ``message.is_read`` exists (``ROWID`` always does)."""
        alias, _, column = qualified.partition(".")
        table = _TABLES[alias]
        return self.schema.has_table(table) and (
            column == "ROWID" or self.schema.has(table, column))

    def col(self, qualified: str, fallback: str = "NULL") -> str:
        return qualified if self.has(qualified) else fallback

    def _message_column(self, name: str, expr: str, fallback: str) -> str:
        if not self.has(expr):
            return fallback
        if name == "payload":  # only previews and polls need their (large) payload
            return f"CASE WHEN {self._payload_wanted('m')} THEN m.payload_data END"
        if name == "other_handle":
            handle = self.col("h.id")
            return (f"(SELECT {handle.replace('h.', 'oh.')} FROM handle oh"
                    " WHERE oh.ROWID = m.other_handle AND m.other_handle != 0)")
        return expr

    @_sql
    def _payload_wanted(self, alias: str) -> str:
        terms = []
        if self.has("m.balloon_bundle_id"):
            terms.append(f"{alias}.balloon_bundle_id IN ('{URL_BALLOON}', '{POLLS_BUNDLE}')"
                         f" OR {alias}.balloon_bundle_id LIKE '%:{POLLS_BUNDLE}'")
        if self.has("m.associated_message_type"):
            terms.append(f"{alias}.associated_message_type = 4000")
        return " OR ".join(terms) or "0"

    @property
    @_sql
    def has_tapbacks(self) -> bool:
        return self.has("m.associated_message_guid") and self.has("m.associated_message_type")

    @property
    @_sql
    def has_read_state(self) -> bool:
        return self.has("m.is_read")

    @_sql
    def not_a_reaction(self, alias: str = "m") -> str:
        if not self.has("m.associated_message_type"):
            return "1"
        column = f"{alias}.associated_message_type"
        return f"({column} IS NULL OR {column} NOT BETWEEN 2000 AND 3007)"

    @_sql
    def not_a_preview(self, alias: str) -> str:
        if not self.has("m.balloon_bundle_id"):
            return "1"
        column = f"{alias}.balloon_bundle_id"
        return f"({column} IS NULL OR {column} != '{URL_BALLOON}')"

    @property
    @_sql
    def _handle_join(self) -> str:
        on = "h.ROWID = m.handle_id" if self.has("m.handle_id") and self.has("h.ROWID") else "0"
        return f" LEFT JOIN handle h ON {on}"

    @property
    @_sql
    def order_by_join_date(self) -> bool:
        return self.has("j.message_date")

    # --- chats -------------------------------------------------------------------------------

    @_sql
    def last_activity(self, chat: str = "c") -> str:
        """Newest join date of a chat: one seek on Apple's (chat_id, message_date) index."""
        if self.order_by_join_date:
            return (
                "(SELECT MAX(j.message_date) FROM chat_message_join j"
                f" WHERE j.chat_id = {chat}.ROWID)"
            )
        return (
            f"(SELECT MAX({self.col('m.date', '0')}) FROM chat_message_join j"
            " JOIN message m ON m.ROWID = j.message_id"
            f" WHERE j.chat_id = {chat}.ROWID)"
        )

    @property
    @_sql
    def chat_columns(self) -> str:
        return "c.ROWID, " + ", ".join(self.col(c, f) for c, f in _CHAT_COLUMNS)

    @_sql
    def recent_chats(self, count: int | None = None) -> str:
        """Chats by newest activity, ``LIMIT ?``; with ``count``, only those ROWIDs."""
        # Rank (ROWID, last) pairs only, then read the winners' columns: sorting whole chat
        # rows (with their property blobs) costs more than the index seeks themselves.
        where = f" WHERE ROWID IN ({_marks(count)})" if count else ""
        return (
            f"SELECT {self.chat_columns}, t.last FROM (SELECT ROWID AS id,"
            f" {self.last_activity('chat')} AS last FROM chat{where}"
            " ORDER BY last DESC, id DESC LIMIT ?) t JOIN chat c ON c.ROWID = t.id"
            " WHERE t.last IS NOT NULL ORDER BY t.last DESC, t.id DESC"
        )

    @_sql
    def chat_by_id(self) -> str:
        return f"SELECT {self.chat_columns}, {self.last_activity()} FROM chat c WHERE c.ROWID = ?"

    @_sql
    def chats_by_ids(self, count: int) -> str:
        return f"SELECT {self.chat_columns}, NULL FROM chat c WHERE c.ROWID IN ({_marks(count)})"

    @_sql
    def participants(self, count: int) -> str | None:
        if not (self.has("chj.chat_id") and self.has("chj.handle_id") and self.has("h.id")):
            return None
        return (
            "SELECT chj.chat_id, h.id FROM chat_handle_join chj JOIN handle h"
            f" ON h.ROWID = chj.handle_id WHERE chj.chat_id IN ({_marks(count)})"
        )

    @property
    @_sql
    def chat_by_guid(self) -> str | None:
        return "SELECT ROWID FROM chat WHERE guid = ?" if self.has("c.guid") else None

    @property
    @_sql
    def chat_by_identifier(self) -> str | None:
        # An identifier may name several chats (a number's iMessage and SMS chats): newest wins.
        if not self.has("c.chat_identifier"):
            return None
        return (
            "SELECT c.ROWID FROM chat c WHERE c.chat_identifier = ? ORDER BY"
            " (SELECT MAX(j.message_id) FROM chat_message_join j WHERE j.chat_id = c.ROWID) DESC,"
            " c.ROWID DESC LIMIT 1"
        )

    @property
    @_sql
    def handle_services(self) -> str:
        """Services ``?1`` has working history on: a handle row, or a direct chat, with at
        least one message that did not fail (``error = 0``), as the Swift tool decides; a
        number whose iMessages all failed (it moved to another phone) counts as SMS-only."""
        ok = "m.error = 0" if self.has("m.error") else "1"
        parts = []
        if self.has("h.id") and self.has("h.service") and self.has("m.handle_id"):
            parts.append(
                "SELECT h.service FROM handle h WHERE h.id = ?1 COLLATE NOCASE AND EXISTS"
                f" (SELECT 1 FROM message m WHERE m.handle_id = h.ROWID AND {ok})")
        if self.has("c.chat_identifier") and self.has("c.service_name") and self.has("c.style"):
            parts.append(
                "SELECT c.service_name FROM chat c WHERE c.chat_identifier = ?1 COLLATE NOCASE"
                " AND c.style = 45 AND EXISTS (SELECT 1 FROM chat_message_join j JOIN message m"
                f" ON m.ROWID = j.message_id WHERE j.chat_id = c.ROWID AND {ok})")
        return " UNION ".join(parts) or "SELECT NULL WHERE ?1 IS NULL AND 0"

    # --- unread counts -----------------------------------------------------------------------

    @_sql
    def unread_rows(self, count: int | None) -> str:
        """Per chat: (chat id, unread inbound rows that count, the ROWIDs of the link previews
        among them as "1,2,3" or NULL). Every row counts but system events (``item_type`` ≠ 0);
        with ``count``, only those chats. Driven by Apple's ``(is_read, is_from_me,
        item_type)`` index, each row's chat found through the ``message_id`` index (``+``
        keeps SQLite from probing the chat list once per row instead)."""
        where = ["m.is_read = 0", f"{self.col('m.is_from_me', '0')} = 0"]
        if self.has("m.item_type"):
            where.append("COALESCE(m.item_type, 0) = 0")
        if count:
            where.append(f"+j.chat_id IN ({_marks(count)})")
        previews = (f"group_concat(CASE WHEN m.balloon_bundle_id = '{URL_BALLOON}'"
                    " THEN m.ROWID END)" if self.has("m.balloon_bundle_id") else "NULL")
        return (
            f"SELECT j.chat_id, COUNT(*), {previews} FROM message m"
            " JOIN chat_message_join j ON j.message_id = m.ROWID"
            f" WHERE {' AND '.join(where)} GROUP BY j.chat_id"
        )

    # --- messages ----------------------------------------------------------------------------

    @property
    @_sql
    def any_message(self) -> str:
        """Message rows with their chat (NULL while not joined yet) and sender handle."""
        return (
            f"SELECT {self.message_select}, j.chat_id FROM message m"
            " LEFT JOIN chat_message_join j ON j.message_id = m.ROWID"
            f"{self._handle_join}"
        )

    @_sql
    def history(self, *, start: bool, end: bool, participants: int) -> str:
        """One chat's rows newest first, no LIMIT: the reader reads only as many as it needs."""
        date = "j.message_date" if self.order_by_join_date else self.col("m.date", "0")
        where = ["j.chat_id = ?", self.not_a_reaction()]
        if start:
            where.append(f"{date} >= ?")
        if end:
            where.append(f"{date} < ?")
        if participants:
            caller = self.col("m.destination_caller_id")
            where.append(
                f"COALESCE(NULLIF({self.col('h.id')}, ''), {caller}) COLLATE NOCASE"
                f" IN ({_marks(participants)})"
            )
        return (
            f"SELECT {self.message_select}, j.chat_id FROM chat_message_join j"
            f" JOIN message m ON m.ROWID = j.message_id{self._handle_join}"
            f" WHERE {' AND '.join(where)} ORDER BY {date} DESC, j.message_id DESC"
        )

    @_sql
    def after_rowid(self, *, chat_filter: bool, reactions: bool) -> str:
        """Rows past a cursor in ROWID order; chat_id NULL when not joined yet."""
        where = ["m.ROWID > ?"]
        if not reactions:
            where.append(self.not_a_reaction())
        if chat_filter:
            # Unjoined rows must still come back (as NULL chat) so the watcher can hold them.
            where.append("(j.chat_id = ? OR j.chat_id IS NULL)")
        return f"{self.any_message} WHERE {' AND '.join(where)} ORDER BY m.ROWID LIMIT ?"

    @_sql
    def by_rowids(self, count: int) -> str:
        return f"{self.any_message} WHERE m.ROWID IN ({_marks(count)}) ORDER BY m.ROWID"

    @_sql
    def in_chats(self, count: int) -> str:
        """Rows by (chat id, ROWID) pairs (``count`` pairs), each with that chat."""
        pairs = ",".join("(?, ?)" for _ in range(count))
        return (
            f"WITH p(chat, id) AS (VALUES {pairs}) SELECT {self.message_select}, j.chat_id"
            " FROM p JOIN chat_message_join j ON j.chat_id = p.chat AND j.message_id = p.id"
            f" JOIN message m ON m.ROWID = j.message_id{self._handle_join}"
        )

    @_sql
    def preceding_text_rows(self, count: int) -> str:
        """For (chat id, ROWID) pairs: (chat id, ROWID, the closest earlier row of that chat
        that is neither a tapback nor a link preview, or NULL). Walks the (chat_id, message_id)
        key."""
        pairs = ",".join("(?, ?)" for _ in range(count))
        return (
            f"WITH p(chat, id) AS (VALUES {pairs}) SELECT p.chat, p.id, (SELECT j.message_id"
            " FROM chat_message_join j JOIN message t ON t.ROWID = j.message_id"
            f" WHERE j.chat_id = p.chat AND j.message_id < p.id AND {self.not_a_reaction('t')}"
            f" AND {self.not_a_preview('t')} ORDER BY j.message_id DESC LIMIT 1) FROM p"
        )

    @_sql
    def chat_rows_near(self, *, after: bool) -> str:
        """A chat's non-tapback rows nearest a ROWID, nearest first (chat id, ROWID, LIMIT
        bound in that order): one walk of the (chat_id, message_id) key."""
        op, order = (">", "") if after else ("<", " DESC")
        return (
            f"SELECT {self.message_select}, j.chat_id FROM chat_message_join j"
            f" JOIN message m ON m.ROWID = j.message_id{self._handle_join}"
            f" WHERE j.chat_id = ? AND j.message_id {op} ? AND {self.not_a_reaction()}"
            f" ORDER BY j.message_id{order} LIMIT ?"
        )

    @_sql
    def join_states(self, count: int) -> str:
        """(ROWID, joined to a chat, in Recently Deleted) of ``count`` ROWIDs."""
        deleted = "0"
        if self.schema.has("chat_recoverable_message_join", "message_id"):
            deleted = ("EXISTS (SELECT 1 FROM chat_recoverable_message_join d"
                       " WHERE d.message_id = m.ROWID)")
        return (
            "SELECT m.ROWID, EXISTS (SELECT 1 FROM chat_message_join j"
            f" WHERE j.message_id = m.ROWID), {deleted} FROM message m"
            f" WHERE m.ROWID IN ({_marks(count)})"
        )

    @property
    @_sql
    def message_keys_after(self) -> str:
        """(ROWID, guid) of the rows after ``?``, ``LIMIT ?``: nothing else is decoded."""
        return (f"SELECT m.ROWID, {self.col('m.guid')} FROM message m WHERE m.ROWID > ?"
                " ORDER BY m.ROWID LIMIT ?")

    @property
    @_sql
    def rowid_of_guid(self) -> str:
        return f"SELECT m.ROWID FROM message m WHERE {self.col('m.guid')} = ?"

    @property
    @_sql
    def rowid_high_water(self) -> str:
        """The highest ROWID ``message`` ever handed out: ``sqlite_sequence`` remembers it after
        the newest rows are deleted (the table is AUTOINCREMENT), an older copy does not."""
        sequence = "0"
        if self.schema.has("sqlite_sequence", "seq"):
            sequence = "(SELECT seq FROM sqlite_sequence WHERE name = 'message')"
        return f"SELECT MAX(COALESCE({sequence}, 0), COALESCE(MAX(ROWID), 0)) FROM message"

    @_sql
    def search(self, *, chat: bool, among: bool = False) -> str:
        """Matching rows newest first, no LIMIT (read lazily), each with its lowest chat (NULL
        when unjoined) or the requested chat (bound first). ``among``: only the ROWIDs of a JSON
        array bound next. Matching is ``imsg_matches(text, body, user_info)``."""
        transcript = "NULL"
        if (self.has("m.is_audio_message") and self.has("maj.message_id")
                and self.has("a.user_info")):
            transcript = (
                "CASE WHEN m.is_audio_message THEN (SELECT a.user_info"
                " FROM message_attachment_join maj JOIN attachment a ON a.ROWID = maj.attachment_id"
                " WHERE maj.message_id = m.ROWID AND a.user_info IS NOT NULL ORDER BY a.ROWID"
                " LIMIT 1) END"
            )
        where = [self.not_a_reaction()]
        if chat:
            where.append("EXISTS (SELECT 1 FROM chat_message_join jj"
                         " WHERE jj.message_id = m.ROWID AND jj.chat_id = ?1)")
            chat_id = "?1"
        else:
            chat_id = ("(SELECT MIN(jj.chat_id) FROM chat_message_join jj"
                       " WHERE jj.message_id = m.ROWID)")
        if among:
            where.append(f"m.ROWID IN (SELECT value FROM json_each(?{2 if chat else 1}))")
        text, body = self.col("m.text"), self.col("m.attributedBody")
        # The text goes to the matcher as bytes: SQLite hands a function its arguments decoded
        # strictly, so one row of invalid UTF-8 would fail the whole search.
        where.append(f"imsg_matches(CAST({text} AS BLOB), {body}, {transcript})")
        date = self.col("m.date", "0")
        return (
            f"SELECT {self.message_select}, {chat_id} FROM message m{self._handle_join}"
            f" WHERE {' AND '.join(where)} ORDER BY {date} DESC, m.ROWID DESC"
        )

    @_sql
    def search_texts(self, count: int | None = None) -> str:
        """ROWID, guid, date, date_edited, date_retracted, text, body, is a tapback, is audio:
        rows with ROWID > ? in order, LIMIT ?; or, with ``count``, those ROWIDs."""
        where = (
            "m.ROWID > ? ORDER BY m.ROWID LIMIT ?"
            if count is None
            else f"m.ROWID IN ({_marks(count)}) ORDER BY m.ROWID"
        )
        columns = ", ".join(self.col(c, f) for c, f in (
            ("m.guid", "NULL"), ("m.date", "NULL"), ("m.date_edited", "0"),
            ("m.date_retracted", "0"), ("m.text", "NULL"), ("m.attributedBody", "NULL")))
        return (
            f"SELECT m.ROWID, {columns}, NOT {self.not_a_reaction()},"
            f" {self.col('m.is_audio_message', '0')} FROM message m WHERE {where}"
        )

    @_sql
    def attachments(self, count: int) -> str | None:
        if not (self.has("maj.message_id") and self.has("maj.attachment_id")
                and self.schema.has_table("attachment")):
            return None
        columns = ", ".join(self.col(c, f) for c, f in _ATTACHMENT_COLUMNS)
        return (
            f"SELECT maj.message_id, {columns} FROM message_attachment_join maj"
            f" JOIN attachment a ON a.ROWID = maj.attachment_id"
            f" WHERE maj.message_id IN ({_marks(count)}) ORDER BY maj.message_id, a.ROWID"
        )

    @_sql
    def attachment_kind(self) -> str:
        """SQL twin of ``attachment_kind`` over the attachment row ``a``."""
        raw = self.col("a.mime_type")
        mime = f"(CASE WHEN typeof({raw}) = 'text' THEN lower({raw}) ELSE '' END)"
        uti = f"lower({self.col('a.uti')})"
        by_mime = " ".join(f"WHEN {mime} LIKE '{kind}/%' THEN '{kind}'"
                           for kind, _ in ATTACHMENT_KINDS)
        by_uti = " ".join(f"WHEN {uti} IN ({', '.join(repr(u) for u in utis)}) THEN '{kind}'"
                          for kind, utis in ATTACHMENT_KINDS)
        return (f"(CASE WHEN COALESCE({self.col('a.is_sticker', '0')}, 0) != 0 THEN 'sticker'"
                f" WHEN {mime} != '' THEN (CASE {by_mime} ELSE 'file' END)"
                f" ELSE (CASE {by_uti} ELSE 'file' END) END)")

    @_sql
    def attachment_list(self, *, chat: bool, start: bool, end: bool, senders: int,
                        mine: bool, kind: bool, recent: bool = False) -> str | None:
        """Attachments of the rows that show them (joined to a chat, not a tapback, not a link
        preview, ``cache_has_attachments`` set), newest first: (message ROWID, chat id, the
        attachment's index among its message's attachments, as ``attachments`` orders them).
        The chat is the one bound (``chat``) or the message's lowest. Bound in this order: the
        chat, the start and end dates, the sender handles (incoming rows from them; ``mine``:
        the user's rows instead), the kind (``attachment_kind``), then ``LIMIT ?``.

        In a chat it walks the chat's (chat_id, message_date) key newest first. Across chats
        every attachment join row is a candidate (attachments are far fewer than messages, so
        a rare kind costs no more than a common one), or, with ``recent``, only those of the
        newest ``?`` messages (bound first; the message date index): a prefix of the same
        order, so when it holds ``LIMIT`` rows they are the answer. Only (ROWID, chat,
        attachment, date) are sorted: the chat and index look-ups run for the rows kept."""
        if not (self.has("maj.message_id") and self.has("maj.attachment_id")
                and self.schema.has_table("attachment")):
            return None
        date = self.col("m.date", "0")
        if chat:
            date = "j.message_date" if self.order_by_join_date else date
            source = "chat_message_join j JOIN message m ON m.ROWID = j.message_id"
            where, chat_of = ["j.chat_id = ?"], "t.chat"
        else:
            source = "message m"
            if recent:
                source = (f"(SELECT ROWID AS id FROM message ORDER BY {date.replace('m.', '')}"
                          " DESC, ROWID DESC LIMIT ?) w CROSS JOIN message m ON m.ROWID = w.id")
            where = ["EXISTS (SELECT 1 FROM chat_message_join jj WHERE jj.message_id = m.ROWID)"]
            chat_of = ("(SELECT MIN(jj.chat_id) FROM chat_message_join jj"
                       " WHERE jj.message_id = t.id)")
        where += [f"COALESCE({self.col('m.cache_has_attachments', '1')}, 0) != 0",
                  self.not_a_reaction(), self.not_a_preview("m")]
        if start:
            where.append(f"{date} >= ?")
        if end:
            where.append(f"{date} < ?")
        from_me = f"COALESCE({self.col('m.is_from_me', '0')}, 0)"
        if mine:
            where.append(f"{from_me} != 0")
        elif senders:
            where.append(f"{from_me} = 0 AND {self.col('h.id')} COLLATE NOCASE"
                         f" IN ({_marks(senders)})")
        if kind:
            where.append(f"{self.attachment_kind()} = ?")
        handles = self._handle_join if senders and not mine else ""
        key = "j.message_id" if chat else "m.ROWID"
        index = ("(SELECT COUNT(*) FROM message_attachment_join x JOIN attachment y"
                 " ON y.ROWID = x.attachment_id WHERE x.message_id = t.id"
                 " AND x.attachment_id < t.attachment)")
        return (
            f"WITH t AS MATERIALIZED (SELECT {key} AS id, {'j.chat_id' if chat else 'NULL'}"
            f" AS chat, maj.attachment_id AS attachment, {date} AS date FROM {source}{handles}"
            " JOIN message_attachment_join maj ON maj.message_id = m.ROWID"
            " JOIN attachment a ON a.ROWID = maj.attachment_id"
            f" WHERE {' AND '.join(where)}"
            f" ORDER BY {date} DESC, {key} DESC, maj.attachment_id LIMIT ?)"
            f" SELECT t.id, {chat_of}, {index} FROM t"
            " ORDER BY t.date DESC, t.id DESC, t.attachment"
        )

    @_sql
    def reactions(self, count: int) -> str | None:
        if not self.has_tapbacks:
            return None
        r = {c: self.col(f"m.{c}").replace("m.", "r.", 1)
             for c in ("associated_message_emoji", "text", "attributedBody",
                       "destination_caller_id")}
        handle = "h.ROWID = r.handle_id" if self.has("m.handle_id") else "0"
        return (
            f"SELECT r.ROWID, r.associated_message_guid, r.associated_message_type,"
            f" {r['associated_message_emoji']}, {r['text']}, {r['attributedBody']},"
            f" {self.col('h.id')}, {r['destination_caller_id']},"
            f" {self.col('m.is_from_me', '0').replace('m.', 'r.', 1)},"
            f" {self.col('m.date', '0').replace('m.', 'r.', 1)}"
            f" FROM message r LEFT JOIN handle h ON {handle}"
            f" WHERE r.associated_message_guid IN ({_marks(count)})"
            " AND r.associated_message_type BETWEEN 2000 AND 3007"
            f" ORDER BY {self.col('m.date', '0').replace('m.', 'r.', 1)}, r.ROWID"
        )

    @_sql
    def parents(self, count: int) -> str | None:
        if not self.has("m.guid"):
            return None
        columns = ", ".join(self.col(c) for c in ("m.text", "m.attributedBody", "h.id",
                                                  "m.destination_caller_id"))
        return (
            f"SELECT m.guid, {columns} FROM message m{self._handle_join}"
            f" WHERE m.guid IN ({_marks(count)})"
        )

    @_sql
    def poll_sources(self, guids: int, targets: int) -> str | None:
        """Poll rows by guid (``guids`` parameters), then their "Add Choice" update rows by
        associated guid (``targets`` parameters: the guids in every prefixed form): (guid,
        associated guid, associated type, balloon, payload, summary, sender, ROWID), in ROWID
        order."""
        if not (self.has("m.guid") and self.has("m.payload_data")):
            return None
        related = f"m.guid IN ({_marks(guids)})"
        if self.has_tapbacks:
            related += (f" OR (m.associated_message_guid IN ({_marks(targets)})"
                        " AND m.associated_message_type = 2)")
        columns = ", ".join(self.col(c) for c in (
            "m.associated_message_guid", "m.associated_message_type", "m.balloon_bundle_id",
            "m.payload_data", "m.message_summary_info", "h.id"))
        return (f"SELECT m.guid, {columns}, m.ROWID FROM message m{self._handle_join}"
                f" WHERE {related} ORDER BY m.ROWID")

    @_sql
    def poll_captions(self, count: int) -> str | None:
        """For (chat id, poll ROWID, poll guid) triples: (poll guid, text, body) of the plain
        rows among the next 20 of that chat that answer the poll (``reply_to_guid`` = its
        guid), earliest first."""
        if not (self.has("m.reply_to_guid") and self.has("m.balloon_bundle_id")):
            return None
        triples = ",".join("(?, ?, ?)" for _ in range(count))
        return (
            f"WITH p(chat, id, guid) AS (VALUES {triples})"
            f" SELECT p.guid, {self.col('t.text')}, {self.col('t.attributedBody')} FROM p"
            " JOIN message t ON t.ROWID IN (SELECT message_id FROM chat_message_join"
            " WHERE chat_id = p.chat AND message_id > p.id ORDER BY message_id LIMIT 20)"
            f" WHERE t.reply_to_guid = p.guid AND t.balloon_bundle_id IS NULL"
            f" AND {self.not_a_reaction('t')} ORDER BY p.id, t.ROWID"
        )

    MAX_ROWID = "SELECT COALESCE(MAX(ROWID), 0) FROM message"

    @property
    @_sql
    def oldest_rowid_since(self) -> str:
        """The lowest ROWID dated at or after ``?`` (Apple's date index)."""
        return f"SELECT MIN(m.ROWID) FROM message m WHERE {self.col('m.date', '0')} >= ?"

    @property
    @_sql
    def newest_date(self) -> str:
        """The newest numeric, non-zero ``date`` (to tell seconds from nanoseconds)."""
        date = self.col("m.date", "0")
        return (f"SELECT {date} FROM message m WHERE typeof({date}) IN ('integer', 'real')"
                f" AND {date} != 0 ORDER BY m.ROWID DESC LIMIT 1")

    @property
    @_sql
    def edit_marks(self) -> str:
        """(ROWID, date_edited, date_retracted) of rows in a ROWID range with either set."""
        edited = self.col("m.date_edited", "0").replace("m.", "")
        retracted = self.col("m.date_retracted", "0").replace("m.", "")
        return (
            f"SELECT ROWID, {edited}, {retracted} FROM message WHERE ROWID > ? AND ROWID <= ?"
            f" AND ({edited} != 0 OR {retracted} != 0)"
        )

    @property
    @_sql
    def all_texts(self) -> str:
        text = self.col("m.text").replace("m.", "")
        body = self.col("m.attributedBody").replace("m.", "")
        return f"SELECT ROWID, {text}, {body} FROM message WHERE ROWID > ? ORDER BY ROWID LIMIT ?"


    # --- stats and scheduled -----------------------------------------------------------------

    @_sql
    def _quarter_hour(self) -> str:
        """The 15-minute bucket of a row's date since 2001 (seconds or nanoseconds), NULL for
        0/NULL/non-numeric dates. Every time zone's offset is a multiple of 15 minutes."""
        date = self.col("m.date", "NULL")
        return (f"CASE WHEN typeof({date}) NOT IN ('integer', 'real') OR {date} = 0 THEN NULL"
                f" WHEN abs({date}) > 100000000000 THEN CAST({date} / 900000000000 AS INTEGER)"
                f" ELSE CAST({date} / 900 AS INTEGER) END")

    @_sql
    def _in_scope(self, chat: bool) -> str:
        """The row belongs to a chat (to chat ``?1`` when ``chat``)."""
        where = "jj.message_id = m.ROWID" + (" AND jj.chat_id = ?1" if chat else "")
        return f"EXISTS (SELECT 1 FROM chat_message_join jj WHERE {where})"

    @_sql
    def stats_messages(self, *, chat: bool) -> str:
        """(is_from_me, sender handle, service, 15-minute bucket, count) of every logical-kind
        row (tapbacks left out), each message once."""
        return (
            f"SELECT {self.col('m.is_from_me', '0')}, COALESCE({self.col('h.id')}, ''),"
            f" COALESCE({self.col('m.service')}, ''), {self._quarter_hour()}, COUNT(*)"
            f" FROM message m{self._handle_join}"
            f" WHERE {self.not_a_reaction()} AND {self._in_scope(chat)}"
            " GROUP BY 1, 2, 3, 4"
        )

    @_sql
    def stats_chats(self, *, chat: bool) -> str:
        """(chat id, count): each message once per chat it is in."""
        return (
            "SELECT j.chat_id, COUNT(*) FROM chat_message_join j JOIN message m"
            f" ON m.ROWID = j.message_id WHERE {self.not_a_reaction()}"
            f"{' AND j.chat_id = ?1' if chat else ''} GROUP BY j.chat_id"
        )

    @_sql
    def stats_previews(self, *, chat: bool) -> str | None:
        """(chat id, ROWID) of every link-preview row (candidates for folding)."""
        if not self.has("m.balloon_bundle_id"):
            return None
        return (
            "SELECT j.chat_id, m.ROWID FROM chat_message_join j JOIN message m"
            f" ON m.ROWID = j.message_id WHERE m.balloon_bundle_id = '{URL_BALLOON}'"
            f" AND {self.not_a_reaction()}{' AND j.chat_id = ?1' if chat else ''}"
        )

    @_sql
    def stats_row_facts(self, count: int) -> str:
        """(ROWID, is_from_me, sender handle, service, 15-minute bucket) of ``count`` rows."""
        return (
            f"SELECT m.ROWID, {self.col('m.is_from_me', '0')}, COALESCE({self.col('h.id')}, ''),"
            f" COALESCE({self.col('m.service')}, ''), {self._quarter_hour()}"
            f" FROM message m{self._handle_join} WHERE m.ROWID IN ({_marks(count)})"
        )

    @_sql
    def stats_media(self, *, chat: bool) -> str | None:
        """(attachment ROWID, uti, mime type, bytes, chat id) of the attachments of every
        logical-kind row, once per chat."""
        if not (self.has("maj.message_id") and self.has("maj.attachment_id")
                and self.schema.has_table("attachment")):
            return None
        return (
            f"SELECT a.ROWID, COALESCE({self.col('a.uti')}, ''),"
            f" COALESCE({self.col('a.mime_type')}, ''), {self.col('a.total_bytes', '0')},"
            " j.chat_id FROM message_attachment_join maj"
            " JOIN attachment a ON a.ROWID = maj.attachment_id"
            " JOIN chat_message_join j ON j.message_id = maj.message_id"
            " JOIN message m ON m.ROWID = maj.message_id"
            f" WHERE {self.not_a_reaction()}{' AND j.chat_id = ?1' if chat else ''}"
        )

    @property
    @_sql
    def has_schedule(self) -> bool:
        return self.has("m.schedule_type") and self.has("m.schedule_state")

    @_sql
    def scheduled(self) -> str:
        """Send Later rows dated at or after ``?1``, soonest first, ``LIMIT ?2``: (ROWID, guid,
        text, body, service, date, schedule_type, schedule_state, lowest chat id)."""
        date = self.col("m.date", "0")
        columns = ", ".join(self.col(c) for c in ("m.guid", "m.text", "m.attributedBody",
                                                  "m.service"))
        return (
            f"SELECT m.ROWID, {columns}, {date}, m.schedule_type, m.schedule_state,"
            " (SELECT MIN(jj.chat_id) FROM chat_message_join jj WHERE jj.message_id = m.ROWID)"
            f" FROM message m WHERE {date} >= ?1"
            " AND (m.schedule_type != 0 OR m.schedule_state != 0)"
            f" ORDER BY {date}, m.ROWID LIMIT ?2"
        )


# What ``message.send_status`` reads of one message row, in this order.
SEND_STATUS_COLUMNS = ("guid", "service", "error", "is_sent", "is_delivered", "is_finished",
                       "date_delivered", "date_read", "is_delayed", "is_prepared",
                       "is_pending_satellite_send", "was_downgraded")


def send_status_sql(schema: Schema) -> str:
    """The newest message row whose guid is one of three bound values (the guid as given,
    upper- and lower-cased: the guid index serves each); NULL for a column it lacks."""
    columns = ", ".join(column if schema.has("message", column) else "NULL"
                        for column in SEND_STATUS_COLUMNS)
    return (f"SELECT {columns} FROM message WHERE guid IN (?, ?, ?)"
            " ORDER BY ROWID DESC LIMIT 1")
