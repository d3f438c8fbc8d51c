"""The helper's ``status`` action, and the ``bridge`` object of RPC ``status``/``initialize``.

``probe`` asks a running helper (never launching one) within the probe deadline and keeps
what it reported: ``bridge_version`` (an integer, when sent), ``v2_ready``,
``registry_available``, ``selectors`` (booleans only; anything else is dropped),
``helper_version``, ``attachment_metadata`` and client-message-GUID support (the helper's key
name is not settled: ``client_message_guid`` or ``client_message_guid_reservation``, or
the ``clientMessageGuid`` selector).

``rpc_bridge`` builds the protocol v1 ``bridge`` object with the Swift tool's texts:

- no ready lock: ``{"ready": false, "error": <not started>}``, no probe;
- the probe failed: ``{"ready": false, "error": <did not answer>}``;
- answered: ``ready`` (bridge_version present, v2 inbox and chat registry both ready),
  ``bridge_version``, ``v2_ready``, ``registry_available``, ``selectors``, and ``error`` when
  not ready.

It also carries ``events_available`` (the events file is a readable regular file), which the
method catalog uses for ``bridge.events.subscribe`` and ``status`` strips from its output.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Any

from imsg.bridge import actions
from imsg.bridge.client import BridgeClient
from imsg.bridge.container import Container
from imsg.errors import BRIDGE_NOT_STARTED

NO_ANSWER = "The existing bridge did not answer a non-launching status probe."
NOT_READY = "The running bridge did not report a ready v2 inbox and chat registry."


@dataclass(frozen=True)
class HelperStatus:
    bridge_version: int | None = None
    v2_ready: bool = False
    registry_available: bool = False
    selectors: dict[str, bool] = field(default_factory=dict)
    helper_version: str | None = None
    attachment_metadata: bool = False
    client_message_guid: bool = False

    @property
    def ready(self) -> bool:
        return (self.bridge_version is not None and self.v2_ready
                and self.registry_available)

    def selector(self, name: str) -> bool:
        return self.selectors.get(name) is True

    @classmethod
    def parse(cls, data: dict[str, Any]) -> HelperStatus:
        version = data.get("bridge_version")
        raw_selectors = data.get("selectors")
        selectors = ({str(k): v for k, v in raw_selectors.items() if isinstance(v, bool)}
                     if isinstance(raw_selectors, dict) else {})
        helper = data.get("helper_version")
        guid_support = any(data.get(key) is True for key in (
            "client_message_guid", "client_message_guid_reservation",
            "clientMessageGuid")) or selectors.get("clientMessageGuid") is True
        return cls(
            bridge_version=version if isinstance(version, int)
            and not isinstance(version, bool) else None,
            v2_ready=data.get("v2_ready") is True,
            registry_available=data.get("registry_available") is True,
            selectors=selectors,
            helper_version=helper if isinstance(helper, str) and helper else None,
            attachment_metadata=data.get("attachment_metadata") is True,
            client_message_guid=guid_support,
        )


def probe(client: BridgeClient, timeout_s: float | None = None) -> HelperStatus:
    """Ask the running helper for its status; raises BridgeUnavailable (no ready lock) or
    BridgeError (no valid answer in time)."""
    deadline = actions.probe_deadline_s() if timeout_s is None else timeout_s
    return HelperStatus.parse(client.call("status", timeout_s=deadline, mutation=False))


def rpc_bridge(ready_lock: bool, status: HelperStatus | None,
               events_available: bool) -> dict[str, Any]:
    """The ``bridge`` object (module docstring); ``status`` None means the probe failed."""
    if not ready_lock:
        return {"ready": False, "error": BRIDGE_NOT_STARTED, "events_available": False}
    if status is None:
        return {"ready": False, "error": NO_ANSWER, "events_available": False}
    out: dict[str, Any] = {"ready": status.ready}
    if status.bridge_version is not None:
        out["bridge_version"] = status.bridge_version
    out.update(v2_ready=status.v2_ready, registry_available=status.registry_available,
               selectors=dict(status.selectors))
    if not status.ready:
        out["error"] = NOT_READY
    out["events_available"] = events_available
    return out


def events_usable(container: Container) -> bool:
    """The events file is a regular file (a symlink is not) this process can read."""
    try:
        info = os.lstat(container.events)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and os.access(container.events, os.R_OK)
