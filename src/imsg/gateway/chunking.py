"""Outbound text: scaffolding stripped, then cut into messages.

``sanitize_outbound`` removes what an agent must never send to a person: thinking blocks
(``<think>…</think>`` and kin, with their content), memory blocks, ``<final>`` wrappers (the
content stays), ``#+#+`` separators, ``assistant to=…`` markers and trailing role lines
(``user:``, ``system:``, ``assistant:``), then collapses three or more newlines to two.

``chunk_text(text, limit, mode)`` cuts into pieces of at most ``limit`` characters:

- ``length``: while the rest is too long, look at the next ``limit`` characters and break at
  the last newline outside parentheses, else the last whitespace outside parentheses, else
  cut hard; the separator is consumed, pieces are right-trimmed and the rest left-trimmed.
- ``newline``: one message per paragraph (paragraphs are separated by blank lines; a blank
  line inside a fenced code block does not separate), each right-trimmed; a paragraph longer
  than ``limit`` is cut as in ``length`` mode.

No cut ever falls inside a grapheme cluster (a letter and its combining marks, an emoji with
its modifiers, variation selectors and ZWJ sequence, a flag's two regional indicators, a
Hangul syllable's jamo, CR LF): a hard cut moves back to the cluster's start, or forward to
its end when one cluster alone is longer than ``limit``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

ChunkMode = Literal["length", "newline"]

_THINKING = re.compile(
    r"<\s*(think|thinking|thought|antthinking|relevant[_-]memories)\s*>.*?<\s*/\s*\1\s*>",
    re.IGNORECASE | re.DOTALL)
_LONE_TAG = re.compile(
    r"<\s*/?\s*(?:think|thinking|thought|antthinking|relevant[_-]memories|final)\b[^<>\n]*>",
    re.IGNORECASE)
_SEPARATOR = re.compile(r"(?:#\+){2,}#?")
_ASSISTANT_TO = re.compile(r"\bassistant\s+to=[\w.-]+\s*", re.IGNORECASE)
_ROLE_TAIL = re.compile(r"(?:\n[ \t]*(?:user|system|assistant)[ \t]*:[^\n]*)+\s*\Z",
                        re.IGNORECASE)
_BLANK_RUN = re.compile(r"\n{3,}")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")


def sanitize_outbound(text: str) -> str:
    text = text.replace("\r\n", "\n")
    text = _THINKING.sub("", text)
    text = _LONE_TAG.sub("", text)
    text = _SEPARATOR.sub("", text)
    text = _ASSISTANT_TO.sub("", text)
    text = _ROLE_TAIL.sub("", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUN.sub("\n\n", text).strip()


# --- grapheme clusters (the parts of UAX #29 that matter for cutting chat text) -------------

_ZWJ = "\u200d"


def _extends(ch: str) -> bool:
    """Characters that never start a cluster: marks, ZWJ, variation selectors, emoji
    modifiers and tags."""
    code = ord(ch)
    return (unicodedata.category(ch) in ("Mn", "Me", "Mc")
            or ch == _ZWJ
            or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF
            or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F)


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _hangul_kind(ch: str) -> str:
    code = ord(ch)
    if 0x1100 <= code <= 0x115F or 0xA960 <= code <= 0xA97C:
        return "L"
    if 0x1160 <= code <= 0x11A7 or 0xD7B0 <= code <= 0xD7C6:
        return "V"
    if 0x11A8 <= code <= 0x11FF or 0xD7CB <= code <= 0xD7FB:
        return "T"
    if 0xAC00 <= code <= 0xD7A3:
        return "LV" if (code - 0xAC00) % 28 == 0 else "LVT"
    return ""


def is_boundary(text: str, index: int) -> bool:
    """Whether a cut between ``text[index-1]`` and ``text[index]`` keeps clusters whole."""
    if index <= 0 or index >= len(text):
        return True
    before, after = text[index - 1], text[index]
    if before == "\r" and after == "\n":
        return False
    if _extends(after):
        return False
    if before == _ZWJ:
        return False
    if _regional(before) and _regional(after):
        run = 0
        i = index - 1
        while i >= 0 and _regional(text[i]):
            run += 1
            i -= 1
        return run % 2 == 0
    left, right = _hangul_kind(before), _hangul_kind(after)
    if left and right:
        return not ((left == "L" and right in ("L", "V", "LV", "LVT"))
                    or (left in ("LV", "V") and right in ("V", "T"))
                    or (left in ("LVT", "T") and right == "T"))
    return True


def _safe_cut(text: str, limit: int) -> int:
    """The largest cluster boundary ≤ ``limit`` (> 0), else the end of the first cluster."""
    cut = limit
    while cut > 0 and not is_boundary(text, cut):
        cut -= 1
    if cut > 0:
        return cut
    cut = limit
    while cut < len(text) and not is_boundary(text, cut):
        cut += 1
    return cut


def _break_point(window: str) -> tuple[int, int] | None:
    """(cut, separator length) for the last depth-0 newline, else whitespace, in ``window``."""
    depth = 0
    last_newline = last_space = -1
    for index, ch in enumerate(window):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            if ch == "\n":
                last_newline = index
            elif ch.isspace():
                last_space = index
    for index in (last_newline, last_space):
        if index > 0:
            return index, 1
    return None


def chunk_length(text: str, limit: int) -> list[str]:
    if limit < 1:
        raise ValueError("limit must be positive")
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[: limit + 1]  # a separator right after the window still counts
        found = _break_point(window)
        if found is not None and found[0] <= limit and is_boundary(rest, found[0]):
            cut, skip = found
        else:
            cut, skip = _safe_cut(rest, limit), 0
        piece = rest[:cut].rstrip()
        if piece:
            chunks.append(piece)
        rest = rest[cut + skip:].lstrip()
    if rest.strip():
        chunks.append(rest.rstrip())
    return chunks


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, never splitting inside a fenced code block."""
    parts: list[str] = []
    start = 0
    position = 0
    in_fence = False
    lines = text.split("\n")
    offsets = []
    for line in lines:
        offsets.append(position)
        position += len(line) + 1
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        if not in_fence and not line.strip() and index > 0:
            parts.append(text[start:offsets[index]])
            while index + 1 < len(lines) and not lines[index + 1].strip():
                index += 1
            start = offsets[index + 1] if index + 1 < len(lines) else len(text)
        index += 1
    parts.append(text[start:])
    return [part.rstrip() for part in parts if part.strip()]


def chunk_text(text: str, limit: int, mode: ChunkMode = "length") -> list[str]:
    """The messages ``text`` is sent as (none for blank text)."""
    text = text.replace("\r\n", "\n")
    if mode == "length":
        return chunk_length(text, limit)
    if not _PARAGRAPH_BREAK.search(text):
        return chunk_length(text, limit)
    chunks: list[str] = []
    for paragraph in paragraphs(text):
        chunks.extend(chunk_length(paragraph, limit) if len(paragraph) > limit
                      else [paragraph])
    return chunks
