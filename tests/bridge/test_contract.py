"""Contract: the request files imsg publishes, field by field, for every bridge method: the
envelope ``{"v":2,"id","action","params"}`` and each action's camelCase params as the
reference lists them. The simulated helper records every request it claims."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest

from imsg.rpc.catalog import BY_NAME
from imsg.rpc.params import Params
from imsg.sim.bridge import Failure, SimHelper
from imsg.sim.demo import ALICE, BOB
from tests.bridge.conftest import SCAN_S, World, wait_for
from tests.bridge.test_methods import context, guid_of, newest
from tests.bridge.test_vocab import png

ANY = object()
UUID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")


class Recorder(SimHelper):
    """The simulated helper, keeping each request exactly as published."""

    requests: list[dict[str, Any]]

    def _answer(self, request: Any, action: str) -> dict[str, Any]:
        self.requests.append(request)
        return super()._answer(request, action)


@pytest.fixture
def recorder(world: World) -> Recorder:
    helper = Recorder(world.db_path, world.container.root, interval_s=SCAN_S,
                      failure=Failure.parse(""), exit_on_crash=False)
    helper.requests = []
    stop = threading.Event()
    thread = threading.Thread(target=helper.serve, args=(stop,), daemon=True)
    thread.start()
    world.helpers.append((helper, stop, thread))
    wait_for(world.container.is_ready)
    return helper


def published(world: World, recorder: Recorder, method: str,
              **params: Any) -> list[dict[str, Any]]:
    """Every request (but the probe's ``status``) the method published."""
    recorder.requests.clear()
    spec = BY_NAME[method]
    spec.resolve()(context(world), Params(method, params, spec.params))
    return [r for r in recorder.requests if r.get("action") != "status"]


def matches(got: Any, want: Any) -> bool:
    if want is ANY:
        return True
    if isinstance(want, dict):
        return isinstance(got, dict) and set(got) == set(want) and all(
            matches(got[k], v) for k, v in want.items())
    return bool(got == want)


def only(requests: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(requests) == 1, requests
    request = requests[0]
    assert list(request) == ["v", "id", "action", "params"]
    assert request["v"] == 2 and UUID.fullmatch(request["id"])
    return request


def expect(requests: list[dict[str, Any]], action: str, params: dict[str, Any]) -> None:
    request = only(requests)
    assert request["action"] == action
    assert matches(request["params"], params), request["params"]


def test_every_request_id_is_fresh(world: World, recorder: Recorder) -> None:
    for _ in range(3):
        published(world, recorder, "typing", to=ALICE)
    ids = [r["id"] for r in recorder.requests]
    assert len(set(ids)) == len(ids)


def test_conversation_actions(world: World, recorder: Recorder, tmp_path: Path) -> None:
    chat = world.alice_guid
    target = guid_of(world, "Perfect, see you there")
    expect(published(world, recorder, "typing", to=ALICE, typing=False), "typing",
           {"handle": chat, "typing": False})
    expect(published(world, recorder, "read", chat_guid=chat), "read", {"handle": chat})
    expect(published(world, recorder, "tapback", chat_guid=chat, message_id=f"p:1/{target}",
                     reaction="❤️", remove=True), "send-reaction",
           {"chatGuid": chat, "selectedMessageGuid": target, "reactionType": "remove-love",
            "partIndex": 1})
    expect(published(world, recorder, "tapback", chat_guid=chat, message_id=target,
                     emoji="🎉", part_index=0), "send-reaction",
           {"chatGuid": chat, "selectedMessageGuid": target, "emoji": "🎉", "remove": False,
            "partIndex": 0})
    expect(published(world, recorder, "send.rich", chat_guid=chat, text="hi", effect="loud",
                     subject="S", reply_to=target, part_index=0, dd_scan=False,
                     text_formatting=[{"start": 0, "length": 2, "styles": ["bold"]}]),
           "send-message",
           {"chatGuid": chat, "message": "hi", "effectId":
            "com.apple.MobileSMS.expressivesend.loud", "subject": "S",
            "selectedMessageGuid": target, "partIndex": 0,
            "textFormatting": [{"start": 0, "length": 2, "styles": ["bold"]}],
            "ddScan": False})
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"jpeg")
    expect(published(world, recorder, "send.rich", chat_guid=chat, file=str(photo),
                     text="cap"), "send-attachment",
           {"chatGuid": chat, "partIndex": 0, "filePath": ANY, "isAudioMessage": False,
            "message": "cap"})
    expect(published(world, recorder, "send.rich", chat_guid=chat, url="https://e.com/a"),
           "send-rich-link",
           {"chatGuid": chat, "message": "https://e.com/a", "partIndex": 0, "ddScan": True,
            "richLinkPreview": ANY})
    expect(published(world, recorder, "send.attachment", chat_guid=chat, file=str(photo),
                     reply_to=target, part_index=0), "send-attachment",
           {"chatGuid": chat, "filePath": ANY, "isAudioMessage": False,
            "selectedMessageGuid": target, "partIndex": 0})
    expect(published(world, recorder, "send.multipart", chat_guid=chat, effect="gentle",
                     subject="S", parts=[{"text": "a"}, {"text": "b", "text_formatting": []}]),
           "send-multipart",
           {"chatGuid": chat, "parts": [{"text": "a"}, {"text": "b", "textFormatting": []}],
            "effectId": "com.apple.MobileSMS.expressivesend.gentle", "subject": "S"})
    sticker = tmp_path / "s.png"
    sticker.write_bytes(png(40, 30))
    expect(published(world, recorder, "send.sticker", chat_guid=chat, file=str(sticker),
                     attach_to=f"p:0/{target}"), "send-sticker",
           {"chatGuid": chat, "filePath": ANY, "contentHash": ANY, "pixelWidth": 40,
            "pixelHeight": 30, "accessibilityLabel": "s", "targetPartIndex": 0,
            "selectedMessageGuid": target})
    sent = newest(world)[0].guid
    expect(published(world, recorder, "message.edit", chat_guid=chat, message_id=sent,
                     text="x"), "edit-message",
           {"chatGuid": chat, "messageGuid": sent, "editedMessage": "x",
            "backwardsCompatibilityMessage": "x", "partIndex": 0})
    expect(published(world, recorder, "message.unsend", chat_guid=chat, message_id=sent,
                     part_index=0), "unsend-message",
           {"chatGuid": chat, "messageGuid": sent, "partIndex": 0})
    expect(published(world, recorder, "message.notifyAnyways", chat_guid=chat,
                     message_id=sent), "notify-anyways", {"chatGuid": chat, "messageGuid": sent})
    expect(published(world, recorder, "message.delete", chat_guid=chat, message_id=sent),
           "delete-message", {"chatGuid": chat, "messageGuid": sent})


def test_send_actions(world: World, recorder: Recorder) -> None:
    chat = world.alice_guid
    expect(published(world, recorder, "send", chat_guid=chat, text="hi", reply_to="",
                     formatting=[{"start": 0, "length": 1, "styles": []}]), "send-message",
           {"chatGuid": chat, "textFormatting": [{"start": 0, "length": 1, "styles": []}],
            "message": "hi"})
    attempt = "5b8f4c3e-2d1a-4f6b-8c7d-9e0a1b2c3d4e"
    expect(published(world, recorder, "send.tracked", to=ALICE, text="t",
                     attempt_id=attempt), "send-message",
           {"chatGuid": chat, "clientMessageGuid": attempt.upper(), "message": "t"})


def test_chat_and_poll_actions(world: World, recorder: Recorder, tmp_path: Path) -> None:
    expect(published(world, recorder, "chats.create", addresses=[ALICE, BOB], name="N",
                     text="t"), "create-chat",
           {"addresses": [ALICE, BOB], "service": "iMessage", "displayName": "N",
            "message": "t"})
    group = next(m for m in newest(world, "trip", 1)).chat_guid
    g = {"chat_guid": group}
    expect(published(world, recorder, "group.rename", **g, name="New"), "set-display-name",
           {"chatGuid": group, "newName": "New"})
    expect(published(world, recorder, "group.addParticipant", **g, address=BOB),
           "add-participant", {"chatGuid": group, "address": BOB})
    expect(published(world, recorder, "group.removeParticipant", **g, address=BOB),
           "remove-participant", {"chatGuid": group, "address": BOB})
    expect(published(world, recorder, "group.setIcon", **g), "update-group-photo",
           {"chatGuid": group})
    expect(published(world, recorder, "group.leave", **g), "leave-chat", {"chatGuid": group})
    expect(published(world, recorder, "chats.markUnread", **g), "mark-chat-unread",
           {"chatGuid": group})
    expect(published(world, recorder, "contacts.shouldShareContact", **g),
           "should-offer-nickname-sharing", {"chatGuid": group})
    expect(published(world, recorder, "contacts.shareContactCard", **g), "share-nickname",
           {"chatGuid": group})
    expect(published(world, recorder, "handles.check", address="a@b.co"),
           "check-imessage-availability", {"address": "a@b.co", "aliasType": "email"})
    poll = published(world, recorder, "poll.send", **g, question="Q", options=["a", "b"],
                     creator_handle="me@x.y", reply_to=guid_of(world, "Can't wait!\nPacking "
                                                                  "list soon.", "trip"))
    assert [r["action"] for r in poll] == ["send-poll", "send-message"]
    assert list(poll[0]["params"]) == ["chatGuid", "question", "options", "creatorHandle",
                                       "selectedMessageGuid"]
    assert poll[1]["params"] == {"chatGuid": group, "message": "Q"}
    poll_guid = newest(world, "trip", 2)[1].guid
    vote = published(world, recorder, "poll.vote", **g, poll_guid=poll_guid, option="b")
    expect(vote, "send-poll-vote", {"chatGuid": group, "pollMessageGuid": poll_guid,
                                    "optionIdentifier": ANY, "optionText": "b"})
    unvote = published(world, recorder, "poll.unvote", **g, poll_guid=poll_guid, option="b")
    expect(unvote, "send-poll-unvote", {"chatGuid": group, "pollMessageGuid": poll_guid,
                                        "optionIdentifier": ANY, "optionText": "b",
                                        "remainingOptionIdentifiers": []})
    expect(published(world, recorder, "chats.delete", **g), "delete-chat", {"chatGuid": group})
