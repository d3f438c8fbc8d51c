"""Agents write Markdown; iMessage shows plain text, with native bold/italic/underline/strike
through the bridge. ``render`` turns a reply into the text a person should see plus the
``text_formatting`` ranges that style it, so no recipient ever sees raw ``**stars**``.

- ``**x**`` and ``__x__`` → bold, ``*x*`` and ``_x_`` → italic, ``~~x~~`` → strikethrough,
  nested as written; a marker needs a non-space next to it on the inside (``2 * 3 * 4`` and
  ``snake_case_name`` stay as they are) and an unclosed one stays literal;
- ``# Heading`` (any level) → the heading text in bold; ``[text](url)`` → ``text (url)``;
- inline code and fenced code blocks are left exactly as written (backticks included): no
  styling inside them.

Ranges count UTF-16 code units, as Messages does (an emoji is 2). ``slice_ranges`` cuts the
ranges of a text down to one chunk of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.S)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_LINK = re.compile(r"\[([^\]\n]+)\]\((\S+?)\)")
_EMPHASIS = re.compile(
    r"(\*\*|__|~~)(?=\S)(.+?)(?<=\S)\1"
    r"|(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])"
    r"|(?<![\w_])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w_])", re.S)
_STYLE = {"**": "bold", "__": "bold", "~~": "strikethrough"}


@dataclass(frozen=True, slots=True)
class Range:
    start: int  # UTF-16 code units
    length: int
    style: str

    def to_json(self) -> dict[str, object]:
        return {"start": self.start, "length": self.length, "styles": [self.style]}


def units(text: str) -> int:
    """Length of ``text`` in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def render(text: str) -> tuple[str, list[Range]]:
    """The plain text of Markdown ``text`` and its style ranges."""
    out: list[str] = []
    ranges: list[Range] = []
    at = 0  # UTF-16 position in the output so far
    last = 0
    for code in _CODE.finditer(text):
        at = _prose(text[last:code.start()], out, ranges, at)
        out.append(code.group())
        at += units(code.group())
        last = code.end()
    _prose(text[last:], out, ranges, at)
    return "".join(out), ranges


def _prose(text: str, out: list[str], ranges: list[Range], at: int) -> int:
    text = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", text)
    last = 0
    for heading in _HEADING.finditer(text):
        at = _inline(text[last:heading.start()], out, ranges, at)
        start = at
        at = _inline(heading.group(2), out, ranges, at)
        ranges.append(Range(start, at - start, "bold"))
        last = heading.end()
    return _inline(text[last:], out, ranges, at)


def _inline(text: str, out: list[str], ranges: list[Range], at: int) -> int:
    last = 0
    for match in _EMPHASIS.finditer(text):
        plain = text[last:match.start()]
        out.append(plain)
        at += units(plain)
        marker, inner = match.group(1), match.group(2)
        style = _STYLE[marker] if marker else "italic"
        if not marker:
            inner = match.group(3) if match.group(3) is not None else match.group(4)
        start = at
        at = _inline(inner, out, ranges, at)
        ranges.append(Range(start, at - start, style))
        last = match.end()
    out.append(text[last:])
    return at + units(text[last:])


def slice_ranges(ranges: list[Range], start: int, length: int) -> list[Range]:
    """The parts of ``ranges`` inside ``[start, start + length)``, moved to start at 0."""
    end = start + length
    cut = []
    for item in ranges:
        lo, hi = max(item.start, start), min(item.start + item.length, end)
        if hi > lo:
            cut.append(Range(lo - start, hi - lo, item.style))
    return cut
