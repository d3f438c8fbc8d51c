"""Times as a model writes them, for ``before``/``after``: exact or relative.

- ISO-8601 with a zone (``2026-05-16T15:24:36Z``, ``…+02:00``): that instant;
- ISO-8601 without a zone (``2026-05-16T15:24``) or a date (``2026-05-16``): local time on this
  machine (a date is its midnight);
- a span back from now: ``30m``, ``2h``, ``3d``, ``1w`` (minutes, hours, days, weeks);
- ``now``, ``today`` (local midnight), ``yesterday`` (the midnight before).

Anything else raises ``InvalidInput`` naming the accepted forms.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

from imsg.chatdb.dates import parse_iso
from imsg.errors import InvalidDate, InvalidInput

_SPAN = re.compile(r"(\d{1,6})\s*(m|min|h|d|w)", re.IGNORECASE)
_SPAN_SECONDS = {"m": 60, "min": 60, "h": 3600, "d": 86_400, "w": 604_800}
_NS = 1_000_000_000


def bad_time(value: str) -> InvalidInput:
    return InvalidInput(f"Invalid time: {value!r} (use an ISO-8601 date or time such as "
                        "2026-05-16 or 2026-05-16T15:24:36Z, a span back from now such as 2h, "
                        "3d or 1w, or now, today, yesterday)")


def parse_when(value: str, now_ns: int | None = None) -> int:
    """Unix nanoseconds for ``value`` (module docstring); raises InvalidInput."""
    text = value.strip()
    now = time.time_ns() if now_ns is None else now_ns
    lowered = text.lower()
    if lowered == "now":
        return now
    if lowered in ("today", "yesterday"):
        midnight = datetime.fromtimestamp(now / _NS).astimezone().replace(
            hour=0, minute=0, second=0, microsecond=0)
        if lowered == "yesterday":
            midnight -= timedelta(days=1)
        return int(midnight.timestamp()) * _NS
    span = _SPAN.fullmatch(text)
    if span:
        return now - int(span.group(1)) * _SPAN_SECONDS[span.group(2).lower()] * _NS
    try:
        return parse_iso(text)
    except InvalidDate:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise bad_time(value) from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # naive: this machine's local time
    return round(parsed.timestamp() * _NS)
