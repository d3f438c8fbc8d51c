"""What each message row becomes, decided the same way for live watch and for paging.

Rows are decided one at a time in ROWID order. The rules read only the database (never what a
particular watcher happened to see), so a live watcher, a watcher replaying from any cursor and
``page_after`` with any page size agree on every row:

- **Not joined yet** (``chat_id`` 0): ``Unjoined``; the caller decides how long to wait (see
  ``engine`` and ``paging``). A row in Recently Deleted (Messages moved its join to
  ``chat_recoverable_message_join``) is not a message to deliver: ``Pass``.
- **Filtered out** (participants, dates): ``Pass``.
- **Link previews.** A URL-balloon row *belongs to* the closest earlier row of its chat that is
  neither a tapback nor a preview when ``imsg.chatdb.previews.belongs_to`` says so (the rule
  history and search fold by). That text row is delivered carrying the preview
  (``url_preview``; the lowest ROWID when several belong to it), and a preview that belongs to a
  text row is never delivered on its own, whether the text row was delivered with it, earlier
  without it, or before the page. A preview belonging to no text row is delivered as itself,
  unless it repeats the link of an earlier preview from the same sender in the same chat within
  90 s (Messages sometimes writes one twice): ``Pass``.
- **A link whose preview is not written yet**: a plain row with a link, followed in its chat by
  nothing but (non-matching) previews so far: ``AwaitPreview``; the caller may hold it briefly.
- Everything else: ``Emit``.

Work per row is a few comparisons; only rows with links and unfolded previews look at their
chat's neighbouring rows (an index walk of at most ``NEIGHBOURS`` rows).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from imsg.chatdb.models import Message
from imsg.chatdb.previews import belongs_to, is_url_preview, preview_link, with_preview
from imsg.chatdb.reader import ChatDB, Filters
from imsg.watch.rows import Item, Row, Unreadable

DUPLICATE_WINDOW_NS = 90 * 1_000_000_000
NEIGHBOURS = 16
_LINK = re.compile(r"(?i)\b(?:https?://|www\.)\S")


# Decisions are made for every row a watcher or a page reads: plain (not frozen) slotted
# classes, and the two without data shared, keep that cheap.
@dataclass(slots=True)
class Emit:
    message: Message


@dataclass(slots=True)
class Pass:
    """Not delivered, and nothing to wait for."""


@dataclass(slots=True)
class Unjoined:
    """Not joined to a chat yet."""


@dataclass(slots=True)
class AwaitPreview:
    """A text row whose link preview may still be written; ``message`` is it without one."""

    message: Message


Decision = Emit | Pass | Unjoined | AwaitPreview
PASS = Pass()
UNJOINED = Unjoined()


def is_recent(date_ns: int | None, window_s: float, now_ns: int) -> bool:
    """Whether a row is dated within ``window_s`` of ``now_ns`` (either side: clocks differ)."""
    return date_ns is not None and abs(now_ns - date_ns) < window_s * 1_000_000_000


def _is_plain(message: Message) -> bool:
    return (not message.balloon_bundle_id and not message.is_reaction
            and message.group_event is None and message.poll is None)


def _waits_for_preview(message: Message) -> bool:
    text = message.text
    # A cheap necessary condition first: this runs for every row read.
    if "://" not in text and "www." not in text.lower():
        return False
    return _is_plain(message) and _LINK.search(text) is not None


class _Open:
    """The run of rows after a text row has not ended yet: its preview may still come."""


_OPEN = _Open()


class Sequencer:
    """Decisions over ROWID-ordered batches (``rows.read_after`` output), one per row.

    The only state is the set of preview rows already folded into a text row above the cursor
    (a shortcut: the database would give the same answer), dropped by ``forget_through``.
    """

    def __init__(self, filters: Filters | None = None) -> None:
        self._filters = filters or Filters()
        self._filtering = bool(self._filters.participants or self._filters.start_ns is not None
                               or self._filters.end_ns is not None)
        self._folded: set[int] = set()

    def decide(self, db: ChatDB, batch: Sequence[Item], index: int, *,
               complete: bool) -> Decision:
        """The decision for ``batch[index]`` (a readable row). ``complete`` says the batch
        reaches the newest row there is (no rows after it were left unread)."""
        message, date_ns = _row(batch[index])
        if message.chat_id == 0:
            deleted = db.join_states([message.id]).get(message.id) == "deleted"
            return PASS if deleted else UNJOINED
        if message.id in self._folded or (
                self._filtering and not self._filters.accepts(message, date_ns)):
            return PASS
        if message.balloon_bundle_id and is_url_preview(message):
            if self._belongs_or_repeats(db, message, date_ns):
                return PASS
            return Emit(message)
        if _waits_for_preview(message):
            found = self._own_preview(db, batch, index, complete)
            if isinstance(found, Message):
                self._folded.add(found.id)
                return Emit(with_preview(message, found))
            if found is _OPEN:
                return AwaitPreview(message)
        return Emit(message)

    def forget_through(self, rowid: int) -> None:
        """Drop what concerns rows at or below ``rowid``: they will not be decided again."""
        if self._folded:
            self._folded = {k for k in self._folded if k > rowid}

    def forget_all(self) -> None:
        self._folded.clear()

    def _own_preview(self, db: ChatDB, batch: Sequence[Item], index: int,
                     complete: bool) -> Message | _Open | None:
        """The first preview row belonging to the text row at ``index``; ``_OPEN`` when none
        does yet but the rows after it in its chat are still only previews (or none)."""
        text, text_date = _row(batch[index])
        after = [item for item in batch[index + 1:] if not isinstance(item, Unreadable)
                 and item[0].chat_id == text.chat_id and not item[0].is_reaction]
        found = _first_belonging(text, text_date, after)
        if found is not _OPEN or complete:
            return found
        last = next(item for item in reversed(batch) if not isinstance(item, Unreadable))
        more = db.chat_rows_near(text.chat_id, max(last[0].id, text.id), after=True,
                                 limit=NEIGHBOURS)
        found = _first_belonging(text, text_date, more)
        return None if found is _OPEN and len(more) == NEIGHBOURS else found

    def _belongs_or_repeats(self, db: ChatDB, preview: Message, date_ns: int | None) -> bool:
        earlier = db.chat_rows_near(preview.chat_id, preview.id, after=False, limit=NEIGHBOURS)
        candidate = next((row for row in earlier if not is_url_preview(row[0])), None)
        if candidate is not None and belongs_to(preview, date_ns, *candidate):
            return True
        link = preview_link(preview)
        return link is not None and any(
            is_url_preview(other) and preview_link(other) == link
            and other.sender == preview.sender and other.is_from_me == preview.is_from_me
            and other_date is not None and date_ns is not None
            and 0 <= date_ns - other_date <= DUPLICATE_WINDOW_NS
            for other, other_date in earlier
        )


def _first_belonging(text: Message, text_date: int | None,
                     rows: Sequence[Row]) -> Message | _Open | None:
    for candidate, date_ns in rows:
        if not is_url_preview(candidate):
            return None  # a plain row ends the run: later previews have it as their candidate
        if belongs_to(candidate, date_ns, text, text_date):
            return candidate
    return _OPEN


def _row(item: Item) -> Row:
    assert not isinstance(item, Unreadable)
    return item
