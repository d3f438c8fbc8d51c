"""Tapback kinds, effects, formatting ranges, message targets, sticker images, the mutation
lane's block and release."""

from __future__ import annotations

import struct
import zlib

import pytest

from imsg.bridge import stickers, vocab
from imsg.errors import AttachmentError, InvalidInput, SendError


@pytest.mark.parametrize(("spelling", "kind", "remove"), [
    ("LOVE", "love", False), ("❤️", "love", False), ("thumbs-up", "like", False),
    ("+1", "like", False), ("-1", "dislike", False), ("lol", "laugh", False),
    ("🤣", "laugh", False), ("!!", "emphasize", False), ("emphasis", "emphasize", False),
    ("?", "question", False), ("remove-like", "like", True), ("Remove-❓", "question", True),
])
def test_tapback_kinds(spelling: str, kind: str, remove: bool) -> None:
    assert vocab.tapback_kind(spelling) == (kind, remove)


def test_unknown_tapback_kind() -> None:
    with pytest.raises(InvalidInput, match="unsupported tapback reaction 🎉; use love, like"):
        vocab.tapback_kind("🎉")


@pytest.mark.parametrize(("name", "effect"), [
    ("impact", "com.apple.MobileSMS.expressivesend.impact"),
    (" InvisibleInk ", "com.apple.MobileSMS.expressivesend.invisibleink"),
    ("confetti", "com.apple.messages.effect.CKConfettiEffect"),
    ("celebration", "com.apple.messages.effect.CKCelebrationEffect"),
    ("com.apple.custom.thing", "com.apple.custom.thing"),
    (" sparkly ", "sparkly"),
])
def test_effects(name: str, effect: str) -> None:
    assert vocab.effect_id(name) == effect


def test_formatting_and_targets() -> None:
    assert vocab.text_formatting([{"start": 0, "length": 2, "styles": ["bold"], "x": 1}]) == [
        {"start": 0, "length": 2, "styles": ["bold"]}]
    for bad in ([1], [{"start": "0", "length": 1, "styles": []}],
                [{"start": 0, "length": 1, "styles": "bold"}]):
        with pytest.raises(InvalidInput):
            vocab.text_formatting(bad)
    assert vocab.message_target("p:2/ABC") == ("ABC", 2)
    assert vocab.message_target(" ABC ") == ("ABC", None)


def png(width: int, height: int, frames: int | None = None) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
    if frames is not None:
        body += chunk(b"acTL", struct.pack(">II", frames, 0))
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def gif(width: int, height: int, frames: int) -> bytes:
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
            + b"\x21\xf9\x04\x00\x00\x00\x00\x00" + image * frames + b"\x3b")


def jpeg(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 4) + b"JF" + sof + b"\xff\xd9"


def test_sticker_images_are_read_from_their_headers() -> None:
    assert stickers.inspect(png(300, 200)).__dict__ | {"sha256": ""} == {
        "kind": "png", "width": 300, "height": 200, "frames": 1, "sha256": ""}
    assert stickers.inspect(png(100, 100, frames=12)).frames == 12
    assert (stickers.inspect(gif(64, 32, 3)).kind, stickers.inspect(gif(64, 32, 3)).frames) \
        == ("gif", 3)
    assert stickers.inspect(jpeg(618, 10)).width == 618


@pytest.mark.parametrize(("data", "reason"), [
    (png(619, 10), "at most 618"),
    (png(500, 500, frames=101), "frames"),
    (png(600, 600, frames=80), "decodes to more"),
    (b"\x00" * (500 * 1024 + 1), "bytes; the limit"),
    (b"BM....", "not a PNG, GIF or JPEG"),
    (b"GIF89a\x01", "damaged GIF"),
    (b"\xff\xd8\xff\xd9", "damaged JPEG"),
])
def test_sticker_limits(data: bytes, reason: str) -> None:
    with pytest.raises(AttachmentError, match=reason):
        stickers.inspect(data)


def test_the_lane_blocks_until_the_request_settles() -> None:
    from imsg.errors import MutationLaneBlocked
    from imsg.rpc.bridge_methods import BlocksLane
    from imsg.rpc.server import MutationLane

    lane = MutationLane()
    settled = [False]
    late = SendError("claimed, no answer", disposition="still_in_flight",
                     transport="bridge_v2", operation="send-message")
    late.settled = lambda: settled[0]

    def fails() -> None:
        raise late

    with pytest.raises(SendError):
        lane._guarded(fails, ())
    with pytest.raises(MutationLaneBlocked) as blocked:
        lane.check()
    assert blocked.value.rpc_data["detail"].startswith("A prior send-message remains in flight")
    settled[0] = True
    lane.check()  # released: the helper can no longer act on it
    answered = lane._guarded(lambda: BlocksLane({"ok": True}, late), ())
    assert answered == {"ok": True}
    settled[0] = False
    with pytest.raises(MutationLaneBlocked):
        lane.check()
