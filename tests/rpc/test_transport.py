"""Line splitting: CRLF, lines across reads, the per-line limit."""

from __future__ import annotations

from imsg.rpc.transport import OVERLONG, LineSplitter


def test_lines_across_feeds_and_crlf() -> None:
    s = LineSplitter()
    assert s.feed(b'{"a"') == []
    assert s.feed(b":1}\r\n\n  \r\nx") == [b'{"a":1}', b"", b"  "]
    assert s.feed(b"y\n") == [b"xy"]
    assert s.finish() == []


def test_last_line_without_newline_at_eof() -> None:
    s = LineSplitter()
    assert s.feed(b"abc") == []
    assert s.finish() == [b"abc"]


def test_overlong_line_is_reported_once_and_never_buffered_whole() -> None:
    s = LineSplitter(max_line=10)
    assert s.feed(b"x" * 8) == []
    assert s.feed(b"x" * 8) == [OVERLONG]
    assert s.feed(b"x" * 100) == []
    assert s.feed(b"x\nok\n") == [b"ok"]
    assert s.feed(b"y" * 11 + b"\n") == [OVERLONG]
    assert s.feed(b"y" * 10 + b"\r\n") == [b"y" * 10]
    assert s.finish() == []
