"""``ChatDB.list_attachments`` on both schemas: newest first, each attachment with the index its
message lists it at, filtered in SQL by chat, kind, sender and dates; and the SQL kind agreeing
with the Python one."""

from __future__ import annotations

import itertools

import pytest

from imsg.chatdb.previews import URL_BALLOON
from imsg.chatdb.queries import attachment_kind
from imsg.chatdb.reader import ChatDB
from imsg.errors import ChatNotFound, InvalidInput
from imsg.sim.demo import ALICE, BOB
from imsg.sim.messages import SimAttachment, SimDB

T0 = 1_780_000_000.0
NS = 1_000_000_000
PHOTO = SimAttachment("photo.jpg")
CLIP = SimAttachment("clip.mov", mime_type="video/quicktime", uti="com.apple.quicktime-movie")
PDF = SimAttachment("menu.pdf", mime_type="application/pdf", uti="com.adobe.pdf")
BARE_PNG = SimAttachment("scan.png", mime_type="", uti="public.png", create_file=False)
STICKER = SimAttachment("sticker.heic", mime_type="image/heic", uti="public.heic",
                        is_sticker=True)
VOICE = SimAttachment("Audio Message.caf", mime_type="audio/x-caf",
                      uti="com.apple.coreaudio-format", transcription="see you at eight")


def listed(db: ChatDB, **filters: object) -> list[tuple[int, int, str]]:
    """(message id, index, file name) of each attachment listed, checking the index points at
    the attachment the message itself lists there."""
    return [(message.id, index, message.attachments[index].transfer_name)
            for message, index in db.list_attachments(**filters)]  # type: ignore[arg-type]


@pytest.fixture
def world(sim: SimDB) -> dict[str, int]:
    direct = sim.chat([ALICE])
    group = sim.chat([ALICE, BOB], name="Trip")
    ids = {"direct": direct, "group": group}
    ids["photo"] = sim.receive(direct, ALICE, "look", at=T0, attachments=[PHOTO])
    ids["mixed"] = sim.receive(group, BOB, "", at=T0 + 10, attachments=[PHOTO, CLIP, PDF])
    sim.react(group, ids["mixed"], "love", sender=ALICE, at=T0 + 15)
    ids["mine"] = sim.send(group, "scanned it", at=T0 + 20, attachments=[BARE_PNG])
    ids["voice"] = sim.receive(group, ALICE, "", at=T0 + 30, is_audio_message=1,
                               attachments=[VOICE])
    ids["sticker"] = sim.receive(direct, ALICE, "", at=T0 + 40, attachments=[STICKER])
    # Rows that show no attachment: a link preview's payload file, a row in no chat yet.
    sim.message(group, "https://example.com", sender=BOB, at=T0 + 50,
                balloon_bundle_id=URL_BALLOON, attachments=[PHOTO])
    sim.message(group, "", sender=BOB, at=T0 + 60, join=False, attachments=[PHOTO])
    return ids


def test_newest_first_with_the_message_index(world: dict[str, int], reader: ChatDB) -> None:
    everything = listed(reader)
    assert everything == [
        (world["sticker"], 0, "sticker.heic"),
        (world["voice"], 0, "Audio Message.caf"),
        (world["mine"], 0, "scan.png"),
        (world["mixed"], 0, "photo.jpg"), (world["mixed"], 1, "clip.mov"),
        (world["mixed"], 2, "menu.pdf"),
        (world["photo"], 0, "photo.jpg"),
    ]
    message, index = reader.list_attachments(limit=2)[1]
    assert message.chat_id == world["group"] and message.sender == ALICE
    assert message.attachments[index].transcription == "see you at eight"
    assert listed(reader, limit=5) == everything[:5]


def test_each_filter_narrows_in_sql(world: dict[str, int], reader: ChatDB) -> None:
    mixed, group = world["mixed"], world["group"]
    assert listed(reader, kind="image") == [(world["mine"], 0, "scan.png"),
                                            (mixed, 0, "photo.jpg"),
                                            (world["photo"], 0, "photo.jpg")]
    assert listed(reader, kind="video") == [(mixed, 1, "clip.mov")]
    assert listed(reader, kind="file") == [(mixed, 2, "menu.pdf")]
    assert listed(reader, kind="audio") == [(world["voice"], 0, "Audio Message.caf")]
    assert listed(reader, kind="sticker") == [(world["sticker"], 0, "sticker.heic")]
    assert [m for m, _, _ in listed(reader, chat_id=world["direct"])] == [world["sticker"],
                                                                         world["photo"]]
    assert listed(reader, chat_id=group, kind="image", limit=1) == [(world["mine"], 0,
                                                                     "scan.png")]
    assert listed(reader, senders=["BOB@example.com"]) == [(mixed, 0, "photo.jpg"),
                                                          (mixed, 1, "clip.mov"),
                                                          (mixed, 2, "menu.pdf")]
    assert {m for m, _, _ in listed(reader, senders=[ALICE, BOB])} == {
        world["voice"], mixed, world["photo"], world["sticker"]}
    assert listed(reader, from_me=True) == [(world["mine"], 0, "scan.png")]
    assert listed(reader, from_me=True, senders=[BOB]) == [(world["mine"], 0, "scan.png")]
    window = listed(reader, start_ns=int((T0 + 10) * NS), end_ns=int((T0 + 30) * NS))
    assert [m for m, _, _ in window] == [world["mine"], mixed, mixed, mixed]
    assert listed(reader, chat_id=group, start_ns=int((T0 + 25) * NS)) == [
        (world["voice"], 0, "Audio Message.caf")]


def test_the_newest_messages_first_then_all(world: dict[str, int], reader: ChatDB,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    everything = listed(reader, limit=100)
    images = listed(reader, kind="image", limit=100)
    # The newest three rows are the unjoined one, the preview and the sticker: one attachment
    # listed there, so any longer answer comes from every attachment.
    monkeypatch.setattr("imsg.chatdb.reader._RECENT_MESSAGES", 3)
    for limit in range(1, len(everything) + 2):
        assert listed(reader, limit=limit) == everything[:limit]
        assert listed(reader, kind="image", limit=limit) == images[:limit]


def test_failures(world: dict[str, int], reader: ChatDB) -> None:
    with pytest.raises(ChatNotFound):
        reader.list_attachments(chat_id=999)
    with pytest.raises(InvalidInput, match="Invalid kind: 'photo'"):
        reader.list_attachments(kind="photo")
    with pytest.raises(InvalidInput, match="limit must be at least 1"):
        reader.list_attachments(limit=0)
    assert reader.list_attachments(chat_id=world["direct"], from_me=True) == []


def test_sql_kind_agrees_with_python(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    mimes = ["image/png", "IMAGE/JPEG", "video/mp4", "audio/mpeg", "application/pdf",
             "text/vcard", "", "imagex/odd"]
    utis = ["public.jpeg", "PUBLIC.HEIC", "public.mpeg-4", "com.apple.m4a-audio", "com.adobe.pdf",
            ""]
    cases = list(itertools.product(mimes, utis, (False, True)))
    for n, (mime, uti, sticker) in enumerate(cases):
        sim.receive(chat, ALICE, "", at=T0 + n, attachments=[SimAttachment(
            f"f{n}", mime_type=mime, uti=uti, is_sticker=sticker, create_file=False)])
    sql = f"SELECT {reader.q.attachment_kind()} FROM attachment a ORDER BY a.ROWID"
    in_sql = [row[0] for row in reader.rows(sql)]
    assert in_sql == [attachment_kind(m, u, s) for m, u, s in cases]
    assert set(in_sql) == {"image", "video", "audio", "file", "sticker"}
