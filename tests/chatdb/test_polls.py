"""Native polls: creation, votes, added choices, captions, and graceful degradation."""

from __future__ import annotations

import base64
import json
import plistlib

import pytest

from imsg.chatdb.polls import decode_poll, display_text
from imsg.chatdb.reader import ChatDB
from imsg.format import message_lines
from imsg.sim.demo import ALICE, BOB
from imsg.sim.messages import POLLS_BALLOON, SimDB

T0 = 1_780_000_000.0


def test_a_poll_its_votes_and_an_added_choice(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE, BOB])
    poll, (pizza, sushi) = sim.poll(chat, "Dinner?", ["Pizza", "Sushi"], sender=ALICE, at=T0)
    vote = sim.poll_vote(chat, poll, [sushi], sender=BOB, at=T0 + 1)
    _, tacos = sim.poll_add_choice(chat, poll, "Tacos", sender=BOB, at=T0 + 2)
    mine = sim.poll_vote(chat, poll, [pizza, tacos], from_me=True, at=T0 + 3)
    found = {m.id: m for m in reader.history(chat)}

    created = found[poll].poll
    assert created is not None
    assert (created.kind, created.event) == ("created", "imessage.poll.created")
    assert created.poll_guid == sim.guid_of(poll) and created.question == "Dinner?"
    assert [(o.id, o.text) for o in created.options] == [(pizza, "Pizza"), (sushi, "Sushi")]
    assert created.creator == ALICE and created.participants == [ALICE]
    assert created.metadata["bundle_id"] == POLLS_BALLOON
    assert found[poll].balloon_bundle_id == POLLS_BALLOON

    voted = found[vote].poll
    assert voted is not None and (voted.kind, voted.event) == ("vote", "imessage.poll.voted")
    assert voted.poll_guid == voted.original_guid == sim.guid_of(poll)
    assert voted.vote is not None
    assert (voted.vote.option_id, voted.vote.option_text) == (sushi, "Sushi")
    assert voted.vote.participant == BOB and voted.vote.event_type == "selected"

    both = found[mine].poll
    assert both is not None
    assert [(v.option_text, v.participant) for v in both.votes] == [
        ("Pizza", "me@icloud.com"), ("Tacos", "me@icloud.com")]  # "Tacos" from the update row
    assert message_lines(found[poll])[0].endswith(f"{ALICE}: poll: Dinner? [Pizza, Sushi]")
    assert message_lines(found[mine])[0].endswith("voted: Pizza, Tacos")


def test_an_untitled_poll_takes_its_caption_as_question(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE, BOB])
    poll, _ = sim.poll(chat, "", ["Yes", "No"], sender=BOB, titled=False, at=T0)
    sim.receive(chat, BOB, "Hike on Sunday?", at=T0 + 1)  # Messages sends the question after
    found = {m.id: m for m in reader.history(chat)}
    assert found[poll].poll is not None and found[poll].poll.question == "Hike on Sunday?"


def test_a_vote_withdrawing_every_choice(sim: SimDB, reader: ChatDB) -> None:
    chat = sim.chat([ALICE])
    poll, _ = sim.poll(chat, "Go?", ["Yes", "No"], from_me=True, at=T0)
    row = sim.poll_vote(chat, poll, [], sender=ALICE, at=T0 + 1)
    [message] = [m for m in reader.history(chat) if m.id == row]
    assert message.poll is not None and message.poll.kind == "vote" and message.poll.votes == []
    assert display_text(message.poll) == "removed their vote"


@pytest.mark.parametrize("payload", [
    None,
    b"not a plist",
    plistlib.dumps({"$objects": ["$null", {"URL": "data:,%%%"}]}, fmt=plistlib.FMT_BINARY),
    plistlib.dumps({"unrelated": [1, 2, {"x": "y"}]}, fmt=plistlib.FMT_BINARY),
])
def test_undecodable_polls_degrade_to_unknown(sim: SimDB, reader: ChatDB,
                                              payload: bytes | None) -> None:
    chat = sim.chat([ALICE])
    row = sim.message(chat, None, sender=ALICE, balloon_bundle_id=POLLS_BALLOON,
                      payload_data=payload)
    [message] = [m for m in reader.history(chat) if m.id == row]
    assert message.poll is not None
    assert (message.poll.kind, message.poll.event) == ("unknown", "imessage.poll.unknown")
    assert message.poll.poll_guid == message.guid
    assert message.poll.metadata["bundle_id"] == POLLS_BALLOON


def _json_url(value: object, *, url: str = "data:,{}") -> bytes:
    encoded = base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    return plistlib.dumps({"URL": url.format(encoded)}, fmt=plistlib.FMT_BINARY)


def test_the_poll_json_is_found_in_a_query_value_or_a_data_url() -> None:
    item = {"item": {"title": "Q", "orderedPollOptions": [
        {"optionIdentifier": "A1", "text": "one"}]}}
    for payload in (_json_url(item), _json_url(item, url="https://polls.example/?p={}&v=2")):
        poll = decode_poll(balloon="com.apple.messages.Polls", assoc_type=0, assoc_guid=None,
                           guid="G", sender="+1", payload=payload, summary=None)
        assert poll is not None and poll.question == "Q"
        assert [o.text for o in poll.options] == ["one"]


def test_hostile_payloads_are_bounded() -> None:
    nested: object = {"orderedPollOptions": [{"text": "deep"}]}
    for _ in range(200):
        nested = {"child": nested}
    wide = {"votes": [{"voteOptionIdentifier": str(i)} for i in range(50_000)]}
    for value in (nested, wide):
        poll = decode_poll(balloon=None, assoc_type=4000, assoc_guid="p:0/P", guid="G",
                           sender="+1", payload=_json_url(value), summary=None)
        assert poll is not None and poll.poll_guid == "P"
    assert decode_poll(balloon="com.example.other", assoc_type=0, assoc_guid=None, guid="G",
                       sender="", payload=b"", summary=None) is None
