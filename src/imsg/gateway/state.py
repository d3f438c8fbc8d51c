"""The gateway's durable state: one SQLite database, ``<state dir>/gateway.sqlite``.

Tables (every row carries its account, so accounts never see each other's state):

- ``ingress``: the journal. Every message the child reports is inserted (by GUID) *in the same
  transaction* that advances the account's cursor, so a cursor never covers a message that is
  not journaled. ``pending`` rows still have to be decided or handled; ``done`` rows are
  tombstones (payload dropped) kept ``TOMBSTONE_S`` so a replay is recognized, then pruned.
- ``cursors``: per account, the ROWID a resumed watch starts after.
- ``pairing_requests`` / ``approvals``: the pairing store (codes unique across accounts;
  denied requests stay, silent, until they expire, so a denied stranger is not re-answered).
- ``sends``: texts sent by other processes (``imsg gateway send``), so the running gateway
  knows their echoes too.
- ``accounts``: the last error and the last probe of each account, for ``gateway status``.

Two processes (the gateway and ``imsg pairing approve``) share the file: WAL mode, a 5 s busy
timeout, and ``BEGIN IMMEDIATE`` around every read-modify-write, so no update is lost.
Every sqlite3 failure surfaces as ``StateError`` naming the file and the operation.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from imsg.errors import PairingNotFound, StateError

FILE_NAME = "gateway.sqlite"
SCHEMA_VERSION = 1
TOMBSTONE_S = 4 * 3600.0
TOMBSTONE_CAP = 10_000
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
PAIRING_TTL_S = 3600.0
PAIRING_MAX_PENDING = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (
    account TEXT PRIMARY KEY, rowid INTEGER NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ingress (
    account TEXT NOT NULL, guid TEXT NOT NULL, rowid INTEGER NOT NULL, payload TEXT,
    replay INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL, reason TEXT,
    received_at REAL NOT NULL, done_at REAL, PRIMARY KEY (account, guid));
CREATE INDEX IF NOT EXISTS ingress_by_status ON ingress (account, status, rowid);
CREATE TABLE IF NOT EXISTS pairing_requests (
    account TEXT NOT NULL, sender TEXT NOT NULL, code TEXT NOT NULL UNIQUE, chat_id INTEGER,
    created_at REAL NOT NULL, last_seen_at REAL NOT NULL, denied INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, sender));
CREATE TABLE IF NOT EXISTS approvals (
    account TEXT NOT NULL, sender TEXT NOT NULL, code TEXT, approved_at REAL NOT NULL,
    PRIMARY KEY (account, sender));
CREATE TABLE IF NOT EXISTS sends (
    id INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, scope TEXT NOT NULL,
    text TEXT NOT NULL, ids TEXT NOT NULL, file_name TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    account TEXT PRIMARY KEY, last_error TEXT, last_error_at REAL, probe TEXT,
    probe_at REAL);
"""


@dataclass(frozen=True)
class PairingRequest:
    account: str
    sender: str
    code: str
    chat_id: int | None
    created_at: float
    last_seen_at: float

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "code": self.code, "sender": self.sender,
                "chat_id": self.chat_id, "created_at": self.created_at,
                "last_seen_at": self.last_seen_at,
                "expires_at": self.created_at + PAIRING_TTL_S}


@dataclass(frozen=True)
class Journaled:
    guid: str
    rowid: int
    payload: str
    replay: bool
    received_at: float


@dataclass(frozen=True)
class RecordedSend:
    id: int
    scope: str
    text: str
    ids: tuple[str, ...]
    file_name: str
    at: float


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


class State:
    """The state database. Not thread-safe: one per thread (the gateway's event loop, or a
    CLI command)."""

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, FILE_NAME)
        try:
            os.makedirs(state_dir, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create the state directory {state_dir}: "
                             f"{exc.strerror or exc}") from None
        with self._translate("open"):
            self.conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA busy_timeout=5000")
            self.conn.executescript(_SCHEMA)
            with self._write():
                row = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                if row is None:
                    self.conn.execute("INSERT INTO meta VALUES ('schema', ?)",
                                      (str(SCHEMA_VERSION),))
                elif int(row[0]) > SCHEMA_VERSION:
                    raise StateError(f"{self.path} was written by a newer imsg (schema "
                                     f"{row[0]}); upgrade imsg")
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StateError(f"state database {self.path}: {what} failed: {exc}") from None

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction (``BEGIN IMMEDIATE``: the write lock up front)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # --- cursor and journal ------------------------------------------------------------------

    def cursor(self, account: str) -> int | None:
        with self._translate("reading the cursor"):
            row = self.conn.execute("SELECT rowid FROM cursors WHERE account = ?",
                                    (account,)).fetchone()
        return int(row[0]) if row else None

    def set_cursor(self, account: str, rowid: int, *, lower: bool = False) -> None:
        """Advance the cursor to ``rowid`` (never backwards unless ``lower``)."""
        with self._translate("writing the cursor"), self._write():
            self._move_cursor(account, rowid, lower)

    def _move_cursor(self, account: str, rowid: int, lower: bool = False) -> None:
        pick = "excluded.rowid" if lower else "MAX(rowid, excluded.rowid)"
        self.conn.execute(
            "INSERT INTO cursors (account, rowid, updated_at) VALUES (?, ?, ?) "
            f"ON CONFLICT (account) DO UPDATE SET rowid = {pick}, "
            "updated_at = excluded.updated_at", (account, rowid, time.time()))

    def admit(self, account: str, rows: Sequence[tuple[str, int, str]], *,
              cursor: int | None, replay: bool = False, now: float | None = None) -> list[bool]:
        """Journal ``(guid, rowid, payload)`` rows as pending and advance the cursor to
        ``cursor``, atomically; per row, True when it was new (False: already journaled)."""
        at = time.time() if now is None else now
        fresh = []
        with self._translate("journaling messages"), self._write():
            for guid, rowid, payload in rows:
                cur = self.conn.execute(
                    "INSERT OR IGNORE INTO ingress (account, guid, rowid, payload, replay, "
                    "status, received_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                    (account, guid, rowid, payload, int(replay), at))
                fresh.append(cur.rowcount == 1)
            if cursor is not None:
                self._move_cursor(account, cursor)
        return fresh

    def finish(self, account: str, guids: Iterable[str], reason: str, *,
               status: str = "done", now: float | None = None) -> None:
        """Turn pending rows into tombstones (payload dropped)."""
        at = time.time() if now is None else now
        with self._translate("finishing messages"), self._write():
            self.conn.executemany(
                "UPDATE ingress SET status = ?, reason = ?, payload = NULL, done_at = ? "
                "WHERE account = ? AND guid = ?",
                [(status, reason[:200], at, account, guid) for guid in guids])

    def pending(self, account: str, *, after: int = -1 << 62,
                limit: int = -1) -> list[Journaled]:
        """Rows journaled but not finished with a ROWID above ``after``, oldest first (at
        most ``limit``; -1: all)."""
        with self._translate("reading the journal"):
            rows = self.conn.execute(
                "SELECT guid, rowid, payload, replay, received_at FROM ingress WHERE "
                "account = ? AND status = 'pending' AND rowid > ? ORDER BY rowid LIMIT ?",
                (account, after, limit)).fetchall()
        return [Journaled(g, int(r), p or "{}", bool(rp), float(at))
                for g, r, p, rp, at in rows]

    def pending_count(self, account: str, *, after: int = -1 << 62,
                      replay_only: bool = False) -> int:
        with self._translate("reading the journal"):
            (count,) = self.conn.execute(
                "SELECT COUNT(*) FROM ingress WHERE account = ? AND status = 'pending' AND "
                "rowid > ? AND replay >= ?", (account, after, int(replay_only))).fetchone()
        return int(count)

    def skip_oldest_replays(self, account: str, count: int, reason: str, *,
                            after: int = -1 << 62,
                            now: float | None = None) -> tuple[int, int]:
        """Finish (as skipped) the ``count`` oldest pending replay rows above ``after``; their
        first and last ROWID."""
        at = time.time() if now is None else now
        oldest = ("SELECT guid, rowid FROM ingress WHERE account = ? AND status = 'pending' "
                  "AND replay = 1 AND rowid > ? ORDER BY rowid LIMIT ?")
        with self._translate("skipping rows"), self._write():
            first, last = self.conn.execute(
                f"SELECT MIN(rowid), MAX(rowid) FROM ({oldest})",
                (account, after, count)).fetchone()
            self.conn.execute(
                "UPDATE ingress SET status = 'skipped', reason = ?, payload = NULL, "
                f"done_at = ? WHERE account = ? AND guid IN (SELECT guid FROM ({oldest}))",
                (reason[:200], at, account, account, after, count))
        return int(first or 0), int(last or 0)

    def rearrive_pending(self, account: str, *, now: float | None = None) -> int:
        """Rows a previous run left pending count as replays arriving now (so the replay
        bounds apply to them); how many."""
        at = time.time() if now is None else now
        with self._translate("reading the journal"), self._write():
            return self.conn.execute(
                "UPDATE ingress SET replay = 1, received_at = ? WHERE account = ? AND "
                "status = 'pending'", (at, account)).rowcount

    def counts(self, account: str) -> dict[str, int]:
        with self._translate("reading the journal"):
            rows = self.conn.execute("SELECT status, COUNT(*) FROM ingress WHERE account = ? "
                                     "GROUP BY status", (account,)).fetchall()
        return {status: int(count) for status, count in rows}

    def prune(self, account: str, now: float | None = None) -> int:
        """Drop tombstones older than ``TOMBSTONE_S`` and beyond ``TOMBSTONE_CAP``."""
        at = time.time() if now is None else now
        with self._translate("pruning the journal"), self._write():
            old = self.conn.execute(
                "DELETE FROM ingress WHERE account = ? AND status != 'pending' AND "
                "done_at < ?", (account, at - TOMBSTONE_S)).rowcount
            over = self.conn.execute(
                "DELETE FROM ingress WHERE account = ? AND status != 'pending' AND guid IN ("
                "SELECT guid FROM ingress WHERE account = ? AND status != 'pending' "
                "ORDER BY done_at DESC LIMIT -1 OFFSET ?)",
                (account, account, TOMBSTONE_CAP)).rowcount
            self.conn.execute("DELETE FROM sends WHERE at < ?", (at - 3600,))
        return old + over

    # --- pairing -------------------------------------------------------------------------------

    def _prune_pairing(self, now: float) -> None:
        self.conn.execute("DELETE FROM pairing_requests WHERE created_at < ?",
                          (now - PAIRING_TTL_S,))

    def request_pairing(self, account: str, sender: str, chat_id: int | None, *,
                        now: float | None = None) -> tuple[PairingRequest | None, bool]:
        """The sender's pending request, created if there is room: ``(request, created)``.
        ``(None, False)`` when the account already has ``PAIRING_MAX_PENDING`` requests (or
        the sender was denied within the hour): nobody is answered then."""
        at = time.time() if now is None else now
        with self._translate("recording a pairing request"), self._write():
            self._prune_pairing(at)
            row = self.conn.execute(
                "SELECT code, chat_id, created_at, denied FROM pairing_requests "
                "WHERE account = ? AND sender = ?", (account, sender)).fetchone()
            if row is not None:
                self.conn.execute("UPDATE pairing_requests SET last_seen_at = ? WHERE "
                                  "account = ? AND sender = ?", (at, account, sender))
                if row[3]:
                    return None, False
                return PairingRequest(account, sender, row[0], row[1], row[2], at), False
            (count,) = self.conn.execute(
                "SELECT COUNT(*) FROM pairing_requests WHERE account = ? AND denied = 0",
                (account,)).fetchone()
            if count >= PAIRING_MAX_PENDING:
                return None, False
            for _ in range(500):
                code = new_code()
                taken = self.conn.execute("SELECT 1 FROM pairing_requests WHERE code = ?",
                                          (code,)).fetchone()
                if taken is None:
                    break
            else:
                raise StateError("could not draw an unused pairing code")
            self.conn.execute(
                "INSERT INTO pairing_requests (account, sender, code, chat_id, created_at, "
                "last_seen_at) VALUES (?, ?, ?, ?, ?, ?)",
                (account, sender, code, chat_id, at, at))
        return PairingRequest(account, sender, code, chat_id, at, at), True

    def pairing_requests(self, account: str | None = None, *,
                         now: float | None = None) -> list[PairingRequest]:
        at = time.time() if now is None else now
        with self._translate("listing pairing requests"), self._write():
            self._prune_pairing(at)
            rows = self.conn.execute(
                "SELECT account, sender, code, chat_id, created_at, last_seen_at FROM "
                "pairing_requests WHERE denied = 0 AND (? IS NULL OR account = ?) "
                "ORDER BY created_at", (account, account)).fetchall()
        return [PairingRequest(*row) for row in rows]

    def _take_request(self, code: str, now: float) -> PairingRequest:
        self._prune_pairing(now)
        row = self.conn.execute(
            "SELECT account, sender, code, chat_id, created_at, last_seen_at FROM "
            "pairing_requests WHERE code = ? AND denied = 0",
            (code.strip().upper(),)).fetchone()
        if row is None:
            raise PairingNotFound(code)
        return PairingRequest(*row)

    def approve(self, code: str, *, now: float | None = None) -> PairingRequest:
        """Approve a pending code (case-insensitive): the sender may write in direct chats.
        Raises PairingNotFound."""
        at = time.time() if now is None else now
        with self._translate("approving"), self._write():
            request = self._take_request(code, at)
            self.conn.execute("DELETE FROM pairing_requests WHERE code = ?", (request.code,))
            self.conn.execute(
                "INSERT OR REPLACE INTO approvals (account, sender, code, approved_at) "
                "VALUES (?, ?, ?, ?)", (request.account, request.sender, request.code, at))
        return request

    def deny(self, code: str, *, now: float | None = None) -> PairingRequest:
        """Refuse a pending code; the sender gets no new code until the request expires.
        Raises PairingNotFound."""
        at = time.time() if now is None else now
        with self._translate("denying"), self._write():
            request = self._take_request(code, at)
            self.conn.execute("UPDATE pairing_requests SET denied = 1 WHERE code = ?",
                              (request.code,))
        return request

    def approved(self, account: str) -> frozenset[str]:
        """Senders approved by pairing for ``account``'s direct chats."""
        with self._translate("reading approvals"):
            rows = self.conn.execute("SELECT sender FROM approvals WHERE account = ?",
                                     (account,)).fetchall()
        return frozenset(row[0] for row in rows)

    # --- sends by other processes, account status --------------------------------------------

    def record_send(self, account: str, scope: str, *, text: str, ids: Iterable[object],
                    file_name: str = "", now: float | None = None) -> None:
        at = time.time() if now is None else now
        with self._translate("recording a send"), self._write():
            self.conn.execute(
                "INSERT INTO sends (account, scope, text, ids, file_name, at) VALUES "
                "(?, ?, ?, ?, ?, ?)",
                (account, scope, text, json.dumps([str(i) for i in ids if i is not None]),
                 file_name, at))

    def sends_after(self, account: str, after_id: int) -> list[RecordedSend]:
        with self._translate("reading sends"):
            rows = self.conn.execute(
                "SELECT id, scope, text, ids, file_name, at FROM sends WHERE account = ? "
                "AND id > ? ORDER BY id", (account, after_id)).fetchall()
        return [RecordedSend(int(i), s, t, tuple(json.loads(ids)), f, float(a))
                for i, s, t, ids, f, a in rows]

    def last_send_id(self) -> int:
        with self._translate("reading sends"):
            row = self.conn.execute("SELECT MAX(id) FROM sends").fetchone()
        return int(row[0] or 0)

    def record_error(self, account: str, error: str | None, *,
                     now: float | None = None) -> None:
        at = time.time() if now is None else now
        with self._translate("recording an error"), self._write():
            self.conn.execute(
                "INSERT INTO accounts (account, last_error, last_error_at) VALUES (?, ?, ?) "
                "ON CONFLICT (account) DO UPDATE SET last_error = excluded.last_error, "
                "last_error_at = excluded.last_error_at", (account, error, at))

    def record_probe(self, account: str, probe: dict[str, Any], *,
                     now: float | None = None) -> None:
        at = time.time() if now is None else now
        with self._translate("recording a probe"), self._write():
            self.conn.execute(
                "INSERT INTO accounts (account, probe, probe_at) VALUES (?, ?, ?) "
                "ON CONFLICT (account) DO UPDATE SET probe = excluded.probe, "
                "probe_at = excluded.probe_at", (account, json.dumps(probe), at))

    def account_status(self, account: str) -> dict[str, Any]:
        with self._translate("reading account status"):
            row = self.conn.execute(
                "SELECT last_error, last_error_at, probe, probe_at FROM accounts WHERE "
                "account = ?", (account,)).fetchone()
        if row is None:
            return {}
        return {"last_error": row[0], "last_error_at": row[1],
                "probe": json.loads(row[2]) if row[2] else None, "probe_at": row[3]}

    def accounts(self) -> list[str]:
        """Every account this state database knows of."""
        with self._translate("listing accounts"):
            rows = self.conn.execute(
                "SELECT account FROM cursors UNION SELECT account FROM pairing_requests "
                "UNION SELECT account FROM approvals UNION SELECT account FROM accounts "
                "ORDER BY 1").fetchall()
        return [row[0] for row in rows]
