"""Apple timestamps to ISO-8601 and back, exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imsg.chatdb.dates import (
    apple_to_unix_ns,
    iso_from_apple,
    iso_from_unix_ns,
    parse_iso,
    unix_ns_to_apple,
)
from imsg.errors import InvalidDate


def test_nanoseconds_and_seconds_are_told_apart_per_value() -> None:
    assert iso_from_apple(800_000_000_123_456_789) == "2026-05-09T06:13:20.123Z"
    assert iso_from_apple(800_000_000) == "2026-05-09T06:13:20.000Z"
    assert iso_from_apple(0) is None and iso_from_apple(None) is None
    assert iso_from_apple(1.5) == "2001-01-01T00:00:01.500Z"  # summary-info float seconds


def test_milliseconds_are_truncated_not_rounded() -> None:
    assert iso_from_unix_ns(1_999_999_999) == "1970-01-01T00:00:01.999Z"


@pytest.mark.parametrize(
    ("text", "unix_ns"),
    [
        ("2026-05-16T15:24:36Z", 1_778_945_076_000_000_000),
        ("2026-05-16T15:24:36.123Z", 1_778_945_076_123_000_000),
        ("2026-05-16T17:24:36+02:00", 1_778_945_076_000_000_000),
    ],
)
def test_parse_iso_with_zone(text: str, unix_ns: int) -> None:
    assert parse_iso(text) == unix_ns


@pytest.mark.parametrize(
    "text", ["", "2026-05-16", "2026-05-16T15:24:36", "soon", "2026-13-01T00:00Z"]
)
def test_parse_iso_rejects(text: str) -> None:
    with pytest.raises(InvalidDate):
        parse_iso(text)


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                                  "1600-01-01T00:00:00Z", "2300-01-01T00:00:00Z"])
def test_dates_beyond_what_sqlite_can_compare_are_out_of_range(text: str) -> None:
    with pytest.raises(InvalidDate, match="out of range"):
        parse_iso(text)


@given(st.integers(min_value=1, max_value=2**62))
def test_round_trip_through_apple_nanoseconds(unix_ns: int) -> None:
    apple = unix_ns_to_apple(unix_ns + 978_307_200 * 10**9 + 10**12)
    assert apple_to_unix_ns(apple) == unix_ns + 978_307_200 * 10**9 + 10**12
