"""The watch engine: a cursor over ``message.ROWID`` that another process keeps writing past."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from imsg.chatdb.models import Message
from imsg.chatdb.reader import ChatDB, Filters
from imsg.errors import (
    DatabaseBusy,
    DatabaseError,
    DatabaseNotFound,
    InvalidInput,
    PermissionDenied,
    SchemaMismatch,
)
from imsg.watch.clock import AwakeClock
from imsg.watch.events import SkippedRow, SkipReason, WatchEvent
from imsg.watch.rows import Item, Unreadable, read_after, read_rowids
from imsg.watch.sequencer import AwaitPreview, Emit, Sequencer, Unjoined, is_recent
from imsg.watch.updates import UpdateTracker
from imsg.watch.wakeup import Doorbell, FileWakeup, Identity, file_identity

HOLD_S = 2.0
HORIZON_S = 300.0
# File events fire on the WAL write, a moment before the commit is visible to readers: every
# event-driven poll is followed by looks this long after it, so the last commit of a burst is not
# left to the timer even when the writer was descheduled in between (on a busy machine that
# takes a few milliseconds more often than one would think: the 10 ms look keeps p99 low).
ECHOES_S = (0.002, 0.01, 0.05)
# How soon to look again while the database is missing, locked or unreadable.
RETRY_S = 1.0
# How often a held row (blocking the rows after it) and a pending one (waiting for its join
# while later rows flow) are looked at again, file events or not: the commit that resolves them
# can become visible after the event-driven polls have run. Both stay below clock.STEP_CAP_S.
HOLD_RETRY_S = 0.05
PENDING_RETRY_S = 0.25
_NEVER = float("inf")
_TERMINAL = (PermissionDenied, SchemaMismatch)


class _Shared:
    """One open connection to one file, and how many sessions use it."""

    def __init__(self, db: ChatDB) -> None:
        self.db = db
        self.users = 0


# Every watcher of one file in a process shares one connection (a subscription costs no file
# descriptors of its own; queries are short and serialized by the reader's lock).
_OPEN: dict[tuple[str, Identity], _Shared] = {}
_OPEN_LOCK = threading.Lock()


class _Session:
    """The database file as currently opened (shared with every other watcher of the same
    file in this process); replaced when the file is."""

    def __init__(self, path: str, identity: Identity) -> None:
        self.identity = identity
        self._key = (path, identity)
        with _OPEN_LOCK:
            shared = _OPEN.get(self._key)
            if shared is None:
                shared = _OPEN[self._key] = _Shared(ChatDB(path))
            shared.users += 1
        self._shared: _Shared | None = shared
        self.db = shared.db

    def renew(self) -> None:
        """Let the next session of this file open a new connection (the schema changed), while
        the watchers still on this one finish with it."""
        with _OPEN_LOCK:
            if self._shared is not None and _OPEN.get(self._key) is self._shared:
                del _OPEN[self._key]

    def close(self) -> None:
        with _OPEN_LOCK:
            shared, self._shared = self._shared, None
            if shared is None:
                return
            shared.users -= 1
            last = shared.users == 0
            if last and _OPEN.get(self._key) is shared:
                del _OPEN[self._key]
        if last:
            shared.db.close()


@dataclass(slots=True)
class _Orphan:
    guid: str
    first_seen: float  # awake seconds (AwakeClock)


class _Delivered(NamedTuple):
    rowid: int
    guid: str
    date_ns: int | None


class Watcher:
    """New messages from a chat.db that Messages keeps writing, as a blocking iterator.

    Delivery contract:

    - **A row that is joined to a chat is always delivered, once.** Rows with ROWID above the
      start cursor are delivered in ascending ROWID order, except a row Messages joined to its
      chat late (below). Rows rejected by ``chat_id``, ``filters`` (participants, start/end) or
      ``reactions=False`` are passed over. Never delivered on their own: a link-preview row that
      belongs to a text row (that row carries it as ``url_preview``), a preview repeating one
      from the same sender in the same chat within 90 s, and a row in Recently Deleted. The
      rules are ``imsg.watch.sequencer``'s, shared with ``page_after``: a watcher replaying from
      a cursor and paging from it deliver the same messages.
    - **Start**: ``since_rowid`` when given and not 0 (rows with ROWID > N, then live ones;
      negative replays everything), else the newest ROWID. It is fixed in the constructor: a row
      committed after the constructor returns is always delivered. A ``since_rowid`` past every
      ROWID the database ever handed out (it was restored from an older copy, or is another
      file) starts at its newest row instead, with a status line.
    - **Late joins.** Messages commits a ``message`` row before the ``chat_message_join`` row
      that files it in a conversation, sometimes seconds later. Such a row is *held* (the rows
      after it wait, so order is kept) for ``hold_s`` of the watcher's own awake polling (see
      ``clock``: a stopped or starved process does not use it up), decided each time on rows
      read after the clock was read. Then later rows flow again while the row stays *pending*,
      looked at every ``PENDING_RETRY_S`` and on every poll, for ``horizon_s`` of awake time:
      when its join appears it is delivered at once, out of ROWID order, exactly once. A row
      still unjoined after the horizon is given up and reported. Rows that were already in the
      database at the start and are dated more than ``horizon_s`` ago are not held (a replay does
      not stall on each old orphan), only kept pending.
    - **Link previews.** A new text row with a link (one written after the start) is held the
      same way, up to ``hold_s``, for its link-preview row, which is then folded into it as
      ``url_preview``; after that it is delivered as it is (a preview written later is then
      not delivered on its own). Replayed rows are never held for a preview.
    - **Poison rows.** Invalid UTF-8 is decoded with U+FFFD, a date that is not a timestamp is
      unknown; a row that still cannot be turned into a message is given up and reported.
    - **Reports.** A row given up is reported through ``on_status`` (one line), or, with
      ``report_skipped=True``, as a ``WatchEvent("skipped")`` carrying a ``SkippedRow`` (rowid,
      guid, reason ``never_joined`` | ``unreadable``) in its place in the stream.
    - **Cursor.** Each delivered message carries ``cursor``: resuming with
      ``since_rowid=cursor`` re-delivers everything after that message that this watcher has
      not delivered by then, and possibly some that it has (at-least-once). It never passes a
      held or pending row, and never decreases, except after the database is replaced by an
      older copy (below). ``Watcher.cursor`` is the same resume point, right now. Persist the
      ``cursor`` of each message after handling it and pass the last one back as
      ``since_rowid``.
    - **Replaced database.** When the file is replaced (another inode) or rolled back in place
      (the highest ROWID it ever handed out is below the cursor), the watcher finds the last
      message it delivered in the new file by its guid (else by its date), resumes right after
      it, and says so through ``on_status``. Its cursors start again from there.
    - With ``updates=True``, edits and unsends of delivered rows dated in the last 24 hours are
      delivered as ``WatchEvent("edited" | "retracted")``, once per change. They are not in ROWID
      order (they concern old rows) and do not move the cursor.
    - Timing: a poll ``debounce_s`` after the first file event of a burst (later events do not
      postpone it, so continuous writes are still delivered at least every ``debounce_s``), plus a
      poll every ``poll_interval_s`` even without events. Each poll drains every new row, in pages
      of ``page_size``. Idle, the watcher sleeps.

    Failure modes: the constructor raises ``DatabaseNotFound``, ``PermissionDenied``,
    ``NotAMessagesDatabase``, ``SchemaMismatch``, ``ChatNotFound`` (unknown ``chat_id``) or
    ``InvalidInput`` (a negative duration, a page size below 1). A horizon shorter than the hold
    is taken to be the hold.
    While running, a database that disappears, is replaced, stays locked or cannot be read is
    reported through ``on_status`` and retried every second from the cursor; nothing is lost.
    Losing permission to read raises ``PermissionDenied`` out of ``events()``, and a schema error
    that reopening the database does not cure (a column renamed by an update) raises
    ``SchemaMismatch``; either closes the watcher.
    """

    def __init__(self, db_path: str, *, since_rowid: int | None = None,
                 chat_id: int | None = None, filters: Filters | None = None,
                 reactions: bool = False, updates: bool = False, debounce_s: float = 0.25,
                 poll_interval_s: float = 5.0, hold_s: float = HOLD_S,
                 horizon_s: float = HORIZON_S, page_size: int = 500,
                 on_status: Callable[[str], None] | None = None,
                 report_skipped: bool = False) -> None:
        """Opens its own ChatDB connection and FIXES the start cursor here (so a row inserted
        after the constructor returns is always delivered). Raises imsg errors (ChatNotFound for a
        bad chat_id, PermissionDenied, DatabaseNotFound) synchronously. on_status receives human
        condition reports (DB missing/locked/replaced/recovered, rows given up) — the CLI prints
        them to stderr.
        """
        _check_settings(debounce_s, poll_interval_s, hold_s, horizon_s, page_size)
        self._path = os.path.abspath(os.path.expanduser(db_path))
        self._chat_id = chat_id
        self._filters = filters or Filters()
        self._reactions = reactions
        self._debounce_s = debounce_s
        self._poll_interval_s = poll_interval_s
        self._hold_s = hold_s
        self._horizon_s = max(horizon_s, hold_s)
        self._page_size = page_size
        self._on_status = on_status or _ignore
        self._report_skipped = report_skipped
        self._lock = threading.Lock()
        self._running = False
        self._closed = False
        self._trouble: str | None = None
        self._schema_failed = False
        self._clock = AwakeClock()
        self._first_seen: dict[int, float] = {}  # rows above the scan being held
        self._pending: dict[int, _Orphan] = {}  # unjoined rows at or below the scan
        self._pending_floor = 0  # min(self._pending) when there are any
        self._holding = False
        self._last: _Delivered | None = None
        self._session: _Session | None = _Session(self._path, file_identity(self._path))
        try:
            db = self._session.db
            if chat_id is not None:
                db.chat_ref(chat_id)
            newest = db.max_rowid()
            start = since_rowid if since_rowid else newest
            if start > newest and start > db.rowid_high_water():
                self._status(f"since_rowid {start} is past every message {self._path} ever held"
                             f" (an older copy, or another database?); starting after its newest,"
                             f" ROWID {newest}")
                start = newest
            self._scan = start  # every row at or below it has been decided
            self._given = start  # the last cursor handed out
            self._live_from = newest
            self._sequencer = Sequencer(self._filters)
            self._updates = UpdateTracker() if updates else None
            if self._updates is not None:
                self._updates.prime(db, start)
            self._bell = Doorbell()
            self._wakeup = self._start_wakeup()
        except BaseException:
            self._session.close()
            raise

    @property
    def cursor(self) -> int:
        """The resume point: every row at or below it has been delivered, passed over or given
        up, so ``since_rowid=cursor`` loses nothing. Stays below any held or pending row."""
        if self._pending:
            return min(self._scan, self._pending_floor - 1)
        return self._scan

    def events(self) -> Iterator[WatchEvent]:
        """Blocking generator; yields forever until close() is called from any thread, then
        returns promptly (<0.5 s). Raises PermissionDenied if read access is lost and
        SchemaMismatch if the schema no longer fits (the watcher is closed then), RuntimeError if
        another thread is already iterating."""
        with self._lock:
            if self._running:
                raise RuntimeError("this Watcher is already being iterated")
            if self._closed:
                return
            self._running = True
        try:
            yield from self._loop()
        except _TERMINAL:
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
        retry_at = _NEVER
        echoes: list[float] = []
        while not self._bell.is_closed():
            rung = self._bell.rung_at
            event_due = _NEVER if rung is None else rung + self._debounce_s
            due = min(timer_at, retry_at, event_due, echoes[0] if echoes else _NEVER)
            now = time.monotonic()
            if now < due:
                self._bell.sleep_until(due)
                continue
            # Only the debounced poll answers the bell: a timer, retry or echo poll in between
            # must not swallow a ring whose commit it may have been too early to see.
            by_event = event_due <= now
            if by_event:
                self._bell.clear()
            yield from self._poll()
            after = time.monotonic()
            timer_at = after + (RETRY_S if self._trouble else self._poll_interval_s)
            retry_at = _NEVER
            if self._holding:
                retry_at = after + HOLD_RETRY_S
            elif self._pending:
                retry_at = after + PENDING_RETRY_S
            if by_event:
                echoes = [after + delay for delay in ECHOES_S]
            elif echoes and echoes[0] <= now:
                echoes.pop(0)

    def _poll(self) -> Iterator[WatchEvent]:
        self._clock.tick()  # before any read: decisions only charge time that preceded them
        if self._wakeup is not None:
            self._wakeup.check()
        try:
            session = self._current_session()
            yield from self._drain(session.db)
            if self._updates is not None:
                yield from self._changes(self._updates, session)
        except PermissionDenied:
            raise
        except SchemaMismatch as err:
            if self._schema_failed:  # the reopened database has the same problem
                raise SchemaMismatch(f"{err.message}; the watch stopped (resume after ROWID"
                                     f" {self.cursor})") from err
            self._schema_failed = True
            if self._session is not None:
                self._session.renew()
            self._drop_session()  # reopening probes the columns again
            self._report_trouble(err)
            return
        except DatabaseError as err:
            self._drop_session()
            self._report_trouble(err)
            return
        self._schema_failed = False
        if self._trouble is not None:
            self._trouble = None
            self._status(f"{self._path} is readable again; resuming after ROWID {self.cursor}")

    def _drain(self, db: ChatDB) -> Iterator[WatchEvent]:
        """Deliver pending rows that were joined, then every row past the scan, a page at a
        time, until one must be held."""
        self._holding = False
        now_ns = time.time_ns()
        yield from self._recheck(db)
        while not self._bell.is_closed():
            newest = db.max_rowid()  # read first: the page query then sees every row up to it
            rolled_back = self._rolled_back(db, newest)
            if rolled_back:
                self._reanchor(db, rolled_back)
                continue
            batch, full = read_after(db, self._scan, limit=self._page_size,
                                     chat_id=self._chat_id, reactions=self._reactions)
            for index, item in enumerate(batch):
                if isinstance(item, Unreadable):
                    self._scan = item.rowid
                    yield from self._give_up(item.rowid, item.guid, "unreadable",
                                             f"cannot be read ({item.error})")
                    continue
                message, date_ns = item
                decision = self._sequencer.decide(db, batch, index, complete=not full)
                if isinstance(decision, Unjoined):
                    fresh = message.id > self._live_from or is_recent(
                        date_ns, self._horizon_s, now_ns)
                    if self._held(message.id, fresh, batch[index + 1:]):
                        return
                    first_seen = self._first_seen.pop(message.id)
                    self._scan = message.id
                    if self._clock.now - first_seen >= self._horizon_s:
                        yield from self._never_joined(message.id, message.guid)
                    else:
                        self._add_pending(message.id, _Orphan(message.guid, first_seen))
                    continue
                if isinstance(decision, AwaitPreview):
                    if self._held(message.id, message.id > self._live_from, batch[index + 1:]):
                        return
                    decision = Emit(decision.message)
                self._first_seen.pop(message.id, None)
                self._scan = message.id
                if isinstance(decision, Emit):
                    yield self._deliver(decision.message, date_ns)
                    if self._bell.is_closed():
                        return
            if not full:
                # Rows up to ``newest`` missing from the page belong to other chats or are
                # tapbacks: step over them so later polls do not scan them again.
                self._scan = max(self._scan, newest)
                self._forget()
                return

    def _held(self, rowid: int, fresh: bool, behind: Sequence[Item]) -> bool:
        """Whether the row at the scan is (still) held: ``fresh`` and first seen less than
        ``hold_s`` of awake time ago. Remembers when it was first seen either way, and when it
        is held, when the unjoined rows ``behind`` it were (their holds run meanwhile, so a
        burst of late joins costs one hold, not one each)."""
        now = self._clock.now
        first_seen = self._first_seen.setdefault(rowid, now)
        if not fresh or now - first_seen >= self._hold_s:
            return False
        for item in behind:
            if not isinstance(item, Unreadable) and item[0].chat_id == 0:
                self._first_seen.setdefault(item[0].id, now)
        self._holding = True
        self._forget()
        return True

    def _recheck(self, db: ChatDB) -> Iterator[WatchEvent]:
        """Pending rows: deliver those joined since, drop those deleted or gone, give up those
        past the horizon."""
        if not self._pending:
            return
        states = db.join_states(sorted(self._pending))
        for rowid in [r for r in self._pending if states.get(r, "gone") in ("gone", "deleted")]:
            self._drop_pending(rowid)
        joined = sorted(rowid for rowid, state in states.items() if state == "joined")
        unjoined_again: set[int] = set()
        for item in read_rowids(db, joined, chat_id=self._chat_id, reactions=self._reactions):
            if isinstance(item, Unreadable):
                orphan = self._drop_pending(item.rowid)
                yield from self._give_up(item.rowid, orphan.guid, "unreadable",
                                         f"cannot be read ({item.error})")
                continue
            message, date_ns = item
            if message.chat_id == 0:
                unjoined_again.add(message.id)  # its join went away again: still pending
                continue
            self._drop_pending(message.id)
            decision = self._sequencer.decide(db, [item], 0, complete=False)
            if isinstance(decision, AwaitPreview):
                decision = Emit(decision.message)  # it has waited long enough
            if isinstance(decision, Emit):
                yield self._deliver(decision.message, date_ns)
        for rowid in joined:  # joined only to chats this watcher does not follow
            if rowid in self._pending and rowid not in unjoined_again:
                self._drop_pending(rowid)
        for rowid, orphan in list(self._pending.items()):
            if self._clock.now - orphan.first_seen >= self._horizon_s:
                self._drop_pending(rowid)
                yield from self._never_joined(rowid, orphan.guid)

    def _add_pending(self, rowid: int, orphan: _Orphan) -> None:
        if not self._pending:
            self._pending_floor = rowid
        self._pending[rowid] = orphan  # always above every pending row: the floor stays

    def _drop_pending(self, rowid: int) -> _Orphan:
        orphan = self._pending.pop(rowid)
        if self._pending and rowid == self._pending_floor:
            self._pending_floor = min(self._pending)
        return orphan

    def _deliver(self, message: Message, date_ns: int | None) -> WatchEvent:
        cursor = max(self._given, self.cursor)
        self._given = cursor
        message.cursor = cursor  # built for this watcher alone: no copy needed
        if self._updates is not None:
            self._updates.delivered(message)
        if self._last is None or message.id > self._last.rowid:
            self._last = _Delivered(message.id, message.guid, date_ns)
        return WatchEvent("message", message)

    def _never_joined(self, rowid: int, guid: str) -> Iterator[WatchEvent]:
        return self._give_up(rowid, guid, "never_joined",
                             f"was not joined to any chat within {self._horizon_s:g}s of"
                             " watching (Messages never filed it in a conversation)")

    def _give_up(self, rowid: int, guid: str, reason: SkipReason,
                 why: str) -> Iterator[WatchEvent]:
        detail = f"message {rowid}{f' ({guid})' if guid else ''} {why}; skipped it"
        if self._report_skipped:
            yield WatchEvent("skipped", SkippedRow(rowid, guid, reason, detail))
        else:
            self._status(detail)

    def _forget(self) -> None:
        self._sequencer.forget_through(self._scan)
        if self._first_seen:
            self._first_seen = {k: v for k, v in self._first_seen.items() if k > self._scan}

    def _changes(self, tracker: UpdateTracker, session: _Session) -> Iterator[WatchEvent]:
        delivered: set[int] = set()
        for message, date_ns in tracker.changes(session.db, self._scan, self._chat_id):
            if message.id in delivered or message.id in self._pending or (
                    self._chat_id is not None and message.chat_id != self._chat_id):
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
                             f" after ROWID {self.cursor}")
        if session is None:
            if identity is None:
                raise DatabaseNotFound(self._path)
            session = self._session = _Session(self._path, identity)
        return session

    def _rolled_back(self, db: ChatDB, newest: int) -> str | None:
        """Why this file is not the history the cursor counts in (None when it is): it never
        held ROWIDs as high as the cursor (an older copy; deleting the newest messages does not
        lower that), or the ROWID of the last delivered message now holds another message."""
        if newest < self._scan and db.rowid_high_water() < self._scan:
            return f"{self._path} never held a ROWID as high as the cursor {self._scan}"
        last = self._last
        if last is None:
            return None
        keys = db.message_keys_after(last.rowid - 1, 1)
        if keys and keys[0][0] == last.rowid and keys[0][1] != last.guid:
            return f"ROWID {last.rowid} of {self._path} now holds another message"
        return None

    def _reanchor(self, db: ChatDB, why: str) -> None:
        """Resume right after the last delivered message as found in this file: by its guid,
        else the last row dated before it; with nothing delivered yet, at this file's newest."""
        last = self._last
        found = db.rowid_of_guid(last.guid) if last is not None and last.guid else None
        if last is not None and found is not None:
            anchor, how = found, f"the last delivered message ({last.guid}) is ROWID {found} here"
        elif last is not None and last.date_ns is not None:
            after = db.oldest_rowid_since(last.date_ns + 1)
            anchor = db.max_rowid() if after is None else after - 1
            how = (f"the last delivered message ({last.guid}) is not in it; resuming after the"
                   f" last row dated before it")
        else:
            anchor = min(self._scan, db.max_rowid())
            how = "nothing was delivered yet"
        dropped = len(self._pending)
        self._scan = self._given = self._live_from = anchor
        self._last = _Delivered(found, last.guid, last.date_ns) if last and found else None
        self._pending.clear()
        self._first_seen.clear()
        self._sequencer.forget_all()
        if self._updates is not None:
            self._updates = UpdateTracker()
            self._updates.prime(db, anchor)
        lost = f"; {dropped} pending unjoined row(s) of the old file dropped" if dropped else ""
        self._status(f"WARNING: {why}: it was replaced by an older copy or another database;"
                     f" {how}: delivering every row after ROWID {anchor} (cursors restart there;"
                     f" some messages may come twice){lost}")

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
            self._status(f"{text} (resuming after ROWID {self.cursor})")

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


def _check_settings(debounce_s: float, poll_interval_s: float, hold_s: float, horizon_s: float,
                    page_size: int) -> None:
    if debounce_s < 0 or hold_s < 0 or horizon_s < 0:
        raise InvalidInput("debounce, hold and horizon times cannot be negative")
    if poll_interval_s <= 0:
        raise InvalidInput("the fallback poll interval must be positive")
    if page_size < 1:
        raise InvalidInput(f"page size must be at least 1 (got {page_size})")

