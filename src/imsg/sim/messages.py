"""Write rows into a chat.db the way Messages does.

Every message gets ``text`` NULL (unless ``text_column=True``) and a typedstream
``attributedBody``; the ``message`` row is written before its ``chat_message_join`` row (with
``message_date`` copied from ``message.date``, as Messages does); handles exist per service;
groups have ``room_name``; tapbacks, edits, unsends, attachments, link previews and group events
are rows or in-place updates shaped like the real ones. Tests and ``imsg sim`` use this; no test
ever needs a real Mac's database.
"""

from __future__ import annotations

import base64
import json
import os
import plistlib
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imsg.chatdb.dates import unix_ns_to_apple
from imsg.chatdb.decode import row_text
from imsg.chatdb.typedstream import encode_attributed_string
from imsg.sim.schema import create_database, open_writable

ME = "me@icloud.com"
PART = "__kIMMessagePartAttributeName"
FILE_TRANSFER = "__kIMFileTransferGUIDAttributeName"
URL_BALLOON = "com.apple.messages.URLBalloonProvider"
POLLS_BALLOON = (
    "com.apple.messages.MSMessageExtensionBalloonPlugin:0000000000:com.apple.messages.Polls"
)
POLL_VOTE_TYPE = 4000
POLL_UPDATE_TYPE = 2
OBJECT_REPLACEMENT = "\ufffc"

TAPBACKS = {"love": 0, "like": 1, "dislike": 2, "laugh": 3, "emphasis": 4, "question": 5}
_TAPBACK_VERBS = {
    "love": "Loved",
    "like": "Liked",
    "dislike": "Disliked",
    "laugh": "Laughed at",
    "emphasis": "Emphasized",
    "question": "Questioned",
}


@dataclass(frozen=True, slots=True)
class SimAttachment:
    """A file to attach. ``create_file`` writes ``size`` bytes next to the database."""

    name: str
    mime_type: str = "image/jpeg"
    uti: str = "public.jpeg"
    size: int = 1024
    create_file: bool = True
    is_sticker: bool = False
    transcription: str | None = None


def _guid() -> str:
    return str(uuid.uuid4()).upper()


class SimDB:
    """A writable chat.db with Messages' write habits. Not thread-safe; one per process/thread."""

    def __init__(self, path: str, conn: sqlite3.Connection | None = None) -> None:
        self.path = os.path.abspath(path)
        self.conn = conn or open_writable(self.path)
        columns = {r[1] for r in self.conn.execute("PRAGMA table_info(message)")}
        self.is_tahoe = "associated_message_emoji" in columns
        self._last_date = 0

    @classmethod
    def create(cls, path: str, schema: str = "ventura") -> SimDB:
        return cls(path, create_database(path, schema))

    def close(self) -> None:
        self.conn.close()

    # --- clock -------------------------------------------------------------------------------

    def apple_now(self, at_unix: float | None = None) -> int:
        """Apple nanoseconds for ``at_unix`` (default now), strictly increasing when defaulted."""
        if at_unix is not None:
            return unix_ns_to_apple(round(at_unix * 1e9))
        value = max(unix_ns_to_apple(time.time_ns()), self._last_date + 1)
        self._last_date = value
        return value

    # --- handles and chats -------------------------------------------------------------------

    def handle(self, address: str, service: str = "iMessage") -> int:
        row = self.conn.execute(
            "SELECT ROWID FROM handle WHERE id = ? AND service = ?", (address, service)
        ).fetchone()
        if row:
            return int(row[0])
        cur = self.conn.execute(
            "INSERT INTO handle (id, country, service, uncanonicalized_id, person_centric_id)"
            " VALUES (?, 'us', ?, NULL, NULL)",
            (address, service),
        )
        return int(cur.lastrowid or 0)

    def chat(
        self,
        participants: Sequence[str],
        *,
        service: str = "iMessage",
        name: str = "",
        group: bool | None = None,
    ) -> int:
        """Find or create a chat. One participant and ``group`` unset means a direct chat."""
        is_group = len(participants) > 1 if group is None else group
        if is_group:
            identifier = f"chat{uuid.uuid4().int % 10**18:018d}"
        else:
            identifier = participants[0]
            existing = self.conn.execute(
                "SELECT ROWID FROM chat WHERE chat_identifier = ? AND service_name = ?",
                (identifier, service),
            ).fetchone()
            if existing:
                return int(existing[0])
        prefix = "any" if self.is_tahoe else service
        guid = f"{prefix};{'+' if is_group else '-'};{identifier}"
        cur = self.conn.execute(
            "INSERT INTO chat (guid, style, state, account_id, chat_identifier, service_name,"
            " room_name, account_login, last_addressed_handle, display_name, group_id,"
            " successful_query) VALUES (?, ?, 3, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
            (
                guid,
                43 if is_group else 45,
                _guid(),
                identifier,
                service,
                identifier if is_group else None,
                f"E:{ME}",
                ME,
                name,
                _guid(),
            ),
        )
        chat_id = int(cur.lastrowid or 0)
        for address in participants:
            self.conn.execute(
                "INSERT OR IGNORE INTO chat_handle_join (chat_id, handle_id) VALUES (?, ?)",
                (chat_id, self.handle(address, service)),
            )
        if self.is_tahoe:
            self.conn.execute(
                "INSERT INTO chat_service (service, chat) VALUES (?, ?)", (service, chat_id)
            )
        return chat_id

    def chat_info(self, chat_id: int) -> tuple[str, str, bool]:
        """(service, identifier, is_group) of a chat."""
        row = self.conn.execute(
            "SELECT service_name, chat_identifier, style FROM chat WHERE ROWID = ?", (chat_id,)
        ).fetchone()
        if row is None:
            raise KeyError(f"no chat {chat_id}")
        return row[0], row[1], row[2] == 43

    # --- messages ----------------------------------------------------------------------------

    def message(
        self,
        chat_id: int,
        text: str | None,
        *,
        sender: str | None = None,
        from_me: bool = False,
        at: float | None = None,
        attachments: Sequence[SimAttachment] = (),
        thread_originator: int | None = None,
        text_column: bool = False,
        join: bool = True,
        body: bytes | None = None,
        **columns: object,
    ) -> int:
        """Write one message row (then its join row unless ``join=False``); return its ROWID.

        ``sender`` is the incoming sender (defaults to the direct chat's other party). For
        outgoing rows in a direct chat ``handle_id`` is the recipient, in a group 0, as Messages
        writes them. ``body`` overrides the encoded attributedBody; ``columns`` sets any other
        ``message`` column verbatim.
        """
        service, identifier, is_group = self.chat_info(chat_id)
        date = self.apple_now(at)
        if from_me:
            handle_id = 0 if is_group else self.handle(identifier, service)
        else:
            handle_id = self.handle(sender or identifier, service)
        guids = [_guid() for _ in attachments]
        full_text = text
        if body is None and (text is not None or attachments):
            body = self._body(text or "", guids)
            full_text = (text or "") + OBJECT_REPLACEMENT * len(attachments)
        values: dict[str, object] = {
            "guid": _guid(),
            "text": full_text if text_column else None,
            "attributedBody": body,
            "handle_id": handle_id,
            "service": service,
            "account": f"E:{ME}",
            "account_guid": _guid(),
            "date": date,
            "date_read": date if not from_me else 0,
            "date_delivered": date if from_me else 0,
            "is_delivered": 1,
            "is_finished": 1,
            "is_from_me": int(from_me),
            "is_sent": int(from_me),
            "is_read": int(not from_me),
            "destination_caller_id": ME,
            "part_count": max(1, len(attachments) + (1 if text else 0)),
            "reply_to_guid": self._last_guid(chat_id),
        }
        if thread_originator is not None:
            values["thread_originator_guid"] = self.guid_of(thread_originator)
            values["thread_originator_part"] = "0:0:1"
        values.update(columns)
        names = ", ".join(values)
        marks = ", ".join("?" * len(values))
        cur = self.conn.execute(
            f"INSERT INTO message ({names}) VALUES ({marks})", tuple(values.values())
        )
        rowid = int(cur.lastrowid or 0)
        for guid, attachment in zip(guids, attachments, strict=True):
            self._attachment(rowid, guid, attachment, from_me, date)
        if join:
            self.join(chat_id, rowid)
        return rowid

    def join(self, chat_id: int, message_id: int) -> None:
        """Write the ``chat_message_join`` row (Messages does this after the message row)."""
        self.conn.execute(
            "INSERT INTO chat_message_join (chat_id, message_id, message_date)"
            " SELECT ?, ROWID, date FROM message WHERE ROWID = ?",
            (chat_id, message_id),
        )

    def receive(self, chat_id: int, sender: str | None, text: str, **kw: object) -> int:
        return self.message(chat_id, text, sender=sender, **kw)  # type: ignore[arg-type]

    def send(self, chat_id: int, text: str, **kw: object) -> int:
        return self.message(chat_id, text, from_me=True, **kw)  # type: ignore[arg-type]

    def react(
        self,
        chat_id: int,
        target: int,
        kind: str,
        *,
        sender: str | None = None,
        from_me: bool = False,
        remove: bool = False,
        emoji: str | None = None,
        part: int = 0,
        at: float | None = None,
    ) -> int:
        """A tapback row on message ``target``: ``kind`` a TAPBACKS name or ``custom`` (emoji)."""
        code = 6 if kind == "custom" else TAPBACKS[kind]
        quoted = self.text_of(target)
        if kind == "custom":
            verb, preposition = ("Removed", "from") if remove else ("Reacted", "to")
            text = f"{verb} {emoji} {preposition} “{quoted}”"
        elif remove:
            text = f"Removed a {kind} from “{quoted}”"
        else:
            text = f"{_TAPBACK_VERBS[kind]} “{quoted}”"
        extra: dict[str, Any] = {}
        if self.is_tahoe and kind == "custom":
            extra["associated_message_emoji"] = emoji
        return self.message(
            chat_id,
            text,
            sender=sender,
            from_me=from_me,
            at=at,
            associated_message_guid=f"p:{part}/{self.guid_of(target)}",
            associated_message_type=(3000 if remove else 2000) + code,
            associated_message_range_location=0,
            associated_message_range_length=len(quoted),
            **extra,
        )

    def edit(self, rowid: int, new_text: str, at: float | None = None) -> None:
        """Edit in place as Messages does: new body, ``date_edited``, history in summary info."""
        date = self.apple_now(at)
        old_body, summary = self.conn.execute(
            "SELECT attributedBody, message_summary_info FROM message WHERE ROWID = ?", (rowid,)
        ).fetchone()
        info = plistlib.loads(summary) if summary else {}
        history = info.setdefault("ec", {}).setdefault("0", [])
        if not history:
            history.append({"d": self._seconds(rowid, "date"), "t": old_body or b""})
        new_body = encode_attributed_string(new_text)
        history.append({"d": date / 1e9, "t": new_body})
        info["ep"] = [0]
        info.setdefault("otr", {})["0"] = {"lo": 0, "le": len(new_text)}
        self.conn.execute(
            "UPDATE message SET attributedBody = ?, text = CASE WHEN text IS NULL THEN NULL ELSE ?"
            " END, date_edited = ?, message_summary_info = ? WHERE ROWID = ?",
            (new_body, new_text, date, plistlib.dumps(info, fmt=plistlib.FMT_BINARY), rowid),
        )

    def unsend(self, rowid: int, at: float | None = None) -> None:
        """Undo Send: body cleared, row kept, ``rp`` lists the part. macOS 26 sets
        ``date_edited`` and leaves ``date_retracted`` 0; macOS 13-15 set ``date_retracted``."""
        date = self.apple_now(at)
        (summary,) = self.conn.execute(
            "SELECT message_summary_info FROM message WHERE ROWID = ?", (rowid,)
        ).fetchone()
        info = plistlib.loads(summary) if summary else {}
        info["rp"] = [0]
        column = "date_edited" if self.is_tahoe else "date_retracted"
        self.conn.execute(
            f"UPDATE message SET attributedBody = NULL, text = NULL, {column} = ?,"
            " message_summary_info = ? WHERE ROWID = ?",
            (date, plistlib.dumps(info, fmt=plistlib.FMT_BINARY), rowid),
        )

    def url_preview(
        self,
        chat_id: int,
        url: str,
        *,
        sender: str | None = None,
        from_me: bool = False,
        title: str = "",
        at: float | None = None,
    ) -> int:
        """A link-preview row: the URL as text plus an NSKeyedArchiver ``payload_data``."""
        payload = {
            "$version": 100000,
            "$archiver": "NSKeyedArchiver",
            "$top": {"root": plistlib.UID(1)},
            "$objects": ["$null", {"URL": url, "title": title}],
        }
        return self.message(
            chat_id,
            url,
            sender=sender,
            from_me=from_me,
            at=at,
            balloon_bundle_id=URL_BALLOON,
            payload_data=plistlib.dumps(payload, fmt=plistlib.FMT_BINARY),
        )

    def poll(
        self,
        chat_id: int,
        question: str,
        options: Sequence[str],
        *,
        sender: str | None = None,
        from_me: bool = False,
        at: float | None = None,
        titled: bool = True,
    ) -> tuple[int, list[str]]:
        """A native poll (macOS 26 Polls balloon): its options travel as base64 JSON in the
        URL of the balloon's keyed-archive payload. ``titled=False`` leaves the poll's own title
        empty, as Messages does when the question is sent as a caption row after it. Returns
        the ROWID and the option identifiers."""
        creator = ME if from_me else sender or self.chat_info(chat_id)[1]
        ids = [_guid() for _ in options]
        item = {
            "title": question if titled else "",
            "creatorHandle": creator,
            "orderedPollOptions": [
                {"optionIdentifier": oid, "text": text, "creatorHandle": creator}
                for oid, text in zip(ids, options, strict=True)
            ],
        }
        rowid = self.message(chat_id, None, sender=sender, from_me=from_me, at=at,
                             balloon_bundle_id=POLLS_BALLOON, payload_data=_poll_payload(item))
        return rowid, ids

    def poll_vote(
        self,
        chat_id: int,
        poll: int,
        option_ids: Sequence[str],
        *,
        sender: str | None = None,
        from_me: bool = False,
        at: float | None = None,
    ) -> int:
        """A vote row: ``associated_message_type`` 4000 pointing at the poll, the voter's
        current selection (``option_ids``, possibly none) in the payload."""
        voter = ME if from_me else sender or self.chat_info(chat_id)[1]
        item = {"votes": [{"voteOptionIdentifier": oid, "participantHandle": voter}
                          for oid in option_ids]}
        return self.message(chat_id, None, sender=sender, from_me=from_me, at=at,
                            balloon_bundle_id=POLLS_BALLOON, payload_data=_poll_payload(item),
                            associated_message_type=POLL_VOTE_TYPE,
                            associated_message_guid=self.guid_of(poll))

    def poll_add_choice(
        self,
        chat_id: int,
        poll: int,
        text: str,
        *,
        sender: str | None = None,
        from_me: bool = False,
        at: float | None = None,
    ) -> tuple[int, str]:
        """A choice added to a poll after it was sent ("Add Choice"): an update row
        (``associated_message_type`` 2) pointing at the poll. Returns its ROWID and the new
        option's identifier."""
        creator = ME if from_me else sender or self.chat_info(chat_id)[1]
        option_id = _guid()
        item = {"orderedPollOptions": [
            {"optionIdentifier": option_id, "text": text, "creatorHandle": creator}]}
        rowid = self.message(chat_id, None, sender=sender, from_me=from_me, at=at,
                             balloon_bundle_id=POLLS_BALLOON, payload_data=_poll_payload(item),
                             associated_message_type=POLL_UPDATE_TYPE,
                             associated_message_guid=self.guid_of(poll))
        return rowid, option_id

    def group_event(
        self,
        chat_id: int,
        kind: str,
        *,
        actor: str | None = None,
        other: str | None = None,
        title: str | None = None,
        at: float | None = None,
    ) -> int:
        """``added``/``removed`` (other), ``renamed`` (title), ``left`` or ``photo``."""
        service = self.chat_info(chat_id)[0]
        item_type, action = {
            "added": (1, 0),
            "removed": (1, 1),
            "renamed": (2, 0),
            "left": (3, 0),
            "photo": (3, 1),
        }[kind]
        return self.message(
            chat_id,
            None,
            sender=actor,
            from_me=actor is None,
            at=at,
            item_type=item_type,
            group_action_type=action,
            group_title=title,
            other_handle=self.handle(other, service) if other else 0,
        )

    # --- helpers -----------------------------------------------------------------------------

    def guid_of(self, rowid: int) -> str:
        return str(
            self.conn.execute("SELECT guid FROM message WHERE ROWID = ?", (rowid,)).fetchone()[0]
        )

    def text_of(self, rowid: int) -> str:
        text, body = self.conn.execute(
            "SELECT text, attributedBody FROM message WHERE ROWID = ?", (rowid,)
        ).fetchone()
        return row_text(text, body)

    def _seconds(self, rowid: int, column: str) -> float:
        (value,) = self.conn.execute(
            f"SELECT {column} FROM message WHERE ROWID = ?", (rowid,)
        ).fetchone()
        return float(value or 0) / 1e9

    def _last_guid(self, chat_id: int) -> str | None:
        row = self.conn.execute(
            "SELECT m.guid FROM chat_message_join j JOIN message m ON m.ROWID = j.message_id"
            " WHERE j.chat_id = ? ORDER BY j.message_date DESC, j.message_id DESC LIMIT 1",
            (chat_id,),
        ).fetchone()
        return row[0] if row else None

    def _body(self, text: str, attachment_guids: Sequence[str]) -> bytes:
        runs: list[tuple[int, dict[str, object]]] = []
        part = 0
        for guid in attachment_guids:
            runs.append((1, {PART: part, FILE_TRANSFER: guid}))
            part += 1
        if text:
            runs.append((len(text.encode("utf-16-le")) // 2, {PART: part}))
        if not runs:
            return encode_attributed_string("")
        full = OBJECT_REPLACEMENT * len(attachment_guids) + text
        return encode_attributed_string(full, runs)

    def _attachment(
        self, rowid: int, guid: str, attachment: SimAttachment, from_me: bool, date: int
    ) -> None:
        folder = os.path.join(os.path.dirname(self.path), "Attachments", guid[:2], guid)
        path = os.path.join(folder, attachment.name)
        if attachment.create_file:
            os.makedirs(folder, exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(b"\0" * attachment.size)
        home = os.path.expanduser("~")
        stored = "~" + path[len(home) :] if path.startswith(home + os.sep) else path
        user_info = None
        if attachment.transcription is not None:
            user_info = plistlib.dumps(
                {"audio-transcription": attachment.transcription}, fmt=plistlib.FMT_BINARY
            )
        cur = self.conn.execute(
            "INSERT INTO attachment (guid, created_date, start_date, filename, uti, mime_type,"
            " transfer_state, is_outgoing, user_info, transfer_name, total_bytes, is_sticker,"
            " original_guid) VALUES (?, ?, ?, ?, ?, ?, 5, ?, ?, ?, ?, ?, ?)",
            (
                guid,
                date // 1_000_000_000,
                date // 1_000_000_000,
                stored,
                attachment.uti,
                attachment.mime_type,
                int(from_me),
                user_info,
                attachment.name,
                attachment.size,
                int(attachment.is_sticker),
                guid,
            ),
        )
        self.conn.execute(
            "INSERT INTO message_attachment_join (message_id, attachment_id) VALUES (?, ?)",
            (rowid, cur.lastrowid),
        )


def _poll_payload(item: dict[str, Any]) -> bytes:
    """A balloon payload as Messages archives it: an NSKeyedArchiver plist of the template
    layout, whose URL is a ``data:`` URL carrying the poll JSON in base64."""
    encoded = base64.b64encode(json.dumps({"item": item}).encode("utf-8")).decode("ascii")
    archive = {
        "$version": 100000,
        "$archiver": "NSKeyedArchiver",
        "$top": {"root": plistlib.UID(1)},
        "$objects": [
            "$null",
            {"$class": plistlib.UID(4), "URL": plistlib.UID(2), "layoutClass": plistlib.UID(5)},
            {"$class": plistlib.UID(3), "NS.base": plistlib.UID(0),
             "NS.relative": plistlib.UID(6)},
            {"$classname": "NSURL", "$classes": ["NSURL", "NSObject"]},
            {"$classname": "NSDictionary", "$classes": ["NSDictionary", "NSObject"]},
            "MSMessageTemplateLayout",
            f"data:,{encoded}",
        ],
    }
    return plistlib.dumps(archive, fmt=plistlib.FMT_BINARY)
