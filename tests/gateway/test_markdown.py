"""Markdown in a reply becomes plain text plus native style ranges: no recipient ever sees raw
markers, and the bridge renders the styles."""

from __future__ import annotations

from pathlib import Path

import pytest

from imsg.gateway.handlers import Reply
from imsg.gateway.markdown import Range, render, slice_ranges, units
from tests.gateway.test_delivery import BRIDGE, ScriptedChild, deliver, outbox


def styled(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The plain text and, per range, (covered text, style) for readable assertions."""
    plain, ranges = render(text)
    encoded = plain.encode("utf-16-le")
    return plain, [(encoded[r.start * 2:(r.start + r.length) * 2].decode("utf-16-le"), r.style)
                   for r in ranges]


@pytest.mark.parametrize(("markdown", "plain", "styles"), [
    ("**bold** and __also__", "bold and also", [("bold", "bold"), ("also", "bold")]),
    ("*it* _it_ ~~gone~~", "it it gone",
     [("it", "italic"), ("it", "italic"), ("gone", "strikethrough")]),
    ("**bold _and italic_**", "bold and italic",
     [("and italic", "italic"), ("bold and italic", "bold")]),
    ("# Plan\n- step", "Plan\n- step", [("Plan", "bold")]),
    ("see [the docs](https://x.example/a)", "see the docs (https://x.example/a)", []),
    ("2 * 3 * 4 and snake_case_name", "2 * 3 * 4 and snake_case_name", []),
    ("an **unclosed marker", "an **unclosed marker", []),
    ("`**not bold**` **bold**", "`**not bold**` bold", [("bold", "bold")]),
    ("```\n**code**\n```\n*after*", "```\n**code**\n```\nafter", [("after", "italic")]),
    ("👍 **ok**", "👍 ok", [("ok", "bold")]),
])
def test_render(markdown: str, plain: str, styles: list[tuple[str, str]]) -> None:
    assert styled(markdown) == (plain, styles)


def test_offsets_count_utf16_units() -> None:
    plain, ranges = render("😀😀 **x**")
    assert plain == "😀😀 x" and units("😀😀 ") == 5 and ranges == [Range(5, 1, "bold")]


def test_slice_ranges_keeps_each_chunks_share() -> None:
    ranges = [Range(2, 6, "bold")]
    assert slice_ranges(ranges, 0, 4) == [Range(2, 2, "bold")]
    assert slice_ranges(ranges, 5, 10) == [Range(0, 3, "bold")]
    assert slice_ranges(ranges, 9, 3) == []


def test_styles_go_to_a_bridge_and_plain_text_everywhere(tmp_path: Path) -> None:
    plain_child, bridged = ScriptedChild(), ScriptedChild()
    reply = Reply("**Done**: see *notes*")
    deliver(outbox(tmp_path, plain_child), reply)
    deliver(outbox(tmp_path, bridged, BRIDGE), reply)
    assert plain_child.sends == [{"chat_id": 5, "text": "Done: see notes"}]
    assert bridged.sends == [{"chat_id": 5, "text": "Done: see notes", "text_formatting": [
        {"start": 0, "length": 4, "styles": ["bold"]},
        {"start": 10, "length": 5, "styles": ["italic"]}]}]


def test_each_chunk_carries_its_own_ranges(tmp_path: Path) -> None:
    child = ScriptedChild()
    deliver(outbox(tmp_path, child, BRIDGE, textChunkLimit=10), Reply("**aaaa bbbb cccc**"))
    assert [(s["text"], s["text_formatting"]) for s in child.sends] == [
        ("aaaa bbbb", [{"start": 0, "length": 9, "styles": ["bold"]}]),
        ("cccc", [{"start": 0, "length": 4, "styles": ["bold"]}])]
