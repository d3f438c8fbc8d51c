"""Apple timestamps: integers since 2001-01-01 UTC, nanoseconds on modern databases.

Databases created before macOS 10.13 (and never migrated) store seconds, so the unit is decided
per value: a magnitude above 1e11 cannot be seconds (that would be year 5170), so it is
nanoseconds. 0 and NULL mean "never". All arithmetic is on integers so that output is exact.

A value that is not a timestamp at all (text, a blob, NaN, infinity, a float far outside any
calendar) is *unknown*: the readers return None for it, never raise, so one corrupt row cannot
stop a history read or a watch.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from imsg.errors import InvalidDate

APPLE_EPOCH_UNIX = 978_307_200
_NS = 1_000_000_000
_SECONDS_LIMIT = 100_000_000_000
# Years 1 to 9999: what an ISO-8601 date can say (SQLite integers always fit; floats may not).
_EARLIEST_NS = -62_135_596_800 * _NS
_LATEST_NS = 253_402_300_799 * _NS
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1  # what SQLite can compare a date with


def apple_to_unix_ns(value: object) -> int | None:
    """Unix time in nanoseconds for an Apple timestamp; None for 0/NULL and for a value that is
    not a usable timestamp (text, blob, NaN, infinity, outside years 1-9999)."""
    if not value or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = round(value * _NS) if abs(value) < _SECONDS_LIMIT else int(value)
    elif abs(value) < _SECONDS_LIMIT:
        value *= _NS
    unix_ns = value + APPLE_EPOCH_UNIX * _NS
    return unix_ns if _EARLIEST_NS <= unix_ns <= _LATEST_NS else None


def unix_ns_to_apple(unix_ns: int) -> int:
    """Apple nanoseconds (the modern on-disk form) for a Unix time in nanoseconds."""
    return unix_ns - APPLE_EPOCH_UNIX * _NS


_DAYS: dict[int, str] = {}  # day number → "YYYY-MM-DDT": messages come many to a day


def iso_from_unix_ns(unix_ns: int) -> str:
    """``2026-05-16T15:24:36.123Z``: UTC, milliseconds truncated."""
    seconds, rest = divmod(unix_ns, _NS)
    day, second = divmod(seconds, 86_400)
    prefix = _DAYS.get(day)
    if prefix is None:
        t = time.gmtime(day * 86_400)
        prefix = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        if len(_DAYS) > 4096:
            _DAYS.clear()
        _DAYS[day] = prefix
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    return f"{prefix}{hour:02d}:{minute:02d}:{second:02d}.{rest // 1_000_000:03d}Z"


def iso_from_apple(value: object) -> str | None:
    """ISO-8601 UTC for an Apple timestamp; None for 0/NULL or an unusable value."""
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
    try:
        delta = parsed.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    except OverflowError:  # an extreme offset pushes it past year 1 or 9999
        raise InvalidDate(value, "out of range") from None
    unix_ns = (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1_000
    if not _INT64_MIN <= unix_ns - APPLE_EPOCH_UNIX * _NS <= _INT64_MAX:
        raise InvalidDate(value, "out of range: dates from 1677 to 2262 can be compared")
    return unix_ns
