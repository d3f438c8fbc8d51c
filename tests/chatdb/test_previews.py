"""Link previews: the one rule (``previews.belongs_to``) and its use by history and search."""

from __future__ import annotations

import msgspec
import pytest

from imsg.chatdb.models import Message, URLPreview
from imsg.chatdb.previews import URL_BALLOON, belongs_to
from imsg.chatdb.reader import ChatDB, Filters
from imsg.sim.demo import ALICE, BOB
from imsg.sim.messages import SimDB

T0 = 1_780_000_000.0
S = 1_000_000_000
LINK = "https://example.com/article"


def message(rowid: int, text: str, **fields: object) -> Message:
    values: dict[str, object] = dict(
        id=rowid, chat_id=1, guid=f"G{rowid}", sender=ALICE, is_from_me=False, text=text,
        created_at="", attachments=[], reactions=[], chat_identifier="", chat_guid="",
        chat_name="", participants=[], is_group=False)
    values.update(fields)
    return Message(**values)  # type: ignore[arg-type]


def preview(rowid: int, text: str = LINK, **fields: object) -> Message:
    return message(rowid, text, balloon_bundle_id=URL_BALLOON,
                   url_preview=URLPreview(id=rowid, url=text), **fields)


TEXT = message(10, f"Look at THIS {LINK}/ !")


@pytest.mark.parametrize(
    ("candidate", "text", "gap_s", "expected"),
    [
        (preview(11), TEXT, 1, True),
        (preview(11, LINK.upper() + "/"), TEXT, 1, True),  # case and a trailing slash
        (preview(11, "https://other.example/"), TEXT, 1, False),
        (preview(11, "not a link", reply_to_guid="G10"), TEXT, 1, True),  # points at it
        (preview(11, "not a link"), TEXT, 1, False),
        (preview(11), TEXT, 5, True),
        (preview(11), TEXT, 6, False),  # more than 5 s later
        (preview(11), TEXT, -1, False),  # dated before the text
        (preview(9), TEXT, 1, False),  # an earlier row
        (preview(11, sender=BOB), TEXT, 1, False),
        (preview(11, is_from_me=True), TEXT, 1, False),
        (preview(11, chat_id=2), TEXT, 1, False),
        (preview(11), msgspec.structs.replace(TEXT, balloon_bundle_id="com.example"), 1, False),
        (preview(11), msgspec.structs.replace(TEXT, is_reaction=True), 1, False),
        (message(11, LINK), TEXT, 1, False),  # not a preview row
    ],
)
def test_belongs_to(candidate: Message, text: Message, gap_s: int, expected: bool) -> None:
    assert belongs_to(candidate, 100 * S + gap_s * S, text, 100 * S) is expected


def test_unknown_dates_never_fold() -> None:
    assert not belongs_to(preview(11), None, TEXT, 100 * S)
    assert not belongs_to(preview(11), 100 * S, TEXT, None)


def test_history_folds_a_preview_into_its_text_row(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    text = sim.receive(chat, ALICE, f"read {LINK}", at=T0)
    row = sim.url_preview(chat, LINK, sender=ALICE, title="An article", at=T0 + 1)
    [folded] = reader.history(chat)
    assert folded.id == text and folded.text == f"read {LINK}"
    assert folded.url_preview is not None
    assert folded.url_preview.to_dict() == {
        "id": row, "guid": sim.guid_of(row),
        "balloon_bundle_id": "com.apple.messages.URLBalloonProvider",
        "created_at": "2026-05-28T20:26:41.000Z", "url": LINK, "title": "An article"}
    assert folded.balloon_bundle_id is None


def test_the_limit_counts_logical_messages(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    texts = []
    for i in range(4):
        texts.append(sim.receive(chat, ALICE, f"{i}: {LINK}/{i}", at=T0 + 10 * i))
        sim.url_preview(chat, f"{LINK}/{i}", sender=ALICE, at=T0 + 10 * i + 1)
    for limit in (1, 2, 3, 5):
        found = reader.history(chat, limit=limit)
        assert [m.id for m in found] == texts[::-1][:limit]
        assert all(m.url_preview is not None for m in found)


def test_a_preview_without_its_text_row_is_shown_as_itself(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE, BOB])
    sim.receive(chat, BOB, f"bob's {LINK}", at=T0)
    sim.receive(chat, ALICE, "nice", at=T0 + 1)  # the row just before the preview
    alone = sim.url_preview(chat, LINK, sender=BOB, at=T0 + 2)
    late = sim.url_preview(chat, LINK, sender=BOB, at=T0 + 60)  # written again, a minute on
    found = reader.history(chat)
    assert [m.id for m in found[:2]] == [late, alone]
    assert found[1].balloon_bundle_id == URL_BALLOON
    assert found[1].url_preview is not None and found[1].url_preview.id == alone


def test_a_text_row_outside_the_date_filter_is_not_pulled_in(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    sim.receive(chat, ALICE, f"see {LINK}", at=T0)
    row = sim.url_preview(chat, LINK, sender=ALICE, at=T0 + 2)
    window = Filters.parse(start="2026-05-28T20:26:41Z")
    [only] = reader.history(chat, filters=window)
    assert only.id == row and only.balloon_bundle_id == URL_BALLOON


def test_search_folds_previews_and_reaches_for_the_text_row(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    text = sim.receive(chat, ALICE, f"dinner at {LINK}", at=T0)
    sim.url_preview(chat, LINK, sender=ALICE, at=T0 + 1)
    [both] = reader.search("example.com")
    assert both.id == text and both.url_preview is not None
    # Only the preview is the exact text; it points at its text row, which takes its place.
    [exact] = reader.search(LINK.upper(), match="exact")
    assert exact.id == text and exact.url_preview is not None


def test_folding_and_polls_are_batched(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE, BOB])
    counts = []
    for pairs in (3, 30):
        for i in range(pairs):
            sim.receive(chat, ALICE, f"{LINK}/{pairs}/{i}", at=T0 + pairs * 1000 + 10 * i)
            sim.url_preview(chat, f"{LINK}/{pairs}/{i}", sender=ALICE,
                            at=T0 + pairs * 1000 + 10 * i + 1)
            poll, (yes, _) = sim.poll(chat, "", ["yes", "no"], sender=BOB, titled=False,
                                      at=T0 + pairs * 1000 + 10 * i + 2)
            sim.poll_vote(chat, poll, [yes], sender=ALICE, at=T0 + pairs * 1000 + 10 * i + 3)
        statements: list[str] = []
        reader._conn.set_trace_callback(statements.append)
        found = reader.history(chat, limit=pairs * 3)
        reader._conn.set_trace_callback(None)
        assert sum(m.url_preview is not None for m in found) == pairs
        assert all(m.poll.votes[0].option_text == "yes" for m in found
                   if m.poll is not None and m.poll.kind == "vote")
        counts.append(len(statements))
    # Ten times the rows, the same few batched queries (a second round reads the rest).
    assert counts[1] <= counts[0] + 4
