"""Outbound text: sanitizing and chunking (length and newline modes, grapheme-safe cuts)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imsg.gateway.chunking import chunk_text, is_boundary, sanitize_outbound

# --- sanitize -------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,clean", [
    ("<think>plan it</think>Hello", "Hello"),
    ("<thinking>\nsteps\n</thinking>\nHello", "Hello"),
    ("<antthinking>x</antthinking>Hi", "Hi"),
    ("<relevant_memories>likes tea</relevant_memories>Tea?", "Tea?"),
    ("<final>The answer</final>", "The answer"),
    ("one #+#+#+#+ two", "one  two"),
    ("assistant to=functions.search ok", "ok"),
    ("Sure.\nuser: and then?", "Sure."),
    ("Sure.\nassistant: more\nsystem: x", "Sure."),
    ("a\n\n\n\nb", "a\n\nb"),
    ("line  \r\nnext", "line\nnext"),
    ("keep `<think>` talk? no: only tags", "keep `` talk? no: only tags"),
])
def test_sanitize_rules(raw: str, clean: str) -> None:
    assert sanitize_outbound(raw) == clean


def test_sanitize_keeps_user_role_words_inside_lines() -> None:
    assert sanitize_outbound("the user: a person") == "the user: a person"


# --- length mode ----------------------------------------------------------------------------

def test_short_text_is_one_chunk() -> None:
    assert chunk_text("hello", 4000) == ["hello"]
    assert chunk_text("   ", 10) == []


def test_breaks_at_last_newline_then_whitespace_then_hard() -> None:
    assert chunk_text("aaa bbb\nccc ddd", 12) == ["aaa bbb", "ccc ddd"]
    assert chunk_text("aaa bbb ccc", 8) == ["aaa bbb", "ccc"]
    assert chunk_text("abcdefghij", 4) == ["abcd", "efgh", "ij"]


def test_breaks_only_outside_parentheses() -> None:
    assert chunk_text("x (a b c) d e", 11) == ["x (a b c) d", "e"]
    assert chunk_text("go (a b\nc d) now later", 14) == ["go (a b\nc d)", "now later"]


@pytest.mark.parametrize("text", [
    "ab👍🏽cd" * 3, "e\u0301" * 9, "🇺🇸🇫🇷🇩🇪🇯🇵", "👨‍👩‍👧‍👦x" * 3, "한국어" * 4,
])
def test_hard_cuts_never_split_a_grapheme_cluster(text: str) -> None:
    for limit in range(2, 8):
        chunks = chunk_text(text, limit)
        assert "".join(chunks) == text.replace("\r\n", "\n").replace(" ", "")
        position = 0
        flat = text.replace("\r\n", "\n")
        for chunk in chunks[:-1]:
            position += len(chunk)
            assert is_boundary(flat, position), (limit, chunks)


def test_one_cluster_longer_than_the_limit_is_kept_whole() -> None:
    family = "👨‍👩‍👧‍👦"
    assert chunk_text(family + "x", 3) == [family, "x"]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab \n()é👍🏽\u0301")), max_size=200),
       st.integers(1, 30))
def test_chunks_respect_the_limit_and_lose_no_words(text: str, limit: int) -> None:
    chunks = chunk_text(text, limit)
    for chunk in chunks:
        if len(chunk) > limit:  # only a single oversized cluster may exceed it
            assert not any(is_boundary(chunk, i) for i in range(1, len(chunk)))
    assert "".join(chunks).replace(" ", "").replace("\n", "") == \
        text.replace(" ", "").replace("\n", "")


# --- newline mode ---------------------------------------------------------------------------

def test_newline_mode_one_message_per_paragraph() -> None:
    assert chunk_text("one\n\ntwo  \n \n\nthree", 100, "newline") == ["one", "two", "three"]


def test_newline_mode_keeps_fenced_blocks_whole() -> None:
    text = "intro\n\n```\ncode\n\nmore code\n```\n\noutro"
    assert chunk_text(text, 100, "newline") == ["intro", "```\ncode\n\nmore code\n```", "outro"]


def test_newline_mode_without_blank_lines_is_one_chunk_or_length_split() -> None:
    assert chunk_text("a\nb\nc", 100, "newline") == ["a\nb\nc"]
    assert chunk_text("aaaa\nbbbb", 5, "newline") == ["aaaa", "bbbb"]


def test_newline_mode_splits_long_paragraphs_by_length() -> None:
    assert chunk_text("short\n\n" + "word " * 6, 12, "newline") == \
        ["short", "word word", "word word", "word word"]
