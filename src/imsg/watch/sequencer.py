"""Deciding, row by row in ROWID order, what a watcher hands out: emit, skip, or hold back.

Messages writes a conversation in several commits, so a fresh row can be incomplete:

- **Not joined yet.** The ``message`` row is committed before its ``chat_message_join`` row. Such
  a row is held back (and every row after it waits, so order stays strict) until it is joined or
  ``hold_s`` has passed since it was first seen; then it is skipped and reported, never emitted
  with ``chat_id`` 0 (Swift 0.9 emitted those as direct-message payloads, #118).
- **Link preview still to come.** A text row containing a link is often followed, within a
  second, by a URL-balloon row for the same link. A live text row with a link is held until its
  preview row arrives (the preview is then folded into it as ``url_preview`` and the preview row
  is not emitted) or ``hold_s`` has passed (then it is emitted as it is).
- **Duplicate preview.** Messages sometimes writes the preview row again, half a minute later
  (#64): a preview row repeating a link this watcher emitted in the last 90 s from the same sender
  in the same chat is skipped. (So is a deliberate re-send of the same bare link within 90 s.)

All state is per watcher and bounded: it only concerns rows above the cursor plus the last few
hundred links emitted.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from imsg.chatdb.models import Message
from imsg.chatdb.reader import Filters

DUPLICATE_WINDOW_NS = 90 * 1_000_000_000
RECENT_LINKS = 256
_LINK = re.compile(r"(?i)\b(?:https?://|www\.)\S")

Row = tuple[Message, int | None]


@dataclass(frozen=True, slots=True)
class Emit:
    message: Message


@dataclass(frozen=True, slots=True)
class Skip:
    report: str | None = None


@dataclass(frozen=True, slots=True)
class Hold:
    until: float  # monotonic time at which the row stops being held


Decision = Emit | Skip | Hold


@dataclass(frozen=True, slots=True)
class _Link:
    rowid: int
    chat_id: int
    is_from_me: bool
    sender: str
    text: str  # casefolded
    date_ns: int | None


def _preview_link(message: Message) -> str:
    """The link a URL-balloon row stands for, casefolded, without a trailing slash."""
    assert message.url_preview is not None
    link = message.text.strip() or message.url_preview.url
    return link.casefold().rstrip("/")


def _within_window(earlier_ns: int | None, later_ns: int | None) -> bool:
    if earlier_ns is None or later_ns is None:
        return False
    return 0 <= later_ns - earlier_ns <= DUPLICATE_WINDOW_NS


def _is_preview(message: Message) -> bool:
    return message.url_preview is not None and not message.is_reaction


def _has_bare_link(message: Message) -> bool:
    return (message.url_preview is None and not message.is_reaction
            and message.group_event is None and _LINK.search(message.text) is not None)


class Sequencer:
    """Per-watcher decisions over pages of rows (``ChatDB.messages_after`` output).

    ``live_from`` is the newest ROWID when the watcher started: only rows above it are held for a
    link preview (a replayed backlog already contains its previews, or never will).
    """

    def __init__(self, *, filters: Filters, hold_s: float, live_from: int) -> None:
        self._filters = filters
        self._hold_s = hold_s
        self._live_from = live_from
        self._first_seen: dict[int, float] = {}
        self._folded: set[int] = set()
        self._links: deque[_Link] = deque(maxlen=RECENT_LINKS)

    def decide(self, page: Sequence[Row], index: int, now: float) -> Decision:
        message, date_ns = page[index]
        if message.id in self._folded:
            return Skip()
        if not self._filters.accepts(message, date_ns):
            return Skip()
        if message.chat_id == 0:
            until = self._first_seen.setdefault(message.id, now) + self._hold_s
            if now < until:
                return Hold(until)
            return Skip(f"message {message.id} still belongs to no chat after {self._hold_s:g}s;"
                        " skipped it (Messages never joined it to a conversation)")
        if _is_preview(message) and self._repeats_emitted_link(message, date_ns):
            return Skip()
        if _has_bare_link(message):
            preview = self._preview_after(page, index)
            if preview is not None:
                self._folded.add(preview.id)
                assert preview.url_preview is not None
                return self._emit(msgspec.structs.replace(message, url_preview=preview.url_preview),
                                  date_ns)
            if message.id > self._live_from:
                until = self._first_seen.setdefault(message.id, now) + self._hold_s
                if now < until:
                    return Hold(until)
        return self._emit(message, date_ns)

    def forget_through(self, cursor: int) -> None:
        """Drop state about rows at or below the cursor: they will never be looked at again."""
        if self._first_seen:
            self._first_seen = {k: v for k, v in self._first_seen.items() if k > cursor}
        if self._folded:
            self._folded = {rowid for rowid in self._folded if rowid > cursor}

    def _emit(self, message: Message, date_ns: int | None) -> Emit:
        if message.url_preview is not None or _has_bare_link(message):
            self._links.append(_Link(message.id, message.chat_id, message.is_from_me,
                                     message.sender, message.text.casefold(), date_ns))
        return Emit(message)

    def _repeats_emitted_link(self, preview: Message, date_ns: int | None) -> bool:
        link = _preview_link(preview)
        return any(
            seen.rowid < preview.id and seen.chat_id == preview.chat_id
            and seen.is_from_me == preview.is_from_me and seen.sender == preview.sender
            and link in seen.text and _within_window(seen.date_ns, date_ns)
            for seen in self._links
        )

    @staticmethod
    def _preview_after(page: Sequence[Row], index: int) -> Message | None:
        """The URL-balloon row later in ``page`` repeating a link of the text row at ``index``."""
        text_row, text_date = page[index]
        text = text_row.text.casefold()
        for candidate, date_ns in page[index + 1:]:
            if not _within_window(text_date, date_ns):
                if date_ns is not None and text_date is not None and date_ns > text_date:
                    return None
                continue
            if (_is_preview(candidate) and candidate.chat_id == text_row.chat_id
                    and candidate.is_from_me == text_row.is_from_me
                    and candidate.sender == text_row.sender
                    and _preview_link(candidate) in text):
                return candidate
        return None
