"""What a method handler gets: the database as an optional resource, the caller's
subscriptions, what the server knows of permissions.

The database (protocol v1 §1.6) is opened lazily, per worker thread (so reads run in parallel
on their own SQLite connections), and never cached as a failure: every call that needs it tries
again, so granting Full Disk Access or creating the file later works without a restart. A
connection is reused only while the configured path still names the same file (device and
inode); when the file is replaced the next call opens the new one. Failures are the
``DatabaseUnavailable`` family (RPC -32002) or another ``DatabaseError``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from imsg.chatdb.connection import (
    Schema,
    connect_readonly,
    default_db_path,
    probe_schema,
    stat_database,
)
from imsg.errors import (
    BRIDGE_NOT_STARTED,
    BridgeUnavailable,
)

if TYPE_CHECKING:
    from imsg.bridge.client import BridgeClient
    from imsg.bridge.probe import HelperStatus
    from imsg.chatdb.reader import ChatDB

Identity = tuple[int, int]


def _identity(path: str) -> Identity:
    st = stat_database(path)
    return st.st_dev, st.st_ino


class Database:
    def __init__(self, path: str | None) -> None:
        self.path = os.path.abspath(os.path.expanduser(path or default_db_path()))
        self._lock = threading.Lock()
        self._open: dict[int, tuple[Identity, ChatDB]] = {}  # thread id → connection

    def get(self) -> ChatDB:
        """This thread's connection to the file the path names now; raises imsg errors."""
        identity = _identity(self.path)
        key = threading.get_ident()
        with self._lock:
            current = self._open.get(key)
        if current is not None:
            if current[0] == identity:
                return current[1]
            current[1].close()
        from imsg.chatdb.reader import ChatDB  # the first read pays for it, not the start

        db = ChatDB(self.path)
        with self._lock:
            self._open[key] = (identity, db)
        return db

    def schema(self) -> Schema:
        """The columns of the database the path names now (what ``status`` reports): from
        this thread's open connection, else from a short-lived one, so answering ``status``
        or ``initialize`` does not load the reader. Raises what ``get`` raises."""
        identity = _identity(self.path)
        with self._lock:
            current = self._open.get(threading.get_ident())
        if current is not None and current[0] == identity:
            return current[1].schema
        conn = connect_readonly(self.path)
        try:
            return probe_schema(conn, self.path)
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            opened, self._open = list(self._open.values()), {}
        for _, db in opened:
            db.close()


class Subscriptions(Protocol):
    def __len__(self) -> int: ...

    def cancel(self, subscription: int) -> None: ...


@dataclass
class Permissions:
    """What the server has learned about macOS permissions (shared by all clients)."""

    full_disk_access: str = "unknown"
    automation: str = "unknown"


class BridgeState(Protocol):
    def snapshot(self) -> dict[str, Any]:
        """The ``bridge`` object of ``status`` (never launches anything)."""
        ...

    def client(self) -> BridgeClient:
        """The non-launching client bridge methods call (``imsg.bridge.client``)."""
        ...

    def helper(self) -> HelperStatus | None:
        """The running helper's reported status (briefly cached); None without one."""
        ...


class NoBridge:
    """No injected helper is known to this process: bridge methods fail -32003."""

    def snapshot(self) -> dict[str, Any]:
        return {"ready": False, "error": BRIDGE_NOT_STARTED}

    def client(self) -> BridgeClient:
        raise BridgeUnavailable()

    def helper(self) -> HelperStatus | None:
        return None


@dataclass
class Context:
    db: Database
    subscriptions: Subscriptions
    transport: str = "stdio"
    permissions: Permissions = field(default_factory=Permissions)
    bridge: BridgeState = field(default_factory=NoBridge)
