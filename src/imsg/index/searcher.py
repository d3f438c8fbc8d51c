"""Search through the index when it can be used, else by scanning chat.db: one answer either way.

The index only proposes rows; the reader decides. Candidate rows come newest first (in ``key``
order, see ``imsg.index.store``) and ``ChatDB.search`` runs its own rules over them (matching,
tapbacks, chats, ordering, limit). The answer is final once every candidate was fetched, or once
it is full and the natural key of its last message's date is at least the lowest key fetched:
every candidate not fetched has a lower key, so a lower natural key, so an earlier date, and
ranks below it. A full answer that falls short of that fetches every candidate down to that
natural key and asks the reader once more; an answer not yet full fetches four times as many
candidates, and so on.

Open indexes are kept per database (a few at a time) with one lock each: concurrent searches of
one database take turns on its index, each a few milliseconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from imsg.chatdb.models import Message
from imsg.chatdb.reader import ChatDB
from imsg.errors import DatabaseError, IndexUnavailable
from imsg.index.store import (
    NO_KEY,
    Candidates,
    IndexStore,
    exact_candidates,
    exact_code,
    natural_key,
    prefix_candidates,
    translate,
    trigram_candidates,
    walk_candidates,
)
from imsg.index.sync import Progress, build, refresh

SMALL_CHAT = 5000  # a chat this small is scanned: its own rows, at once
SHORT_WINDOW = 20_000  # one- and two-character needles: rows walked before the trigram look-up
RETRY_AFTER_S = 300.0  # after a failed build or open, scan for this long before trying again
_MAX_OPEN = 8
_FIRST_BATCH = 16  # candidates beyond the limit in the first round (most are real matches)
_log = logging.getLogger("imsg.index")


def enabled() -> bool:
    """The index is used unless ``IMSG_INDEX`` is 0, off, no or false."""
    return os.environ.get("IMSG_INDEX", "").strip().lower() not in ("0", "off", "no", "false")


def cache_dir() -> str:
    """``$IMSG_CACHE_DIR/search-index``, else ``search-index`` in the per-user cache directory."""
    root = os.environ.get("IMSG_CACHE_DIR")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("imsg", appauthor=False)
    return os.path.join(root, "search-index")


def index_path(db_path: str) -> str:
    """The index file of the database at ``db_path`` (named by its real path)."""
    real = os.path.realpath(os.path.expanduser(db_path))
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return os.path.join(cache_dir(), f"{digest}.sqlite3")


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """What ``update`` did: ``built`` from scratch or ``updated`` in place."""

    path: str
    action: str
    rows: int
    bytes: int
    seconds: float


def search(db: ChatDB, query: str, *, match: str = "contains", limit: int = 50,
           chat_id: int | None = None, edit_history: bool = False,
           progress: Progress | None = None) -> list[Message]:
    """``db.search`` with the same arguments and the same answer, through the index.

    The index is built on first use (``progress`` hears how far) and caught up before each
    search. Without a usable index (``IMSG_INDEX=0``, no FTS5 trigram tokenizer, an unwritable
    cache, a failed build in the last five minutes) this is ``db.search`` itself. Raises what
    ``db.search`` raises (InvalidInput, ChatNotFound, the database errors), never
    IndexUnavailable.
    """

    def scan() -> list[Message]:
        return db.search(query, match=match, limit=limit, chat_id=chat_id,
                         edit_history=edit_history)

    needle = query.strip().casefold()
    if match not in ("contains", "exact") or limit < 1 or not needle or not enabled():
        return scan()
    try:
        needle.encode("utf-8")
    except UnicodeEncodeError:
        return scan()
    try:
        with _current(db, progress) as store:
            if chat_id is not None and store.db_chat_size(chat_id, SMALL_CHAT + 1) <= SMALL_CHAT:
                return scan()
            return _through(store, db, query, needle, match, limit, chat_id, edit_history)
    except (IndexUnavailable, DatabaseError) as err:
        _log.info("searching without the index: %s", err)
        return scan()


def update(db: ChatDB, *, rebuild: bool = False, progress: Progress | None = None) -> IndexInfo:
    """Build the index of ``db`` (``rebuild``: from scratch) or bring it up to date, checking
    edits over the whole table. Raises IndexUnavailable, or the reader's errors."""
    path = index_path(db.path)
    started = time.monotonic()
    slot = _slot(path)
    with slot.lock:
        if rebuild:
            slot.close()
            _build(path, db, progress)
            slot.open(path, db.path)  # just built: nothing to catch up or sweep
            action = "built"
        else:
            action = _open_current(slot, path, db, progress, sweep=True)
        store = slot.store
        assert store is not None
        return IndexInfo(path=path, action=action,
                         rows=store.count(), bytes=store.size(),
                         seconds=round(time.monotonic() - started, 3))


def close_all() -> None:
    """Close every open index (for tests and orderly shutdown)."""
    with _LOCK:
        slots = list(_OPEN.values())
        _OPEN.clear()
    for slot in slots:
        with slot.lock:
            slot.close()


# --- searching through an index -----------------------------------------------------------------


class _Stream:
    """Candidates from one query, newest first, a batch at a time."""

    def __init__(self, store: IndexStore, how: Candidates, before: int = NO_KEY) -> None:
        self._store = store
        self._how = how
        self._before = before

    def next(self, batch: int) -> tuple[list[tuple[int, int]], int | None]:
        """(key, ROWID) pairs, and the key down to which every candidate has been returned
        (None: all of them)."""
        pairs = self._store.candidates(self._how, self._before, batch)
        if len(pairs) < batch:
            return pairs, None
        self._before = pairs[-1][0]
        return pairs, self._before


class _ShortStream:
    """Candidates for a one- or two-character needle, which has no trigram of its own.

    First a walk over the newest ``SHORT_WINDOW`` rows (a common needle ends there); below
    them, rows with an indexed trigram starting with the needle (cheap for a rare one), or, when
    there are too many such trigrams, the walk goes on.
    """

    def __init__(self, store: IndexStore, needle: str, chat_id: int | None) -> None:
        self._store = store
        self._needle = needle
        self._chat_id = chat_id
        self._floor = store.newest(NO_KEY, SHORT_WINDOW)
        self._current = _Stream(store, walk_candidates(needle, chat_id, self._floor))
        self._in_window = self._floor is not None

    def next(self, batch: int) -> tuple[list[tuple[int, int]], int | None]:
        pairs, lowest = self._current.next(batch)
        if lowest is not None or not self._in_window:
            return pairs, lowest
        assert self._floor is not None
        self._in_window = False  # the window is done: on to the rows below it
        terms = self._store.trigrams_starting(self._needle)
        if terms == []:
            return pairs, None
        how = (walk_candidates(self._needle, self._chat_id) if terms is None
               else prefix_candidates(self._needle, terms, self._chat_id))
        self._current = _Stream(self._store, how, self._floor)
        return pairs, self._floor


def _stream(store: IndexStore, needle: str, exact: bool,
            chat_id: int | None) -> _Stream | _ShortStream:
    if exact:
        return _Stream(store, exact_candidates(needle, chat_id))
    if "\x00" in needle:
        return _Stream(store, walk_candidates(needle, chat_id))
    if len(needle) < 3:
        return _ShortStream(store, needle, chat_id)
    return _Stream(store, trigram_candidates(needle, chat_id))


def _through(store: IndexStore, db: ChatDB, query: str, needle: str, match: str, limit: int,
             chat_id: int | None, edit_history: bool) -> list[Message]:
    exact = match == "exact"
    stream = _stream(store, needle, exact, chat_id)
    fetched = {rowid for _, rowid in store.loose()}
    batch = limit + _FIRST_BATCH
    while True:
        pairs, lowest = stream.next(batch)
        fetched.update(rowid for _, rowid in pairs)
        found = db.search(query, match=match, limit=limit, chat_id=chat_id,
                          edit_history=edit_history, rowids=fetched)
        if lowest is None:
            return found  # every candidate was looked at
        if len(found) == limit:
            last = found[-1]
            date = store.db_date(last.id)
            floor = natural_key(date)
            if floor >= lowest:
                return found  # every candidate not fetched ranks below the last one found
            # Rows keyed in between (a burst that spilled into later keys) may still outrank
            # it: of the rows keyed from its natural key up, those that contain the needle (or
            # its exact code) and rank above it join in. The answer can then only improve, and
            # all below ``floor`` rank lower still.
            probe = exact_code(needle) if exact else needle
            above = [rowid for rowid in store.outranking(probe, floor, lowest, date, last.id,
                                                         chat_id) if rowid not in fetched]
            if not above:
                return found
            fetched.update(above)
            return db.search(query, match=match, limit=limit, chat_id=chat_id,
                             edit_history=edit_history, rowids=fetched)
        batch *= 4


# --- open indexes, one lock each ----------------------------------------------------------------


class _Slot:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.store: IndexStore | None = None
        self.inode: int | None = None
        self.failed_at = float("-inf")
        self.failure = ""

    def open(self, path: str, db_path: str) -> IndexStore:
        with translate(path):
            inode = os.stat(path).st_ino
        self.store = IndexStore(path, db_path)
        self.inode = inode
        return self.store

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
        self.store = None
        self.inode = None


_LOCK = threading.Lock()
_OPEN: OrderedDict[str, _Slot] = OrderedDict()


def _slot(path: str) -> _Slot:
    with _LOCK:
        slot = _OPEN.get(path)
        if slot is None:
            slot = _OPEN[path] = _Slot()
            for other_path, other in list(_OPEN.items())[:-_MAX_OPEN]:
                if other.lock.acquire(blocking=False):  # busy ones stay open for now
                    other.close()
                    other.lock.release()
                    del _OPEN[other_path]
        _OPEN.move_to_end(path)
        return slot


@contextmanager
def _current(db: ChatDB, progress: Progress | None) -> Iterator[IndexStore]:
    path = index_path(db.path)
    slot = _slot(path)
    with slot.lock:
        if time.monotonic() - slot.failed_at < RETRY_AFTER_S:
            raise IndexUnavailable(path, slot.failure)
        try:
            _open_current(slot, path, db, progress, sweep=False)
        except IndexUnavailable as err:
            slot.close()
            slot.failed_at, slot.failure = time.monotonic(), err.detail
            raise
        assert slot.store is not None
        yield slot.store


def _open_current(slot: _Slot, path: str, db: ChatDB, progress: Progress | None, *,
                  sweep: bool) -> str:
    """Leave ``slot`` with an index equal to chat.db: caught up, or rebuilt when it was built
    by another process, is damaged, or belongs to another (or a rolled-back) database."""
    if slot.store is not None and _inode(path) != slot.inode:
        slot.close()  # replaced by a rebuild elsewhere
    if slot.store is None and os.path.exists(path):
        try:
            slot.open(path, db.path)
        except IndexUnavailable as err:
            if not _damaged(err):
                raise
    if slot.store is not None:
        try:
            if refresh(slot.store, db, sweep=sweep):
                return "updated"
        except IndexUnavailable as err:
            if not _damaged(err):
                raise
        slot.close()
    _build(path, db, progress)
    slot.open(path, db.path)
    return "built"


def _build(path: str, db: ChatDB, progress: Progress | None) -> None:
    with translate(path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    build(path, db, progress)


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _damaged(err: IndexUnavailable) -> bool:
    """A broken or foreign index file: worth replacing (a lock or a full disk is not)."""
    text = err.detail.lower()
    return any(marker in text for marker in ("malformed", "not a database", "no such table",
                                             "no such column", "corrupt"))
