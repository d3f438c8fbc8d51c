"""The search index file: SQLite FTS5 beside chat.db (never inside it), one file per database.

Tables:

- ``doc``: one row per ``message`` row of chat.db. ``key`` orders rows like search results:
  it is the row's *natural key* (its date in ~1 s buckets, ``natural_key``) or, when that is
  taken, the next free integer above it, so ``key >= natural_key(date)`` always holds and keys
  stay dense (FTS5 stores key deltas: dense keys keep its index small). ``msg`` is the ROWID;
  ``text`` the casefolded texts search matches (newline-joined), then for each text its *exact
  code*: ``MARK`` and two private-use characters spelling a CRC-32 of the stripped text, a
  trigram of its own that whole-text look-ups search for (an index over a hash column would cost
  a random page write per new row; this costs one trigram), or ``PAD`` when no text has one: so
  that every character of the texts starts a trigram; ``date`` is ``message.date``;
  ``edited``/``retracted`` the edit marks the row was indexed with; ``loose`` marks rows the
  reader checks for every query (texts SQLite cannot hold verbatim); ``pending`` marks voice
  messages, whose transcript Messages writes (or rewrites) after the row.
- ``fts``: an FTS5 trigram index over ``doc.text`` (external content, ``detail=none``): it
  answers "has all these trigrams", and ``instr`` over ``doc.text`` then confirms the substring.
- ``meta``: which chat.db this is and how far it is indexed.

Every SQLite or file-system failure here is raised as ``IndexUnavailable`` (one boundary,
``translate``): the caller then searches without the index.
"""

from __future__ import annotations

import json
import os
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from imsg.errors import IndexUnavailable

SCHEMA_VERSION = 1
PAD = "\x01\x01"
MARK = "\x01"
_CODE_BASE = 0xF0000  # Supplementary Private Use Area-A: 2048 characters per 11 bits
NO_KEY = (1 << 63) - 1  # above every key
_BUCKET_BITS = 30  # natural keys: 2**30 units of message.date (~1.07 s of Apple nanoseconds)
_BUCKET_MIN, _BUCKET_MAX = -(1 << 40), 1 << 40
_VOCAB_LIMIT = 400  # short needles: beyond this many trigrams, walk the rows instead

_SCHEMA = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID",
    "CREATE TABLE doc (key INTEGER PRIMARY KEY, msg INTEGER NOT NULL, date, edited INTEGER"
    " NOT NULL, retracted INTEGER NOT NULL, loose INTEGER NOT NULL, pending INTEGER NOT NULL,"
    " text TEXT NOT NULL)",
    "CREATE VIRTUAL TABLE fts USING fts5(text, content='doc', content_rowid='key',"
    " tokenize='trigram case_sensitive 1', detail=none, columnsize=0)",
    # Pending trigrams flushed every 32 MiB rather than 1: a build writes fewer, larger segments
    # and merges less (catch-ups flush at each commit anyway).
    "INSERT INTO fts (fts, rank) VALUES ('hashsize', 33554432)",
    "CREATE TEMP TABLE late (nat INTEGER NOT NULL, msg INTEGER NOT NULL, date, edited INTEGER,"
    " retracted INTEGER, loose INTEGER, pending INTEGER, text TEXT)",
)
# After a bulk load: maintaining these row by row would halve the build rate.
_INDEXES = (
    "CREATE UNIQUE INDEX doc_msg ON doc (msg)",
    "CREATE INDEX doc_loose ON doc (key) WHERE loose",
    "CREATE INDEX doc_pending ON doc (msg) WHERE pending",
)
_INSERT = "INSERT INTO doc VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_INDEX_TEXT = "INSERT INTO fts (rowid, text) VALUES (?, ?)"
# (natural key, ROWID, date, edited, retracted, loose, pending, text)
Row = tuple[int, int, Any, int, int, int, int, str]


def natural_key(date: object) -> int:
    """Where a row with this ``message.date`` belongs in search order (newest highest).

    Non-decreasing in the date as SQLite orders it: NULL lowest, numbers by value, text above.
    """
    if isinstance(date, int | float):
        return min(_BUCKET_MAX, max(_BUCKET_MIN + 1, int(date // 1) >> _BUCKET_BITS))
    return _BUCKET_MIN if date is None else _BUCKET_MAX + 1


def exact_code(text: str) -> str:
    """``MARK`` and two private-use characters spelling 22 bits of a CRC-32 of the stripped
    text: a trigram that stands for the whole text (a collision only adds a candidate, which
    the reader rejects)."""
    return _code(zlib.crc32(text.strip().encode("utf-8", "surrogatepass")))


def _code(value: int) -> str:
    return MARK + _CODE_CHARS[value & 0x7FF] + _CODE_CHARS[value >> 11 & 0x7FF]


_CODE_CHARS = [chr(_CODE_BASE + i) for i in range(0x800)]
_FAST_DATES = range(0, _BUCKET_MAX << _BUCKET_BITS)  # integer dates natural_key just shifts


def doc_row(rowid: int, date: object, edited: int, retracted: int, texts: Sequence[str],
            audio: bool) -> Row:
    """The ``doc`` row for one message row's searchable texts (key not yet assigned).

    ``text`` ends with ``MARK`` (or ``PAD``) so that each of its characters starts a trigram.
    """
    if len(texts) == 1:  # the usual case, kept fast: this runs for every message
        folded = texts[0].casefold()
        try:
            data = folded.encode("utf-8")
        except UnicodeEncodeError:
            data = b"\x00"  # lone surrogates: the general case below
        if b"\x00" not in data:
            stripped = folded.strip()
            if stripped:
                code = _code(zlib.crc32(data if stripped is folded else stripped.encode("utf-8")))
            else:
                code = PAD
            nat = date >> _BUCKET_BITS if type(date) is int and date in _FAST_DATES else (
                natural_key(date))
            return (nat, rowid, date, edited, retracted, 0, int(audio), folded + code)
    if not texts:
        return (natural_key(date), rowid, date, edited, retracted, 0, int(audio), "")
    texts = [text.casefold() for text in texts]
    joined = "\n".join(texts)
    codes = "".join(exact_code(text) for text in texts if text.strip()) or PAD
    loose = 0
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: SQLite cannot store them as they are
        joined = joined.encode("utf-8", "replace").decode("utf-8")
        loose = 1
    if "\x00" in joined:
        loose = 1
    return (natural_key(date), rowid, date, edited, retracted, loose, int(audio), joined + codes)


@contextmanager
def translate(path: str) -> Iterator[None]:
    """The one boundary where sqlite3 and OS errors about the index become IndexUnavailable."""
    try:
        yield
    except sqlite3.Error as exc:
        raise IndexUnavailable(path, str(exc)) from exc
    except OSError as exc:
        raise IndexUnavailable(path, exc.strerror or str(exc)) from exc


@dataclass(frozen=True, slots=True)
class Candidates:
    """One way of finding rows that may match, as SQL returning (key, ROWID) pairs newest first
    (bound: its ``params``, then a key bound and a limit)."""

    sql: str
    params: tuple[Any, ...]


class IndexStore:
    """One open index file, with chat.db attached read-only as ``cdb`` for cheap probes.

    Not thread-safe: the owner serialises calls.
    """

    def __init__(self, path: str, db_path: str, *, bulk: bool = False) -> None:
        self.path = path
        self.db_path = db_path
        self._top = self._last = _BUCKET_MIN - 1  # bulk load: the last key and natural key
        with translate(path):
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=30.0,
                                        check_same_thread=False, cached_statements=64)
            try:
                # A bulk load writes a private file that replaces the index when complete.
                mode = "OFF" if bulk else "WAL"
                self.conn.execute(f"PRAGMA journal_mode = {mode}")
                self.conn.execute(f"PRAGMA synchronous = {'OFF' if bulk else 'NORMAL'}")
                self.conn.execute("ATTACH DATABASE ? AS cdb",
                                  (f"file:{quote(db_path)}?mode=ro",))
            except BaseException:
                self.conn.close()
                raise

    @staticmethod
    def create(path: str, db_path: str) -> IndexStore:
        """A new, empty index at ``path`` (which must not exist), ready for ``load``; raises
        IndexUnavailable when this SQLite has no FTS5 trigram tokenizer."""
        store = IndexStore(path, db_path, bulk=True)
        try:
            with translate(path):
                for statement in _SCHEMA:
                    store.conn.execute(statement)
            store.set_meta(version=SCHEMA_VERSION)
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self.conn.close()

    # --- meta ----------------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        with translate(self.path):
            return {name: json.loads(value)
                    for name, value in self.conn.execute("SELECT name, value FROM meta")}

    def set_meta(self, **values: Any) -> None:
        with translate(self.path):
            self.conn.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [(name, json.dumps(value)) for name, value in values.items()])

    @contextmanager
    def writing(self) -> Iterator[None]:
        """One write transaction (other processes wait for it); rolled back on any error."""
        with translate(self.path):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # --- writing rows --------------------------------------------------------------------------

    def load(self, rows: Iterable[Row]) -> None:
        """Write rows into a freshly created index (``finish_load`` completes it).

        Rows whose natural keys do not decrease get ``max(natural, previous key + 1)`` at once
        (every key from the natural one up to the previous key is then taken); the others are
        set aside and given the first free key above their natural one at the end.
        """
        keyed: list[Row] = []
        late: list[Row] = []
        top, last = self._top, self._last
        for row in rows:
            nat = row[0]
            if nat < last:
                late.append(row)
                continue
            last = nat
            top = nat if nat > top else top + 1
            keyed.append((top, *row[1:]))
        self._top, self._last = top, last
        with translate(self.path):
            self.conn.executemany(_INSERT, keyed)
            self.conn.executemany(_INDEX_TEXT, [(row[0], row[7]) for row in keyed])
            self.conn.executemany("INSERT INTO late VALUES (?, ?, ?, ?, ?, ?, ?, ?)", late)

    def finish_load(self) -> None:
        """Key the rows set aside, then build the look-up indexes."""
        with translate(self.path):
            key = None
            for row in self.conn.execute("SELECT * FROM late ORDER BY nat, msg").fetchall():
                key = self._free_key(row[0] if key is None or row[0] > key else key + 1)
                self.conn.execute(_INSERT, (key, *row[1:]))
                self.conn.execute(_INDEX_TEXT, (key, row[7]))
            self.conn.execute("DROP TABLE late")
            for statement in _INDEXES:
                self.conn.execute(statement)

    def finish_build(self) -> None:
        """After the build's commit: switch the file to the write-ahead log for sharing."""
        with translate(self.path):
            self.conn.execute("PRAGMA journal_mode = WAL")

    def put(self, rows: Sequence[Row]) -> int:
        """Insert or replace rows (by ROWID), keeping the trigram index in step; how many rows
        the index gained."""
        gone = self.drop(row[1] for row in rows)
        with translate(self.path):
            top = self.conn.execute("SELECT max(key) FROM doc").fetchone()[0]
            keyed = []
            key = None
            for row in sorted(rows):
                # Above the previous key of this batch, then above any existing key in the way.
                key = row[0] if key is None or row[0] > key else key + 1
                if top is not None and key <= top:
                    key = self._free_key(key)
                keyed.append((key, *row[1:]))
            self.conn.executemany(_INSERT, keyed)
            # By hand, not by trigger: an FTS5 insert from a trigger costs ~100 times more.
            self.conn.executemany(_INDEX_TEXT, [(row[0], row[7]) for row in keyed])
        return len(rows) - gone

    def _free_key(self, natural: int) -> int:
        """The first key at or above ``natural`` that no indexed row has."""
        key = natural
        for (used,) in self.conn.execute(
                "SELECT key FROM doc WHERE key >= ? ORDER BY key", (natural,)):
            if used != key:
                break
            key += 1
        return key

    def drop(self, rowids: Iterable[int]) -> int:
        """Remove rows by ROWID; how many the index had."""
        wanted = list(rowids)
        with translate(self.path):
            old: list[tuple[int, str]] = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                old += self.conn.execute(
                    f"SELECT key, text FROM doc WHERE msg IN ({','.join('?' * len(chunk))})",
                    chunk).fetchall()
            self.conn.executemany(
                "INSERT INTO fts (fts, rowid, text) VALUES ('delete', ?, ?)", old)
            self.conn.executemany("DELETE FROM doc WHERE key = ?", [(k,) for k, _ in old])
        return len(old)

    # --- reading -------------------------------------------------------------------------------

    def count(self) -> int:
        with translate(self.path):
            return int(self.conn.execute("SELECT count(*) FROM doc").fetchone()[0])

    def recent_floor(self, natural: int) -> int | None:
        """The lowest ROWID among rows keyed at or above ``natural`` (so dated no earlier)."""
        with translate(self.path):
            value = self.conn.execute(
                "SELECT min(+msg) FROM doc WHERE key >= ?", (natural,)).fetchone()[0]
        return None if value is None else int(value)

    def marked(self, above: int) -> dict[int, tuple[int, int]]:
        """Edit marks of indexed rows past ``above`` that have any."""
        with translate(self.path):
            return {msg: (edited, retracted) for msg, edited, retracted in self.conn.execute(
                "SELECT msg, edited, retracted FROM doc WHERE msg > ?"
                " AND (edited != 0 OR retracted != 0)", (above,))}

    def pending(self, above: int) -> list[int]:
        """Voice messages past ``above``: their transcripts may have changed since."""
        with translate(self.path):
            return [r for (r,) in self.conn.execute(
                "SELECT msg FROM doc WHERE pending AND msg > ?", (above,))]

    def loose(self) -> list[tuple[int, int]]:
        """(key, ROWID) of rows the look-ups cannot vouch for: the reader checks them."""
        with translate(self.path):
            return self.conn.execute("SELECT key, msg FROM doc WHERE loose").fetchall()

    def candidates(self, how: Candidates, before: int, limit: int) -> list[tuple[int, int]]:
        """(key, ROWID) of rows with keys below ``before`` that may match, highest first."""
        with translate(self.path):
            return self.conn.execute(how.sql, (*how.params, before, limit)).fetchall()

    def trigrams_starting(self, prefix: str) -> list[str] | None:
        """Indexed trigrams that start with ``prefix`` (one or two characters), or None when
        there are more than a walk over the rows would cost."""
        with translate(self.path):
            self.conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab"
                              " USING fts5vocab(main, fts, 'row')")
            terms = [t for (t,) in self.conn.execute(
                "SELECT term FROM temp.vocab WHERE term >= ? AND term < ? LIMIT ?",
                (prefix, prefix + "\U0010ffff", _VOCAB_LIMIT + 1))]
        return None if len(terms) > _VOCAB_LIMIT else terms

    def newest(self, before: int, count: int) -> int | None:
        """The lowest of the ``count`` highest keys below ``before`` (None: fewer rows)."""
        with translate(self.path):
            row = self.conn.execute(
                "SELECT key FROM doc WHERE key < ? ORDER BY key DESC LIMIT 1 OFFSET ?",
                (before, count - 1)).fetchone()
        return None if row is None else int(row[0])

    def size(self) -> int:
        """Bytes on disk (the file and its write-ahead log)."""
        total = 0
        for suffix in ("", "-wal"):
            with suppress(OSError):
                total += os.path.getsize(self.path + suffix)
        return total

    # --- chat.db, read-only --------------------------------------------------------------------

    def db_sequence(self) -> int:
        """The highest ROWID chat.db ever handed out (AUTOINCREMENT), else its highest ROWID."""
        with translate(self.path):
            row = None
            if self.conn.execute("SELECT 1 FROM cdb.sqlite_master WHERE name ="
                                 " 'sqlite_sequence'").fetchone():
                row = self.conn.execute(
                    "SELECT seq FROM cdb.sqlite_sequence WHERE name = 'message'").fetchone()
            if row is None:
                row = self.conn.execute("SELECT max(ROWID) FROM cdb.message").fetchone()
            return int(row[0] or 0)

    def outranking(self, probe: str, floor: int, below: int, date: object, rowid: int,
                   chat_id: int | None) -> list[int]:
        """ROWIDs of rows keyed in [``floor``, ``below``) whose text contains ``probe`` (in the
        chat) and that rank above (``date``, ``rowid``) in search order: date, then ROWID,
        descending, as SQLite orders (NULL dates lowest)."""
        above = "d.date IS NOT NULL OR d.msg > ?" if date is None else (
            "d.date > ? OR (d.date = ? AND d.msg > ?)")
        order = (rowid,) if date is None else (date, date, rowid)
        chat, extra = _chat_filter(chat_id)
        with translate(self.path):
            return [r for (r,) in self.conn.execute(
                "SELECT d.msg FROM doc d WHERE d.key >= ? AND d.key < ? AND instr(d.text, ?) > 0"
                f" AND ({above}){chat}", (floor, below, probe, *order, *extra))]

    def db_date(self, rowid: int) -> object:
        """``message.date`` of one row as chat.db has it now."""
        with translate(self.path):
            row = self.conn.execute(
                "SELECT date FROM cdb.message WHERE ROWID = ?", (rowid,)).fetchone()
        return None if row is None else row[0]

    def db_guids(self, rowids: Sequence[int]) -> dict[int, str]:
        with translate(self.path):
            marks = ",".join("?" * len(rowids))
            return dict(self.conn.execute(
                f"SELECT ROWID, guid FROM cdb.message WHERE ROWID IN ({marks})", rowids))

    def db_count(self, upto: int) -> int:
        """chat.db's rows with ROWIDs up to ``upto`` (all of them counted on Apple's smallest
        index, then the few above subtracted: a bounded count would read the whole table)."""
        with translate(self.path):
            total = self.conn.execute("SELECT count(*) FROM cdb.message").fetchone()[0]
            above = self.conn.execute(
                "SELECT count(*) FROM cdb.message WHERE ROWID > ?", (upto,)).fetchone()[0]
            return int(total) - int(above)

    def db_chat_size(self, chat_id: int, cap: int) -> int:
        """How many rows the chat has, counting no further than ``cap``."""
        with translate(self.path):
            return int(self.conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM cdb.chat_message_join WHERE chat_id = ?"
                " LIMIT ?)", (chat_id, cap)).fetchone()[0])

    def differences(self, upto: int) -> tuple[list[int], list[int]]:
        """(indexed rows chat.db no longer has, chat.db rows never indexed), ROWIDs <= upto."""
        with translate(self.path):
            gone = [r for (r,) in self.conn.execute(
                "SELECT msg FROM doc WHERE msg <= ? AND msg NOT IN"
                " (SELECT ROWID FROM cdb.message WHERE ROWID <= ?)", (upto, upto))]
            missing = [r for (r,) in self.conn.execute(
                "SELECT ROWID FROM cdb.message WHERE ROWID <= ? AND ROWID NOT IN"
                " (SELECT msg FROM doc WHERE msg <= ?)", (upto, upto))]
            return gone, missing


def _chat_filter(chat_id: int | None) -> tuple[str, tuple[Any, ...]]:
    if chat_id is None:
        return "", ()
    return (" AND EXISTS (SELECT 1 FROM cdb.chat_message_join j WHERE j.chat_id = ?"
            " AND j.message_id = d.msg)", (chat_id,))


def _fts_match(grams: Iterable[str], joiner: str) -> str:
    return joiner.join('"' + gram.replace('"', '""') + '"' for gram in grams)


def _fts_candidates(match: str, needle: str, chat_id: int | None) -> Candidates:
    """Rows the FTS ``match`` finds whose text really contains ``needle``, newest first."""
    chat, extra = _chat_filter(chat_id)
    return Candidates(
        "SELECT d.key, d.msg FROM fts JOIN doc d ON d.key = fts.rowid WHERE fts MATCH ?"
        " AND instr(d.text, ?) > 0" + chat + " AND fts.rowid < ? ORDER BY fts.rowid DESC LIMIT ?",
        (match, needle, *extra))


def exact_candidates(needle: str, chat_id: int | None) -> Candidates:
    """Rows with a text whose exact code is the needle's."""
    code = exact_code(needle)
    return _fts_candidates(_fts_match([code], ""), code, chat_id)


def trigram_candidates(needle: str, chat_id: int | None) -> Candidates:
    """Rows with all of the needle's trigrams (at most 24 of them), confirmed by ``instr``."""
    grams = sorted({needle[i:i + 3] for i in range(len(needle) - 2)})
    if len(grams) > 24:
        grams = [grams[i * len(grams) // 24] for i in range(24)]
    return _fts_candidates(_fts_match(grams, " AND "), needle, chat_id)


def prefix_candidates(needle: str, terms: Sequence[str], chat_id: int | None) -> Candidates:
    """Rows with a trigram starting with the (one- or two-character) needle: every row that
    contains it, as every character of the texts starts a trigram."""
    return _fts_candidates(_fts_match(terms, " OR "), needle, chat_id)


def walk_candidates(needle: str, chat_id: int | None, floor: int | None = None) -> Candidates:
    """Every row containing the needle (with a key of at least ``floor``), walking rows newest
    first: it stops at the limit, or at ``floor``."""
    chat, extra = _chat_filter(chat_id)
    bound, low = ("d.key >= ? AND ", (floor,)) if floor is not None else ("", ())
    return Candidates(f"SELECT d.key, d.msg FROM doc d WHERE {bound}instr(d.text, ?) > 0" + chat +
                      " AND d.key < ? ORDER BY d.key DESC LIMIT ?", (*low, needle, *extra))
