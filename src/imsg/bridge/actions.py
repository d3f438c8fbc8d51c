"""The helper's actions: which change something (mutations), and how long each may take.

Deadlines are the Swift tool's: 10 s by default, 150 s for the sends and the other actions
that may wait on the network (``LONG``), 3 s for ``imsg status``'s probe. ``IMSG_BRIDGE_TIMEOUT``
(seconds, a positive number) replaces all of them, for slow machines and for tests.

A mutation's failure is a delivery failure (``SendError`` with a disposition); anything else
fails as ``BridgeError``/``BridgeUnavailable``. ``typing``, ``read`` and the ``mark-*``
actions count as mutations: RPC runs them in the mutation lane, and an unknown outcome there
must block later mutations like any other.
"""

from __future__ import annotations

import math
import os

DEFAULT_DEADLINE_S = 10.0
LONG_DEADLINE_S = 150.0
PROBE_DEADLINE_S = 3.0

LONG = frozenset({
    "send-message", "send-rich-link", "send-multipart", "send-attachment", "send-sticker",
    "send-poll", "send-poll-vote", "send-poll-unvote", "send-reaction", "create-chat",
    "share-nickname",
})

MUTATIONS = LONG | frozenset({
    "typing", "start-typing", "stop-typing", "read", "mark-chat-read", "mark-chat-unread",
    "edit-message", "unsend-message", "delete-message", "notify-anyways", "add-participant",
    "remove-participant", "set-display-name", "update-group-photo", "leave-chat", "delete-chat",
    "download-purged-attachment",
})


def is_mutation(action: str) -> bool:
    return action in MUTATIONS


def deadline_s(action: str) -> float:
    """How long ``action`` may take before its outcome is reclaimed."""
    override = _override()
    if override is not None:
        return override
    return LONG_DEADLINE_S if action in LONG else DEFAULT_DEADLINE_S


def probe_deadline_s() -> float:
    override = _override()
    return PROBE_DEADLINE_S if override is None else override


def _override() -> float | None:
    text = os.environ.get("IMSG_BRIDGE_TIMEOUT", "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None
