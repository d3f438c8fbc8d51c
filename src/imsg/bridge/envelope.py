"""Request and response files: what imsg writes, and how it reads what the helper wrote.

A v2 request is ``{"v":2,"id":"<ID>","action":"<action>","params":{…}}`` (UTF-8 JSON, params
in the helper's camelCase). A legacy v1 command is ``{"id":<ms>,"action":…,"params":{…}}``.

A response is untrusted input. ``parse_response`` accepts it only when it is at most
``MAX_RESPONSE_BYTES``, UTF-8 JSON, an object, with ``id`` equal to the request's, ``success`` a
boolean, ``v`` (when present) equal to the protocol's, ``data`` (when present) an object and
``error`` (when present) a string; anything else raises ``Malformed`` saying what was wrong.
Older helpers put the payload at the top level: without ``data`` the payload is the object
minus ``v``, ``id``, ``success``, ``error``, ``timestamp``. A helper may name the
``disposition`` of a failed mutation; only the three known values are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
DISPOSITIONS = ("not_started", "may_have_completed", "still_in_flight")
_ENVELOPE_KEYS = frozenset({"v", "id", "success", "error", "timestamp", "disposition"})


class Malformed(Exception):
    """The response file is not a valid answer to our request."""


@dataclass(frozen=True)
class Response:
    success: bool
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    disposition: str | None = None


def request_bytes(request_id: str, action: str, params: dict[str, Any]) -> bytes:
    """A v2 request file's content."""
    body = {"v": 2, "id": request_id, "action": action, "params": params}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def legacy_bytes(request_id: int, action: str, params: dict[str, Any]) -> bytes:
    """A v1 command file's content."""
    body = {"id": request_id, "action": action, "params": params}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def parse_response(raw: bytes, expected_id: str | int, *, version: int | None = 2) -> Response:
    """The helper's answer to request ``expected_id``; raises Malformed."""
    if len(raw) > MAX_RESPONSE_BYTES:
        raise Malformed(f"the response is larger than {MAX_RESPONSE_BYTES} bytes")
    if not raw.strip():
        raise Malformed("the response file is empty")
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Malformed(f"the response is not JSON ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise Malformed("the response is not a JSON object")
    if version is not None and "v" in value and value["v"] != version:
        raise Malformed(f"the response speaks protocol version {value['v']!r}, not {version}")
    got = value.get("id")
    if isinstance(got, bool) or got != expected_id or type(got) is not type(expected_id):
        raise Malformed(f"the response answers request {_short(got)}, not {expected_id}")
    success = value.get("success")
    if not isinstance(success, bool):
        raise Malformed("the response has no boolean success")
    error = value.get("error")
    if error is not None and not isinstance(error, str):
        raise Malformed("the response's error is not a string")
    if "data" in value:
        data = value["data"]
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise Malformed("the response's data is not an object")
    else:
        data = {k: v for k, v in value.items() if k not in _ENVELOPE_KEYS}
    disposition = value.get("disposition")
    if disposition is None and isinstance(data.get("disposition"), str) and not success:
        disposition = data["disposition"]
    return Response(success, data, error or None,
                    disposition if disposition in DISPOSITIONS else None)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if value is not None else "(none)"
    return text if len(text) <= 80 else text[:79] + "…"
