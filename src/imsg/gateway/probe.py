"""What the child can do: the probe, and the newest ROWID (the first start's cursor).

``probe`` asks ``initialize {protocol_version: 1}`` (protocol v1); a child that answers
-32601 (or -32602: it does not speak v1) is asked ``status``, and one without that either is
probed with ``chats.list {limit: 1}``, as older gateways did. The answer becomes a
``ChildInfo``: the methods it lists (a child that lists none gets the five every imsg has),
whether its database and its bridge are ready. Bridge features are used only when
``bridge.ready`` is true *and* the method is listed; otherwise they are left out silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from imsg.errors import INVALID_PARAMS
from imsg.gateway.client import RpcClient, RpcError
from imsg.rpc.errors import MethodNotFound

CORE_METHODS = frozenset({"chats.list", "messages.history", "watch.subscribe",
                          "watch.unsubscribe", "send"})


@dataclass(frozen=True)
class ChildInfo:
    probe_method: str
    version: str | None = None
    protocol_version: int | None = None
    methods: frozenset[str] | None = None
    database_ready: bool | None = None
    database_error: str | None = None
    bridge_ready: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def has(self, method: str) -> bool:
        return method in (self.methods if self.methods is not None else CORE_METHODS)

    def bridge(self, method: str) -> bool:
        """Whether a bridge method may be called: bridge ready and the method listed."""
        return self.bridge_ready and self.methods is not None and method in self.methods

    @property
    def catch_up(self) -> bool:
        """Whether ``messages.after`` paging is available."""
        return self.methods is not None and "messages.after" in self.methods

    @property
    def health_method(self) -> tuple[str, dict[str, Any]]:
        if self.probe_method == "chats.list":
            return "chats.list", {"limit": 1}
        return "status", {}

    def to_json(self) -> dict[str, Any]:
        return {"probe": self.probe_method, "version": self.version,
                "protocol_version": self.protocol_version,
                "methods": sorted(self.methods) if self.methods is not None else None,
                "database": {"ready": self.database_ready, "error": self.database_error},
                "bridge": {"ready": self.bridge_ready}}


def info_from_snapshot(method: str, snapshot: Any) -> ChildInfo:
    snap = snapshot if isinstance(snapshot, dict) else {}
    methods = snap.get("methods")
    if not isinstance(methods, list):
        methods = snap.get("rpc_methods")
    database: dict[str, Any] = snap["database"] if isinstance(snap.get("database"), dict) else {}
    bridge: dict[str, Any] = snap["bridge"] if isinstance(snap.get("bridge"), dict) else {}
    error = database.get("error")
    protocol = snap.get("protocol_version")
    return ChildInfo(
        probe_method=method,
        version=snap.get("version") if isinstance(snap.get("version"), str) else None,
        protocol_version=protocol if isinstance(protocol, int) else None,
        methods=(frozenset(m for m in methods if isinstance(m, str))
                 if isinstance(methods, list) else None),
        database_ready=database.get("ready") if isinstance(database.get("ready"), bool)
        else None,
        database_error=error if isinstance(error, str) else None,
        bridge_ready=bridge.get("ready") is True,
        raw=snap,
    )


async def probe(client: RpcClient, timeout: float) -> ChildInfo:
    """Probe the child. Raises RpcError (an answer that is not "not supported") and the
    client's ClientGone/CallTimeout."""
    try:
        return info_from_snapshot(
            "initialize",
            await client.request("initialize", {"protocol_version": 1}, timeout=timeout))
    except RpcError as err:
        if err.code not in (MethodNotFound.CODE, INVALID_PARAMS):
            raise
    try:
        return info_from_snapshot("status", await client.request("status", {},
                                                                 timeout=timeout))
    except RpcError as err:
        if err.code != MethodNotFound.CODE:
            raise
    await client.request("chats.list", {"limit": 1}, timeout=timeout)
    return ChildInfo("chats.list")


async def newest_rowid(client: RpcClient, timeout: float) -> int:
    """The ROWID of the newest message of the most recently active chat (0: none): where a
    first start begins, so nothing older is taken for new."""
    listed = await client.request("chats.list", {"limit": 1}, timeout=timeout)
    chats = listed.get("chats") if isinstance(listed, dict) else None
    if not chats or not isinstance(chats[0], dict) or not isinstance(chats[0].get("id"), int):
        return 0
    history = await client.request("messages.history", {"chat_id": chats[0]["id"], "limit": 1},
                                   timeout=timeout)
    messages = history.get("messages") if isinstance(history, dict) else None
    if messages and isinstance(messages[0], dict) and isinstance(messages[0].get("id"), int):
        return int(messages[0]["id"])
    return 0
