"""All SQL imsg runs against chat.db, built once per database from its probed schema.

Optional columns are read only when present (``Schema.has``) and replaced by literals when not,
so the same queries serve macOS 13 through 27. User values are always bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from imsg.chatdb.connection import Schema

URL_BALLOON = "com.apple.messages.URLBalloonProvider"
_NOT_A_REACTION = (
    "(m.associated_message_type IS NULL OR m.associated_message_type NOT BETWEEN 2000 AND 3007)"
)

# (name in the row, SQL expression, fallback literal when the column is absent)
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
)
MESSAGE_FIELDS = tuple(name for name, _, _ in _MESSAGE_COLUMNS)
FIELD = {name: i for i, name in enumerate(MESSAGE_FIELDS)}


def _column(schema: Schema, expression: str, fallback: str) -> str:
    table, _, column = expression.partition(".")
    tables = {"m": "message", "h": "handle"}
    if column == "ROWID" or schema.has(tables[table], column):
        if column == "payload_data":  # only link previews need their (large) payload
            return f"CASE WHEN m.balloon_bundle_id = '{URL_BALLOON}' THEN m.payload_data END"
        if column == "other_handle":
            return "(SELECT id FROM handle WHERE ROWID = m.other_handle AND m.other_handle != 0)"
        return expression
    return fallback


@dataclass(frozen=True, slots=True)
class Queries:
    """SQL text for one database's schema."""

    message_select: str
    not_a_reaction: str
    order_by_join_date: bool
    has_emoji_column: bool
    has_tapbacks: bool
    body_column: str
    edit_columns: tuple[str, str]

    @classmethod
    def for_schema(cls, schema: Schema) -> Queries:
        select = ", ".join(
            _column(schema, expr, fallback) for _, expr, fallback in _MESSAGE_COLUMNS
        )
        return cls(
            message_select=select,
            not_a_reaction=_NOT_A_REACTION
            if schema.has("message", "associated_message_type")
            else "1",
            order_by_join_date=schema.has("chat_message_join", "message_date"),
            has_emoji_column=schema.has("message", "associated_message_emoji"),
            has_tapbacks=schema.has("message", "associated_message_guid")
            and schema.has("message", "associated_message_type"),
            body_column="m.attributedBody" if schema.has("message", "attributedBody") else "NULL",
            edit_columns=(
                "date_edited" if schema.has("message", "date_edited") else "0",
                "date_retracted" if schema.has("message", "date_retracted") else "0",
            ),
        )

    # --- chats -------------------------------------------------------------------------------

    def last_activity(self, chat: str = "c") -> str:
        """Newest join date of a chat: one seek on Apple's (chat_id, message_date) index."""
        if self.order_by_join_date:
            return (
                "(SELECT MAX(j.message_date) FROM chat_message_join j"
                f" WHERE j.chat_id = {chat}.ROWID)"
            )
        return (
            "(SELECT MAX(m.date) FROM chat_message_join j JOIN message m ON m.ROWID = j.message_id"
            f" WHERE j.chat_id = {chat}.ROWID)"
        )

    CHAT_COLUMNS = (
        "c.ROWID, c.chat_identifier, c.guid, c.display_name, c.service_name, c.style,"
        " c.account_id, c.account_login, c.last_addressed_handle"
    )

    def recent_chats(self) -> str:
        # Rank (ROWID, last) pairs only, then read the 20 winners' columns: sorting whole chat
        # rows (with their property blobs) costs more than the index seeks themselves.
        return (
            f"SELECT {self.CHAT_COLUMNS}, t.last FROM (SELECT ROWID AS id,"
            f" {self.last_activity('chat')} AS last FROM chat"
            " ORDER BY last DESC, id DESC LIMIT ?) t JOIN chat c ON c.ROWID = t.id"
            " WHERE t.last IS NOT NULL ORDER BY t.last DESC, t.id DESC"
        )

    def chat_by_id(self) -> str:
        return f"SELECT {self.CHAT_COLUMNS}, {self.last_activity()} FROM chat c WHERE c.ROWID = ?"

    def chats_by_ids(self, count: int) -> str:
        marks = ",".join("?" * count)
        return f"SELECT {self.CHAT_COLUMNS}, NULL FROM chat c WHERE c.ROWID IN ({marks})"

    @staticmethod
    def participants(count: int) -> str:
        marks = ",".join("?" * count)
        return (
            "SELECT chj.chat_id, h.id FROM chat_handle_join chj JOIN handle h"
            f" ON h.ROWID = chj.handle_id WHERE chj.chat_id IN ({marks})"
        )

    # --- messages ----------------------------------------------------------------------------

    @property
    def any_message(self) -> str:
        """Message rows with their chat (NULL while not joined yet) and sender handle."""
        return (
            f"SELECT {self.message_select}, j.chat_id FROM message m"
            " LEFT JOIN chat_message_join j ON j.message_id = m.ROWID"
            " LEFT JOIN handle h ON h.ROWID = m.handle_id"
        )

    def history(self, *, start: bool, end: bool, participants: int) -> str:
        date = "j.message_date" if self.order_by_join_date else "m.date"
        where = ["j.chat_id = ?", self.not_a_reaction]
        if start:
            where.append(f"{date} >= ?")
        if end:
            where.append(f"{date} < ?")
        if participants:
            marks = ",".join("?" * participants)
            where.append(
                f"COALESCE(NULLIF(h.id, ''), m.destination_caller_id) COLLATE NOCASE IN ({marks})"
            )
        return (
            f"SELECT {self.message_select}, j.chat_id FROM chat_message_join j"
            " JOIN message m ON m.ROWID = j.message_id"
            " LEFT JOIN handle h ON h.ROWID = m.handle_id"
            f" WHERE {' AND '.join(where)} ORDER BY {date} DESC, j.message_id DESC LIMIT ?"
        )

    def after_rowid(self, *, chat_filter: bool, reactions: bool) -> str:
        """Rows past a cursor in ROWID order; chat_id NULL when not joined yet."""
        where = ["m.ROWID > ?"]
        if not reactions:
            where.append(self.not_a_reaction)
        if chat_filter:
            # Unjoined rows must still come back (as NULL chat) so the watcher can hold them.
            where.append("(j.chat_id = ? OR j.chat_id IS NULL)")
        return (
            f"{self.any_message}"
            f" WHERE {' AND '.join(where)} ORDER BY m.ROWID LIMIT ?"
        )

    def by_rowids(self, count: int) -> str:
        marks = ",".join("?" * count)
        return (
            f"{self.any_message}"
            f" WHERE m.ROWID IN ({marks}) ORDER BY m.ROWID"
        )

    def search(self, *, chat: bool, among: bool = False) -> str:
        """``among``: only the ROWIDs of a JSON array bound after the chat id."""
        where = [self.not_a_reaction, f"imsg_matches(m.text, {self.body_column})"]
        if chat:
            where.append("j.chat_id = ?")
        if among:
            where.append("m.ROWID IN (SELECT value FROM json_each(?))")
        return (
            f"{self.any_message}"
            f" WHERE {' AND '.join(where)} ORDER BY m.date DESC, m.ROWID DESC LIMIT ?"
        )

    @staticmethod
    def attachments(count: int) -> str:
        marks = ",".join("?" * count)
        return (
            "SELECT maj.message_id, a.filename, a.transfer_name, a.uti, a.mime_type,"
            " a.total_bytes, a.is_sticker, a.user_info FROM message_attachment_join maj"
            f" JOIN attachment a ON a.ROWID = maj.attachment_id WHERE maj.message_id IN ({marks})"
            " ORDER BY maj.message_id, a.ROWID"
        )

    def reactions(self, count: int) -> str:
        marks = ",".join("?" * count)
        emoji = "r.associated_message_emoji" if self.has_emoji_column else "NULL"
        return (
            "SELECT r.ROWID, r.associated_message_guid, r.associated_message_type,"
            f" {emoji}, r.text, r.attributedBody, h.id, r.destination_caller_id,"
            " r.is_from_me, r.date FROM message r LEFT JOIN handle h ON h.ROWID = r.handle_id"
            f" WHERE r.associated_message_guid IN ({marks})"
            " AND r.associated_message_type BETWEEN 2000 AND 3007 ORDER BY r.date, r.ROWID"
        )

    @staticmethod
    def parents(count: int) -> str:
        marks = ",".join("?" * count)
        return (
            "SELECT m.guid, m.text, m.attributedBody, h.id, m.destination_caller_id"
            " FROM message m LEFT JOIN handle h ON h.ROWID = m.handle_id"
            f" WHERE m.guid IN ({marks})"
        )

    MAX_ROWID = "SELECT COALESCE(MAX(ROWID), 0) FROM message"
    OLDEST_ROWID_SINCE = "SELECT MIN(ROWID) FROM message WHERE date >= ?"  # Apple's date index
    CHAT_BY_GUID = "SELECT ROWID FROM chat WHERE guid = ?"
    # An identifier may name several chats (a number's iMessage and SMS chats): newest wins.
    CHAT_BY_IDENTIFIER = (
        "SELECT c.ROWID FROM chat c WHERE c.chat_identifier = ? ORDER BY"
        " (SELECT MAX(j.message_id) FROM chat_message_join j WHERE j.chat_id = c.ROWID) DESC,"
        " c.ROWID DESC LIMIT 1"
    )
    HANDLE_SERVICES = (
        "SELECT service FROM handle WHERE id = ? COLLATE NOCASE UNION"
        " SELECT service_name FROM chat WHERE chat_identifier = ? COLLATE NOCASE AND style = 45"
    )

    @property
    def edit_marks(self) -> str:
        """(ROWID, date_edited, date_retracted) of rows in a ROWID range with either set."""
        edited, retracted = self.edit_columns
        return (
            f"SELECT ROWID, {edited}, {retracted} FROM message WHERE ROWID > ? AND ROWID <= ?"
            f" AND ({edited} != 0 OR {retracted} != 0)"
        )

    def search_texts(self, count: int | None = None) -> str:
        """ROWID, guid, date, date_edited, date_retracted, text, body, is a tapback, is audio:
        rows with ROWID > ? in order, LIMIT ?; or, with ``count``, those ROWIDs."""
        edited, retracted = self.edit_columns
        audio = "m.is_audio_message" if "m.is_audio_message" in self.message_select else "0"
        where = (
            "m.ROWID > ? ORDER BY m.ROWID LIMIT ?"
            if count is None
            else f"m.ROWID IN ({','.join('?' * count)}) ORDER BY m.ROWID"
        )
        return (
            f"SELECT m.ROWID, m.guid, m.date, {edited}, {retracted}, m.text, {self.body_column},"
            f" NOT {self.not_a_reaction}, {audio} FROM message m WHERE {where}"
        )

    @property
    def all_texts(self) -> str:
        body = self.body_column.removeprefix("m.")
        return f"SELECT ROWID, text, {body} FROM message WHERE ROWID > ? ORDER BY ROWID LIMIT ?"


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
