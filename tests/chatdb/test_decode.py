"""Tapback, plist and event decoding: total functions over hostile column values."""

from __future__ import annotations

import plistlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imsg.chatdb import decode


@pytest.mark.parametrize(
    ("value", "guid"),
    [
        ("p:0/ABC", "ABC"),
        ("p:12/ABC", "ABC"),
        ("bp:ABC", "ABC"),
        ("ABC", "ABC"),
        (None, ""),
    ],
)
def test_target_guid_forms(value: str | None, guid: str) -> None:
    assert decode.target_guid(value) == guid


def test_tapback_kinds_and_emoji() -> None:
    assert decode.tapback(2000, "p:0/G", None, "") == decode.Tapback("love", True, "G", "❤️")
    assert decode.tapback(3004, "G", None, "") == decode.Tapback("emphasis", False, "G", "‼️")
    assert decode.tapback(2006, "G", "🦄", "Reacted 🎉 to “x”").emoji == "🦄"  # column wins
    assert decode.tapback(2006, "G", None, "Reacted 🎉 to “x”").emoji == "🎉"
    assert decode.tapback(2007, "G", None, "").kind == "sticker"
    assert decode.tapback(1000, "G", None, "") is None
    assert decode.tapback(0, None, None, "hello") is None


@pytest.mark.parametrize(
    ("text", "emoji"),
    [
        ("Reacted 👍🏽 to “x”", "👍🏽"),
        ("🧑‍🚀 reagiu a “x”", "🧑‍🚀"),
        ("A réagi avec 🇫🇷 à « x »", "🇫🇷"),
        ("Reacted to nothing", None),
    ],
)
def test_custom_emoji_from_localized_text(text: str, emoji: str | None) -> None:
    assert decode.custom_emoji_from_text(text) == emoji


@given(st.binary(max_size=300))
def test_plist_readers_are_total(blob: bytes) -> None:
    decode.summary_info(blob)
    decode.audio_transcription(blob)
    decode.url_preview(blob, "")


def test_summary_info_ignores_wrong_shapes() -> None:
    weird = plistlib.dumps(
        {"ec": {"0": ["nope", {"d": "x", "t": 5}]}, "rp": ["a", 1]}, fmt=plistlib.FMT_BINARY
    )
    info = decode.summary_info(weird)
    assert [v.text for v in info.history] == [""]
    assert info.retracted_parts == [1]
