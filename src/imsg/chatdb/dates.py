"""Apple timestamps: integers since 2001-01-01 UTC, nanoseconds on modern databases.

Databases created before macOS 10.13 (and never migrated) store seconds, so the unit is decided
per value: a magnitude above 1e11 cannot be seconds (that would be year 5170), so it is
nanoseconds. 0 and NULL mean "never". All arithmetic is on integers so that output is exact.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from imsg.errors import InvalidDate

APPLE_EPOCH_UNIX = 978_307_200
_NS = 1_000_000_000
_SECONDS_LIMIT = 100_000_000_000


def apple_to_unix_ns(value: int | float | None) -> int | None:
    """Unix time in nanoseconds for an Apple timestamp; None for 0/NULL."""
    if not value:
        return None
    if isinstance(value, float):
        value = round(value * _NS) if abs(value) < _SECONDS_LIMIT else int(value)
    elif abs(value) < _SECONDS_LIMIT:
        value *= _NS
    return value + APPLE_EPOCH_UNIX * _NS


def unix_ns_to_apple(unix_ns: int) -> int:
    """Apple nanoseconds (the modern on-disk form) for a Unix time in nanoseconds."""
    return unix_ns - APPLE_EPOCH_UNIX * _NS


def iso_from_unix_ns(unix_ns: int) -> str:
    """``2026-05-16T15:24:36.123Z``: UTC, milliseconds truncated."""
    seconds, rest = divmod(unix_ns, _NS)
    t = time.gmtime(seconds)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{rest // 1_000_000:03d}Z"
    )


def iso_from_apple(value: int | float | None) -> str | None:
    """ISO-8601 UTC for an Apple timestamp; None for 0/NULL."""
    unix_ns = apple_to_unix_ns(value)
    return None if unix_ns is None else iso_from_unix_ns(unix_ns)


def parse_iso(value: str) -> int:
    """Unix nanoseconds for an ISO-8601 date-time that carries a time zone.

    Accepts ``Z`` or an offset and optional fractional seconds. Raises ``InvalidDate`` for
    anything else, including a date-time without a zone (ambiguous on a machine in another zone).
    """
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise InvalidDate(value) from None
    if parsed.tzinfo is None or "T" not in text.upper():
        raise InvalidDate(value)
    delta = parsed.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1_000
