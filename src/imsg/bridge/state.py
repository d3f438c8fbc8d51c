"""What an RPC server knows of the bridge: a non-launching client and a briefly cached probe.

``snapshot()`` is the ``bridge`` object of ``status`` (``probe.rpc_bridge``); ``helper()`` the
last probe's ``HelperStatus`` (None without a ready lock or when the helper did not answer).
A probe is reused for ``CACHE_S``: ``status`` calls and bridge methods that check a
capability do not each cost a round trip through the helper's 100 ms inbox scan. One probe
runs at a time; concurrent callers wait for it and share its result. Nothing here launches,
kills or relaunches Messages.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from imsg.bridge.client import BridgeClient
from imsg.bridge.container import Container
from imsg.bridge.probe import HelperStatus, events_usable, probe, rpc_bridge
from imsg.errors import ImsgError

CACHE_S = 2.0


class BridgeState:
    def __init__(self, client: BridgeClient | None = None, cache_s: float = CACHE_S) -> None:
        self._client = client or BridgeClient(Container.default())
        self._cache_s = cache_s
        self._lock = threading.Lock()
        self._at = -float("inf")
        self._status: HelperStatus | None = None

    def client(self) -> BridgeClient:
        return self._client

    def helper(self) -> HelperStatus | None:
        """The helper's status (cached for ``cache_s``), None without an answering helper."""
        if not self._client.ready():
            return None
        with self._lock:
            if time.monotonic() - self._at >= self._cache_s:
                try:
                    self._status = probe(self._client)
                except ImsgError:
                    self._status = None
                self._at = time.monotonic()
            return self._status

    def snapshot(self) -> dict[str, Any]:
        lock = self._client.ready()
        status = self.helper() if lock else None
        return rpc_bridge(lock, status, events_usable(self._client.container))
