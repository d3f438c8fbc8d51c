"""Keeping an index equal to its chat.db: build it, catch it up, or say it must be rebuilt.

Catching up (``refresh``) before each search costs two ``stat`` calls when chat.db and its WAL
did not change since the last one. Otherwise, in one write transaction on the index:

- **identity**: the file's (device, inode), the highest ROWID chat.db ever handed out (its
  AUTOINCREMENT sequence) against the index's watermark, and the guids of a few indexed rows. A
  replaced or rolled-back database fails one of them, and the index is rebuilt from scratch;
- **new rows**: every row past the watermark;
- **edits, unsends, transcripts**: rows whose ``date_edited``/``date_retracted`` differ from
  what was indexed, and voice messages (their transcripts come later), among rows
  dated or written in the last ``WINDOW_S`` (Messages allows edits for 15 minutes). Every
  ``SWEEP_S`` (and on ``imsg index``) the whole table is checked, so an edit that arrives
  later than that (a device long offline) is found within the hour;
- **deleted rows**: when chat.db's row count up to the watermark differs from the index's,
  the two ROWID lists are compared.

A stale row can only make a search look at a row it then rejects (the reader re-checks every
candidate), except an edit or transcript outside the window, until the next sweep.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from imsg.chatdb.dates import unix_ns_to_apple
from imsg.chatdb.reader import ChatDB, SearchText
from imsg.errors import IndexUnavailable
from imsg.index.store import SCHEMA_VERSION, IndexStore, Row, doc_row, natural_key

WINDOW_S = 24 * 3600
SWEEP_S = 3600.0
PAGE = 5000
ANCHORS = 8
Progress = Callable[[int, int], None]


def file_state(db_path: str) -> list[int]:
    """Size and modification time of chat.db and its WAL (zeros when absent)."""
    state: list[int] = []
    for path in (db_path, f"{db_path}-wal"):
        try:
            st = os.stat(path)
        except OSError:
            state += [0, 0]
        else:
            state += [st.st_size, st.st_mtime_ns]
    return state


def file_identity(db_path: str) -> list[int]:
    st = os.stat(db_path)
    return [st.st_dev, st.st_ino]


def _rows(texts: Sequence[SearchText]) -> list[Row]:
    return [doc_row(rowid, date, edited, retracted, found, audio)
            for rowid, _, date, edited, retracted, found, audio in texts]


def build(path: str, db: ChatDB, progress: Progress | None = None) -> None:
    """Index every row of ``db`` into a new file that then replaces ``path`` (atomically, so
    readers of the old file are never disturbed). Raises IndexUnavailable, or the reader's
    errors when chat.db cannot be read."""
    tmp = f"{path}.{os.getpid()}.tmp"
    _remove(tmp)
    try:
        identity = file_identity(db.path)
    except OSError as exc:
        raise IndexUnavailable(path, exc.strerror or str(exc)) from exc
    files = file_state(db.path)
    store = IndexStore.create(tmp, db.path)
    try:
        with store.writing():
            total = db.max_rowid()
            last, guid, rows = 0, "", 0
            page: list[SearchText] = []
            for text in db.search_texts(page=PAGE):
                page.append(text)
                if len(page) == PAGE:
                    store.load(_rows(page))
                    rows += len(page)
                    last, guid = page[-1].rowid, page[-1].guid
                    page.clear()
                    if progress is not None:
                        progress(last, total)
            if page:
                store.load(_rows(page))
                rows += len(page)
                last, guid = page[-1].rowid, page[-1].guid
            store.finish_load()
            now = time.time()
            store.set_meta(db_path=db.path, identity=identity, watermark=last,
                           anchors=[[last, guid]] if last else [], checkpoints=[[now, last]],
                           swept_at=now, files=files, rows=rows)
        store.finish_build()
        if progress is not None:
            progress(total, total)
        store.close()
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise IndexUnavailable(path, exc.strerror or str(exc)) from exc
    except BaseException:
        store.close()
        _remove(tmp)
        raise


def refresh(store: IndexStore, db: ChatDB, *, sweep: bool = False) -> bool:
    """Catch the index up with chat.db; False when it must be rebuilt instead (another
    database, or this one rolled back). ``sweep`` checks edits over the whole table."""
    files = file_state(db.path)  # before reading: a write during the catch-up shows next time
    meta = store.meta()
    if meta.get("version") != SCHEMA_VERSION or not _same_file(meta, db.path):
        return False
    if not sweep and meta.get("files") == files:
        return True
    with store.writing():
        meta = store.meta()  # another process may have caught up meanwhile
        if meta.get("version") != SCHEMA_VERSION:
            return False
        if not sweep and meta.get("files") == files:
            return True
        watermark: int = meta["watermark"]
        if store.db_sequence() < watermark or not _anchors_hold(store, meta["anchors"]):
            return False
        # chat.db is read through the attached connection from here to the commit, as of now:
        # compare counts first, before the reader (a newer snapshot) adds rows.
        rows: int = meta["rows"]
        if store.db_count(watermark) != rows:
            gone, missing = store.differences(watermark)
            rows -= store.drop(gone)
            rows += store.put(_rows(list(db.search_texts(rowids=missing))))
        now = time.time()
        swept_at: float = meta["swept_at"]
        if sweep or now - swept_at >= SWEEP_S:
            floor, swept_at = 0, now
        else:
            floor = _window_floor(store, meta["checkpoints"], watermark, now)
        rows += _changed_rows(store, db, floor, watermark)
        newest, guid, added = _new_rows(store, db, watermark)
        rows += added
        anchors: list[list[Any]] = meta["anchors"]
        checkpoints: list[list[float]] = meta["checkpoints"]
        if newest > watermark:
            anchors = [*anchors, [newest, guid]][-ANCHORS:]
            checkpoints = _prune([*checkpoints, [now, newest]], now)
        store.set_meta(watermark=max(newest, watermark), anchors=anchors,
                       checkpoints=checkpoints, swept_at=swept_at, files=files, rows=rows)
    return True


def _same_file(meta: dict[str, Any], db_path: str) -> bool:
    try:
        return bool(meta.get("identity") == file_identity(db_path))
    except OSError:
        return False


def _anchors_hold(store: IndexStore, anchors: list[list[Any]]) -> bool:
    """Indexed rows still carry the guids they had; at least one of them must still exist."""
    if not anchors:
        return True
    found = store.db_guids([rowid for rowid, _ in anchors])
    return bool(found) and all(found.get(rowid, guid) == guid for rowid, guid in anchors)


def _window_floor(store: IndexStore, checkpoints: list[list[float]], watermark: int,
                  now: float) -> int:
    """The ROWID above which rows are recent: dated in the window (by the index's own keys,
    which are never below a row's natural key), or written in it (the watermark of the last
    catch-up before the window began)."""
    since = natural_key(unix_ns_to_apple(int((now - WINDOW_S) * 1e9)))
    oldest = store.recent_floor(since)
    floor = watermark if oldest is None else oldest - 1
    before = [int(mark) for at, mark in checkpoints if at <= now - WINDOW_S]
    written = before[-1] if before else int(checkpoints[0][1])
    return max(0, min(floor, written))


def _prune(checkpoints: list[list[float]], now: float) -> list[list[float]]:
    """Keep the checkpoints inside the window and the last one before it."""
    old = [c for c in checkpoints if c[0] <= now - WINDOW_S]
    return old[-1:] + [c for c in checkpoints if c[0] > now - WINDOW_S]


def _changed_rows(store: IndexStore, db: ChatDB, floor: int, upto: int) -> int:
    """Re-index rows in (floor, upto] whose edit marks moved, and voice messages; how many
    rows the index gained (it loses those deleted meanwhile)."""
    now_marks = {rowid: (edited, retracted) for rowid, edited, retracted
                 in db.edit_marks(floor, upto)}
    then_marks = {r: marks for r, marks in store.marked(floor).items() if r <= upto}
    changed = {r for r in now_marks.keys() | then_marks.keys()
               if now_marks.get(r) != then_marks.get(r)}
    changed.update(r for r in store.pending(floor) if r <= upto)
    if not changed:
        return 0
    fresh = list(db.search_texts(rowids=sorted(changed)))
    return store.put(_rows(fresh)) - store.drop(changed - {t.rowid for t in fresh})


def _new_rows(store: IndexStore, db: ChatDB, watermark: int) -> tuple[int, str, int]:
    """Index every row past ``watermark``; the newest ROWID, its guid, how many were added."""
    newest, guid, added = watermark, "", 0
    page: list[SearchText] = []
    for text in db.search_texts(watermark, page=PAGE):
        page.append(text)
        if len(page) == PAGE:
            added += store.put(_rows(page))
            page.clear()
        newest, guid = text.rowid, text.guid
    return newest, guid, added + store.put(_rows(page))


def _remove(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            os.unlink(path + suffix)
