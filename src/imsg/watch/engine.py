"""The watch engine: a cursor over ``message.ROWID`` that another process keeps writing past."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from imsg.chatdb.models import Message
from imsg.chatdb.reader import ChatDB, Filters
from imsg.errors import (
    DatabaseBusy,
    DatabaseError,
    DatabaseNotFound,
    InvalidInput,
    PermissionDenied,
)
from imsg.watch.sequencer import Emit, Hold, Sequencer
from imsg.watch.updates import UpdateTracker
from imsg.watch.wakeup import Doorbell, FileWakeup, Identity, file_identity

# File events fire on the WAL write, a moment before the commit is visible to readers: every
# event-driven poll is followed by a look this long after it, and another, so the last commit of
# a burst is not left to the timer even when the writer was descheduled in between.
ECHOES_S = (0.002, 0.05)
# How soon to look again while the database is missing, locked or unreadable.
RETRY_S = 1.0
# How often a held row (not joined yet, or waiting for its link preview) is looked at again:
# the commit that resolves it can become visible after the event-driven polls have run.
HOLD_RETRY_S = 0.05
_NEVER = float("inf")


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One thing a watcher reports: a new message, or an edit/unsend of one already delivered."""

    kind: Literal["message", "edited", "retracted"]
    message: Message  # for "edited"/"retracted" the Message has ``event`` set to the kind


class _Session:
    """The database file as currently opened; replaced when the file is."""

    def __init__(self, path: str, identity: Identity) -> None:
        self.identity = identity
        self.db = ChatDB(path)

    def close(self) -> None:
        self.db.close()


class Watcher:
    """New messages from a chat.db that Messages keeps writing, as a blocking iterator.

    Delivery contract:

    - Every message row with ROWID above the start cursor is delivered **exactly once** by one
      Watcher, in **ascending ROWID order**. Rows rejected by ``chat_id``, ``filters``
      (participants, start/end) or ``reactions=False`` are passed over but still advance the
      cursor. Two kinds of row are never delivered on their own: a link-preview row folded into
      the text row it belongs to (as ``url_preview``), and a preview row repeating a link the same
      sender sent in the same chat in the last 90 s (Messages writes some twice).
    - The start cursor is ``since_rowid`` when given and not 0 (rows with ROWID > N are delivered,
      then live ones; negative replays everything), else the newest ROWID. It is fixed in the
      constructor: a row committed after the constructor returns is always delivered.
    - Across restarts delivery is **at-least-once**: persist ``message.id`` after handling each
      message and pass the last one back as ``since_rowid``.
    - A row Messages has not yet joined to a chat is held back, and every row after it waits
      (so a consumer persisting the last id can never skip it), until it is joined (then it is
      delivered with its real chat) or ``hold_s`` has passed since it was first seen: then it is
      skipped and reported through ``on_status``; while held it is looked at again every
      ``HOLD_RETRY_S``, events or not. ``chat_id`` 0 is never delivered. A new text
      row containing a link is likewise held up to ``hold_s`` for its link-preview row. Keep
      ``hold_s`` near its 2 s default: 0 skips every row seen before its join row is written.
    - With ``updates=True``, edits and unsends of delivered rows dated in the last 24 hours are
      delivered as ``WatchEvent("edited" | "retracted")``, once per change. They are not in ROWID
      order (they concern old rows) and do not move the cursor.
    - Timing: a poll ``debounce_s`` after the first file event of a burst (later events do not
      postpone it, so continuous writes are still delivered at least every ``debounce_s``), plus a
      poll every ``poll_interval_s`` even without events. Each poll drains every new row, in pages
      of ``page_size``. Idle, the watcher sleeps.

    Failure modes: the constructor raises ``DatabaseNotFound``, ``PermissionDenied``,
    ``NotAMessagesDatabase``, ``ChatNotFound`` (unknown ``chat_id``) or ``InvalidInput`` (a
    negative duration, a page size below 1). While running, a database that disappears, is
    replaced, stays locked or cannot be read is reported through ``on_status`` and retried every
    second; the watcher resumes from its cursor and nothing is lost. Losing permission to read
    raises ``PermissionDenied`` out of ``events()`` and closes the watcher.
    """

    def __init__(self, db_path: str, *, since_rowid: int | None = None,
                 chat_id: int | None = None, filters: Filters | None = None,
                 reactions: bool = False, updates: bool = False, debounce_s: float = 0.25,
                 poll_interval_s: float = 5.0, hold_s: float = 2.0, page_size: int = 500,
                 on_status: Callable[[str], None] | None = None) -> None:
        """Opens its own ChatDB connection and FIXES the start cursor here (so a row inserted
        after the constructor returns is always delivered). Raises imsg errors (ChatNotFound for a
        bad chat_id, PermissionDenied, DatabaseNotFound) synchronously. on_status receives human
        condition reports (DB missing/locked/replaced/recovered) — the CLI prints them to stderr.
        """
        _check_settings(debounce_s, poll_interval_s, hold_s, page_size)
        self._path = os.path.abspath(os.path.expanduser(db_path))
        self._chat_id = chat_id
        self._filters = filters or Filters()
        self._reactions = reactions
        self._debounce_s = debounce_s
        self._poll_interval_s = poll_interval_s
        self._page_size = page_size
        self._on_status = on_status or _ignore
        self._lock = threading.Lock()
        self._running = False
        self._closed = False
        self._trouble: str | None = None
        self._held_retry_at = _NEVER
        identity = file_identity(self._path)
        self._session: _Session | None = _Session(self._path, identity)
        try:
            db = self._session.db
            if chat_id is not None:
                db.chat_ref(chat_id)
            newest = db.max_rowid()
            self._cursor = since_rowid if since_rowid else newest
            self._sequencer = Sequencer(filters=self._filters, hold_s=hold_s, live_from=newest)
            self._updates = UpdateTracker() if updates else None
            if self._updates is not None:
                self._updates.prime(db, self._cursor)
            self._bell = Doorbell()
            self._wakeup = self._start_wakeup()
        except BaseException:
            self._session.close()
            raise

    @property
    def cursor(self) -> int:
        """ROWID of the last delivered (or skipped-by-filter) row."""
        return self._cursor

    def events(self) -> Iterator[WatchEvent]:
        """Blocking generator; yields forever until close() is called from any thread, then
        returns promptly (<0.5 s). Raises PermissionDenied if read access is lost (the watcher is
        closed then), RuntimeError if another thread is already iterating."""
        with self._lock:
            if self._running:
                raise RuntimeError("this Watcher is already being iterated")
            if self._closed:
                return
            self._running = True
        try:
            yield from self._loop()
        except PermissionDenied:
            self.close()
            raise
        finally:
            with self._lock:
                self._running = False
                closed = self._is_closed()
            if closed:
                self._drop_session()

    def _is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Thread-safe, idempotent; stops wake-up sources, closes the DB (right away when idle,
        else as soon as ``events()`` notices, which is promptly)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            running = self._running
        self._bell.close()
        if self._wakeup is not None:
            self._wakeup.close()
        if not running:
            self._drop_session()

    # --- the loop ----------------------------------------------------------------------------

    def _loop(self) -> Iterator[WatchEvent]:
        timer_at = 0.0  # poll at once: rows may have arrived since the constructor
        echoes: list[float] = []
        while not self._bell.is_closed():
            rung = self._bell.rung_at
            event_due = _NEVER if rung is None else rung + self._debounce_s
            due = min(timer_at, self._held_retry_at, event_due, echoes[0] if echoes else _NEVER)
            now = time.monotonic()
            if now < due:
                self._bell.sleep_until(due)
                continue
            # Only the debounced poll answers the bell: a timer, hold or echo poll in between
            # must not swallow a ring whose commit it may have been too early to see.
            by_event = event_due <= now
            if by_event:
                self._bell.clear()
            self._held_retry_at = _NEVER
            yield from self._poll()
            after = time.monotonic()
            timer_at = after + (RETRY_S if self._trouble else self._poll_interval_s)
            if by_event:
                echoes = [after + delay for delay in ECHOES_S]
            elif echoes and echoes[0] <= now:
                echoes.pop(0)

    def _poll(self) -> Iterator[WatchEvent]:
        if self._wakeup is not None:
            self._wakeup.check()
        try:
            session = self._current_session()
            yield from self._drain(session.db)
            if self._updates is not None:
                yield from self._changes(self._updates, session)
        except PermissionDenied:
            raise
        except DatabaseError as err:
            self._drop_session()
            self._report_trouble(err)
            return
        if self._trouble is not None:
            self._trouble = None
            self._status(f"{self._path} is readable again; resuming after ROWID {self._cursor}")

    def _drain(self, db: ChatDB) -> Iterator[WatchEvent]:
        """Deliver every row past the cursor, a page at a time, until one must be held."""
        while not self._bell.is_closed():
            newest = db.max_rowid()  # read first: the page query then sees every row up to it
            page = db.messages_after(self._cursor, limit=self._page_size, chat_id=self._chat_id,
                                     reactions=self._reactions)
            now = time.monotonic()
            for index, (message, _) in enumerate(page):
                if message.id <= self._cursor:
                    continue  # a row joined to two chats comes back once per chat
                decision = self._sequencer.decide(page, index, now)
                if isinstance(decision, Hold):
                    self._held_retry_at = min(decision.until, now + HOLD_RETRY_S)
                    self._sequencer.forget_through(self._cursor)
                    return
                self._cursor = message.id
                if isinstance(decision, Emit):
                    if self._updates is not None:
                        self._updates.delivered(decision.message)
                    yield WatchEvent("message", decision.message)
                    if self._bell.is_closed():
                        return
                elif decision.report:
                    self._status(decision.report)
            if len(page) < self._page_size:
                # Rows up to ``newest`` missing from the page belong to other chats or are
                # tapbacks: step over them so later polls do not scan them again.
                self._cursor = max(self._cursor, newest)
                self._sequencer.forget_through(self._cursor)
                return

    def _changes(self, tracker: UpdateTracker, session: _Session) -> Iterator[WatchEvent]:
        delivered: set[int] = set()
        for message, date_ns in tracker.changes(session.db, self._cursor):
            if message.id in delivered or (self._chat_id is not None
                                           and message.chat_id != self._chat_id):
                continue
            if (message.is_reaction and not self._reactions) or message.chat_id == 0 or \
                    not self._filters.accepts(message, date_ns):
                continue
            delivered.add(message.id)
            yield WatchEvent("retracted" if message.event == "retracted" else "edited", message)
            if self._bell.is_closed():
                return

    # --- the database file -------------------------------------------------------------------

    def _current_session(self) -> _Session:
        identity = file_identity(self._path)
        session = self._session
        if session is not None and identity != session.identity:
            self._drop_session()
            session = None
            if identity is not None:
                self._status(f"{self._path} was replaced by a new file; reopening it and resuming"
                             f" after ROWID {self._cursor}")
        if session is None:
            if identity is None:
                raise DatabaseNotFound(self._path)
            session = self._session = _Session(self._path, identity)
        return session

    def _drop_session(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def _report_trouble(self, err: DatabaseError) -> None:
        if isinstance(err, DatabaseNotFound):
            text = f"{self._path} is missing; waiting for it to come back"
        elif isinstance(err, DatabaseBusy):
            text = f"{self._path} is locked by another process; retrying"
        else:
            text = f"cannot read {self._path} ({err.message}); retrying"
        if text != self._trouble:
            self._trouble = text
            self._status(f"{text} (resuming after ROWID {self._cursor})")

    def _start_wakeup(self) -> FileWakeup | None:
        try:
            return FileWakeup(self._path, self._bell, self._status)
        except OSError as exc:
            self._status(f"file events unavailable ({exc.strerror or exc}); checking every"
                         f" {self._poll_interval_s:g}s")
            return None

    def _status(self, text: str) -> None:
        self._on_status(text)


def _ignore(_: str) -> None:
    pass


def _check_settings(debounce_s: float, poll_interval_s: float, hold_s: float,
                    page_size: int) -> None:
    if debounce_s < 0 or hold_s < 0:
        raise InvalidInput("debounce and hold times cannot be negative")
    if poll_interval_s <= 0:
        raise InvalidInput("the fallback poll interval must be positive")
    if page_size < 1:
        raise InvalidInput(f"page size must be at least 1 (got {page_size})")
