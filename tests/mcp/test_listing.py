"""``list_attachments`` in process on a history with several attachments per message: pages
that never end inside a message (so paging by ``before`` misses nothing), kinds read from the
UTI when the MIME type is empty, stickers, files still in iCloud."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imsg.chatdb.reader import ChatDB
from imsg.mcp.attachments import list_attachments
from imsg.sim.demo import ALICE, BOB
from imsg.sim.messages import SimAttachment, SimDB

T0 = 1_780_000_000.0


def photo(name: str, **extra: Any) -> SimAttachment:
    return SimAttachment(name, size=2_400_000, **extra)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatDB]:
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("IMSG_ADDRESSBOOK_DIR", str(tmp_path / "no-addressbook"))
    sim = SimDB.create(str(tmp_path / "chat.db"))
    group = sim.chat([ALICE, BOB], name="Trip")
    sim.receive(group, ALICE, "", at=T0, attachments=[photo("first.jpg")])
    sim.receive(group, BOB, "menu and the clip", at=T0 + 10, attachments=[
        photo("dish.jpg"),
        SimAttachment("clip.mov", mime_type="video/quicktime", uti="com.apple.quicktime-movie"),
        SimAttachment("menu.pdf", mime_type="application/pdf", uti="com.adobe.pdf")])
    sim.receive(group, ALICE, "", at=T0 + 20, attachments=[
        SimAttachment("wave.heic", mime_type="image/heic", uti="public.heic", is_sticker=True)])
    sim.send(group, "the whole album, one is still uploading", at=T0 + 30, attachments=[
        photo("a.jpg"), photo("b.jpg"), photo("c.png", mime_type="", uti="public.png"),
        photo("d.jpg", create_file=False)])
    sim.close()
    with ChatDB(sim.path) as opened:
        yield opened


def ids(answer: Any) -> list[tuple[int, int]]:
    return [(a["message_id"], a["index"]) for a in answer.data["attachments"]]


def test_a_page_never_ends_inside_a_message(db: ChatDB) -> None:
    album, sticker, mixed, first = 4, 3, 2, 1
    everything = ids(list_attachments(db, limit=100))
    assert everything == [(album, 0), (album, 1), (album, 2), (album, 3), (sticker, 0),
                          (mixed, 0), (mixed, 1), (mixed, 2), (first, 0)]
    # The limit cuts the only message of the page: the page holds all of it.
    assert ids(list_attachments(db, limit=2)) == everything[:4]
    # It cuts a later message: the page stops before it.
    six = list_attachments(db, limit=6)
    assert ids(six) == everything[:5] and six.data["has_more"] is True
    only_album = list_attachments(db, limit=2, after="2026-05-28T20:27:05Z")
    assert ids(only_album) == everything[:4] and only_album.data["has_more"] is False
    assert ids(list_attachments(db, kind="image", limit=1)) == everything[:4]
    # Following the older-call hints pages through everything once.
    seen: list[tuple[int, int]] = []
    before = None
    while True:
        page = list_attachments(db, limit=2, before=before)
        seen += ids(page)
        if not page.data["has_more"]:
            break
        hint = page.text.splitlines()[-1]
        match = re.fullmatch(r'\(older: list_attachments\(before="([^"]+)"\)\)', hint)
        assert match, hint
        before = match.group(1)
    assert seen == everything


def test_lines_say_kind_size_caption_and_icloud(db: ChatDB) -> None:
    lines = list_attachments(db, chat="Trip").text.splitlines()
    assert lines[:9] == [
        "9 attachments in Trip [chat 1, group: +15555550123, bob@example.com], newest first "
        "(times UTC+00:00):",
        "-- Thu 2026-05-28 --",
        "#4 20:27 me: [0: image a.jpg, 2.3 MB] the whole album, one is still uploading",
        "#4 20:27 me: [1: image b.jpg, 2.3 MB]",
        "#4 20:27 me: [2: image c.png, 2.3 MB]",
        "#4 20:27 me: [3: image d.jpg, 2.3 MB, not downloaded]",
        "#3 20:27 +15555550123: [0: sticker wave.heic, 1 KB]",
        "#2 20:26 bob@example.com: [0: image dish.jpg, 2.3 MB] menu and the clip",
        "#2 20:26 bob@example.com: [1: video clip.mov, 1 KB]"]
    files = list_attachments(db, kind="file")
    assert ids(files) == [(2, 2)] and files.data["attachments"][0]["kind"] == "file"
    assert ids(list_attachments(db, kind="image", sender="me")) == [(4, i) for i in range(4)]
    assert not os.path.exists(list_attachments(db, limit=4).data["attachments"][3]
                              ["attachment"]["original_path"])
