"""The RPC bridge methods as plain functions against the simulated helper: each changes the
simulated chat.db as Messages would, and imsg's own reader shows it."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from imsg.bridge.client import BridgeClient
from imsg.bridge.state import BridgeState
from imsg.chatdb.models import Message
from imsg.chatdb.reader import ChatDB
from imsg.errors import BridgeNotReady, DeliveryUnknown, ImsgError, SendError
from imsg.rpc import bridge_methods as bm
from imsg.rpc.catalog import BY_NAME
from imsg.rpc.context import Context, Database, Permissions
from imsg.rpc.errors import InvalidParams
from imsg.rpc.params import Params
from imsg.sim.demo import ALICE, BOB, CAROL
from tests.bridge.conftest import POLL_S, World
from tests.bridge.test_vocab import png


class NoSubscriptions:
    def __len__(self) -> int:
        return 0

    def cancel(self, subscription: int) -> None:
        pass


def context(world: World) -> Context:
    state = BridgeState(BridgeClient(world.container, poll_s=POLL_S), cache_s=0)
    return Context(Database(world.db_path), NoSubscriptions(), "stdio", Permissions(), state)


def call(world: World, method: str, **params: Any) -> Any:
    spec = BY_NAME[method]
    return spec.resolve()(context(world), Params(method, params, spec.params))


def newest(world: World, chat: str = "alice", limit: int = 1) -> list[Message]:
    with ChatDB(world.db_path) as db:
        return db.history(world.chats[chat], limit=limit)


def guid_of(world: World, text: str, chat: str = "alice") -> str:
    return next(m.guid for m in newest(world, chat, 50) if m.text == text)


@pytest.fixture
def ready(world: World) -> World:
    world.start()
    return world


# --- typing and read --------------------------------------------------------------------------

def test_typing_and_read(ready: World) -> None:
    assert call(ready, "typing", to=ALICE) == {"ok": True}
    assert call(ready, "typing", chat_id=ready.chats["alice"], typing=False) == {"ok": True}
    lines = [json.loads(x) for x in ready.container.events.read_text().splitlines()]
    assert [(e["event"], e["data"]["chatGuid"]) for e in lines] == [
        ("started-typing", ready.alice_guid), ("stopped-typing", ready.alice_guid)]
    sim = ready.sim()
    sim.receive(ready.chats["alice"], ALICE, "unread one", is_read=0, date_read=0)
    sim.close()
    assert call(ready, "read", chat_guid=ready.alice_guid) == {"ok": True}
    assert newest(ready)[0].is_read is True


def test_typing_targets_need_one_form(ready: World) -> None:
    for params, text in (({}, "to is required"), ({"to": " "}, "non-empty"),
                         ({"to": ALICE, "chat_id": 1}, "not both"),
                         ({"to": ALICE, "service": "rcs"}, "imessage or sms")):
        with pytest.raises(InvalidParams, match=text):
            call(ready, "typing", **params)


# --- tapbacks ---------------------------------------------------------------------------------

def test_tapbacks_show_in_reactions(ready: World) -> None:
    target = guid_of(ready, "Perfect, see you there")
    assert call(ready, "tapback", chat_guid=ready.alice_guid, message_id=target,
                reaction="thumbs-up") == {"ok": True, "reaction": "like"}
    mine = [r for r in next(m for m in newest(ready, limit=20) if m.guid == target).reactions
            if r.is_from_me]
    assert [r.type for r in mine] == ["like"]
    # a removal answers with what was sent, as the CLI's tapback does
    assert call(ready, "tapback", chat_guid=ready.alice_guid, messageGuid=f"p:0/{target}",
                kind="remove-like") == {"ok": True, "reaction": "remove-like"}
    assert not [r for r in next(m for m in newest(ready, limit=20) if m.guid == target).reactions
                if r.is_from_me]
    assert call(ready, "tapback", chat_id=ready.chats["alice"], message=target,
                emoji="🎉") == {"ok": True, "emoji": "🎉"}
    reaction = next(m for m in newest(ready, limit=20) if m.guid == target).reactions[-1]
    assert (reaction.type, reaction.emoji) == ("custom", "🎉")


def test_tapback_refusals(ready: World) -> None:
    for params, text in (
            ({"reaction": "like"}, "message_id or message_guid is required"),
            ({"message_id": "G"}, "reaction, kind, or emoji is required"),
            ({"message_id": "G", "reaction": "wave"}, "unsupported tapback reaction wave"),
            ({"message_id": "G", "reaction": "like", "emoji": "🎉"}, "not both"),
            ({"message_id": "p:1/G", "part_index": 2, "reaction": "like"}, "does not match")):
        with pytest.raises(InvalidParams, match=text):
            call(ready, "tapback", chat_guid=ready.alice_guid, **params)


def test_emoji_tapbacks_need_the_selector(world: World) -> None:
    world.start(without=("emojiTapbackSend",))
    with pytest.raises(InvalidParams, match="emojiTapbackSend"):
        call(world, "tapback", chat_guid=world.alice_guid, message_id="G", emoji="🎉")


# --- sending ----------------------------------------------------------------------------------

def test_send_rich_threaded_reply_with_effect_and_subject(ready: World) -> None:
    parent = guid_of(ready, "Perfect, see you there")
    result = call(ready, "send.rich", chat_id=ready.chats["alice"], message="see you!",
                  effect="confetti", subject="Dinner", replyTo=parent, partIndex=0,
                  textFormatting=[{"start": 0, "length": 3, "styles": ["bold"]}])
    assert result["ok"] and result["guid"] == result["message_id"]
    assert result["chat_guid"] == ready.alice_guid
    reply = newest(ready)[0]
    assert (reply.guid, reply.text, reply.is_from_me) == (result["guid"], "see you!", True)
    assert reply.thread_originator_guid == parent
    assert reply.reply_to_text == "Perfect, see you there"
    sim = ready.sim()
    effect, subject = sim.conn.execute(
        "SELECT expressive_send_style_id, subject FROM message WHERE guid = ?",
        (reply.guid,)).fetchone()
    sim.close()
    assert (effect, subject) == ("com.apple.messages.effect.CKConfettiEffect", "Dinner")


def test_send_rich_file_is_confirmed_in_chat_db(ready: World, tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8jpeg")
    result = call(ready, "send.rich", chat_guid=ready.alice_guid, file=str(photo),
                  text="look")
    row = newest(ready)[0]
    assert result == {"ok": True, "id": row.id, "guid": row.guid, "message_id": row.guid,
                      "chat_guid": ready.alice_guid}
    assert [a.transfer_name for a in row.attachments] == ["photo.jpg"]


def test_send_rich_link_card(ready: World) -> None:
    result = call(ready, "send.rich", chat_id=ready.chats["alice"],
                  url="https://example.com/x")
    row = newest(ready)[0]
    assert result["guid"] == row.guid and row.url_preview is not None
    with pytest.raises(InvalidParams, match="subject is not supported with url"):
        call(ready, "send.rich", chat_id=1, url="https://x.y", subject="s")
    with pytest.raises(InvalidParams, match="existing iMessage chat"):
        call(ready, "send.rich", chat_id=ready.chats["sms"], url="https://example.com")


def test_send_attachment_and_voice_messages(ready: World, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    note = tmp_path / "note.m4a"
    note.write_bytes(b"audio")
    parent = guid_of(ready, "Perfect, see you there")
    result = call(ready, "send.attachment", chat_guid=ready.alice_guid, path=str(note),
                  replyTo=parent, partIndex=0)
    row = newest(ready)[0]
    assert result["guid"] == row.guid and row.thread_originator_guid == parent
    with pytest.raises(InvalidParams, match="part_index requires reply_to"):
        call(ready, "send.attachment", chat_guid=ready.alice_guid, file=str(note), part_index=1)
    monkeypatch.setenv("IMSG_AFCONVERT", str(tmp_path / "afconvert"))
    with pytest.raises(SendError, match="afconvert") as err:
        call(ready, "send.attachment", chat_guid=ready.alice_guid, file=str(note), audio=True)
    assert err.value.disposition == "not_started"
    fake = tmp_path / "afconvert"
    fake.write_text('#!/bin/sh\nfor last; do :; done\nprintf "caff0000opus" > "$last"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    call(ready, "send.attachment", chat_guid=ready.alice_guid, file=str(note), as_voice=True)
    voice = newest(ready)[0]
    assert voice.attachments[0].transfer_name == "note-voice.caf"
    sim = ready.sim()
    (audio,) = sim.conn.execute("SELECT is_audio_message FROM message WHERE guid = ?",
                                (voice.guid,)).fetchone()
    sim.close()
    assert audio == 1


def test_send_multipart(ready: World) -> None:
    result = call(ready, "send.multipart", chat_id=ready.chats["alice"], effectId="impact",
                  parts=[{"text": "one "}, {"text": "two", "textFormatting": [
                      {"start": 0, "length": 3, "styles": ["italic"]}]}])
    row = newest(ready)[0]
    assert result == {"ok": True, "id": row.id, "guid": row.guid, "message_id": row.guid,
                      "chat_guid": ready.alice_guid, "parts_count": 2}
    assert row.text == "one two"
    for parts, text in (([], "between 1 and 20"), ([{"text": "a"}] * 21, "between 1 and 20"),
                        ([{"file": "x"}], "file parts are not supported"),
                        ([{"text": " "}], "non-empty text"),
                        ([{"text": "a", "bold": True}], "unknown send.multipart part param")):
        with pytest.raises(InvalidParams, match=text):
            call(ready, "send.multipart", chat_id=1, parts=parts)


def test_send_sticker(ready: World, tmp_path: Path) -> None:
    image = tmp_path / "party.png"
    image.write_bytes(png(120, 120))
    target = guid_of(ready, "Perfect, see you there")
    result = call(ready, "send.sticker", chat_id=ready.chats["alice"], file=str(image),
                  attach_to=f"p:0/{target}")
    assert result["ok"] and result["transfer_guid"] and result["guid"]
    sim = ready.sim()
    sticker, assoc = sim.conn.execute(
        "SELECT a.is_sticker, m.associated_message_guid FROM message m JOIN"
        " message_attachment_join j ON j.message_id = m.ROWID JOIN attachment a ON"
        " a.ROWID = j.attachment_id WHERE m.guid = ?", (result["guid"],)).fetchone()
    sim.close()
    assert (sticker, assoc) == (1, f"p:0/{target}")
    with pytest.raises(InvalidParams, match="iMessage chat"):
        call(ready, "send.sticker", chat_id=ready.chats["sms"], file=str(image))
    big = tmp_path / "big.png"
    big.write_bytes(png(700, 10))
    with pytest.raises(InvalidParams, match="at most 618"):
        call(ready, "send.sticker", chat_id=ready.chats["alice"], file=str(big))


# --- polls ------------------------------------------------------------------------------------

def test_polls_send_vote_unvote(ready: World) -> None:
    trip = {"chat_id": ready.chats["trip"]}
    created = call(ready, "poll.send", **trip, question="Dinner?", options=["Pizza", "Sushi"],
                   comment="vote please")
    assert created["event"] == "imessage.poll.created" and created["guid"]
    assert created["comment"]["sent"] is True and created["comment"]["verified"] is True
    rows = newest(ready, "trip", 2)
    assert rows[0].text == "vote please"
    poll = next(m.poll for m in rows if m.guid == created["guid"])
    assert poll is not None and [o.text for o in poll.options] == ["Pizza", "Sushi"]
    voted = call(ready, "poll.vote", **trip, poll_guid=created["guid"], option_index=2)
    assert (voted["event"], voted["option_text"]) == ("imessage.poll.voted", "Sushi")
    vote = newest(ready, "trip")[0].poll
    assert vote is not None and vote.kind == "vote"
    assert [v.option_text for v in vote.votes] == ["Sushi"]
    unvoted = call(ready, "polls.unvote", **trip, pollGuid=created["guid"], option="sushi")
    assert unvoted["remaining_option_ids"] == []
    with pytest.raises(InvalidParams, match="not currently selected"):
        call(ready, "poll.unvote", **trip, poll_guid=created["guid"], option="Pizza")
    with pytest.raises(ImsgError, match=r"option_index 3 out of range \(1...2\)"):
        call(ready, "poll.vote", **trip, poll_guid=created["guid"], option_index=3)
    with pytest.raises(ImsgError, match="not found or not decodable"):
        call(ready, "poll.vote", **trip, poll_guid="NOPE", option_index=1)
    with pytest.raises(InvalidParams, match="comment cannot be combined"):
        call(ready, "poll.send", **trip, question="q", options=["a", "b"], comment="c",
             suppress_comment=True)
    quiet = call(ready, "messages.poll.send", **trip, question="Again?", options=["y", "n"],
                 suppressComment=True)
    assert quiet["comment"] == {"requested": False, "sent": None}


def test_a_caption_still_in_flight_blocks_the_lane_after_the_answer(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.start("unresponsive:send-message")
    monkeypatch.setenv("IMSG_BRIDGE_TIMEOUT", "0.3")
    answer = call(world, "poll.send", chat_id=world.chats["trip"], question="Q?",
                  options=["a", "b"])
    assert isinstance(answer, bm.BlocksLane)
    assert answer.result["comment"]["disposition"] == "still_in_flight"
    assert answer.result["comment"]["sent"] is None and answer.cause.disposition == \
        "still_in_flight"


# --- message changes --------------------------------------------------------------------------

@pytest.mark.usefixtures("schema")
def test_edit_unsend_delete_notify(both_worlds: World) -> None:
    world = both_worlds
    world.start()
    sent = call(world, "send.rich", chat_guid=world.alice_guid, text="typo hree")
    assert call(world, "message.edit", chat_guid=world.alice_guid, message_id=sent["guid"],
                new_text="typo here") == {"ok": True}
    edited = newest(world)[0]
    assert (edited.text, edited.edited_at is not None) == ("typo here", True)
    assert call(world, "message.unsend", chat_guid=world.alice_guid,
                messageGuid=sent["guid"]) == {"ok": True}
    unsent = newest(world)[0]
    assert (unsent.text, unsent.retracted_at is not None) == ("", True)
    other = call(world, "send.rich", chat_guid=world.alice_guid, text="bye")["guid"]
    call(world, "message.notifyAnyways", chat_guid=world.alice_guid, message_guid=other)
    call(world, "message.delete", chat_guid=world.alice_guid, message_guid=other)
    assert other not in {m.guid for m in newest(world, limit=5)}
    with pytest.raises(InvalidParams, match="text is required"):
        call(world, "message.edit", chat_guid=world.alice_guid, message_id="G")


# --- chats and groups -------------------------------------------------------------------------

def test_chats_and_groups(ready: World, tmp_path: Path) -> None:
    made = call(ready, "chats.create", addresses=[ALICE, CAROL], name="Book club",
                service="imessage", text="welcome")
    assert made["ok"] and made["chat_guid"] and made["message_guid"]
    with ChatDB(ready.db_path) as db:
        chat = db.chat_id_by(guid=made["chat_guid"])
        assert db.group(chat).participants == sorted([ALICE, CAROL])
    target = {"chat_guid": made["chat_guid"]}
    call(ready, "group.rename", **target, name="Books")
    call(ready, "group.addParticipant", **target, address=BOB)
    call(ready, "group.removeParticipant", **target, address=CAROL)
    photo = tmp_path / "group.png"
    photo.write_bytes(png(10, 10))
    call(ready, "group.setIcon", **target, file=str(photo))
    call(ready, "group.leave", **target)
    with ChatDB(ready.db_path) as db:
        group = db.group(chat)
        events = [m.group_event.type for m in db.history(chat, limit=10) if m.group_event]
    assert (group.name, group.participants) == ("Books", sorted([ALICE, BOB]))
    assert events == ["left", "photo_changed", "removed", "added", "renamed"]
    call(ready, "chats.markUnread", chat_id=ready.chats["alice"])
    assert newest(ready)[0].is_read is False or any(
        m.is_read is False for m in newest(ready, limit=5))
    call(ready, "chats.delete", **target)
    with ChatDB(ready.db_path) as db, pytest.raises(ImsgError, match="Chat not found"):
        db.chat_id_by(guid=made["chat_guid"])
    for params, text in (({"addresses": []}, "addresses is required"),
                         ({"addresses": [ALICE], "service": "sms"}, "service must be iMessage")):
        with pytest.raises(InvalidParams, match=text):
            call(ready, "chats.create", **params)
    with pytest.raises(InvalidParams, match="name is required"):
        call(ready, "group.rename", **target)


def test_contacts_and_handles(ready: World) -> None:
    assert call(ready, "contacts.shouldShareContact", chat_guid=ready.alice_guid) == {
        "ok": True, "can_inspect_offer": True, "can_share": True, "should_offer": False}
    assert call(ready, "contacts.shareContactCard", chat_guid=ready.alice_guid) == {
        "ok": True, "requested": True, "has_personal_nickname": True}
    assert call(ready, "handles.check", address=ALICE) == {
        "ok": True, "address": ALICE, "alias_type": "phone", "destination": f"tel:{ALICE}",
        "id_status": 1, "available": True, "service": "iMessage"}
    sim = ready.sim()
    sim.chat(["+15555550177"], service="SMS")
    sim.close()
    assert call(ready, "handles.check", address="+15555550177")["available"] is False
    for params, text in (({}, "address is required"),
                         ({"address": "x", "alias_type": "fax"}, "phone or email"),
                         ({"address": "x", "service": "SMS"}, "only supports service")):
        with pytest.raises(InvalidParams, match=text):
            call(ready, "handles.check", **params)


def test_without_a_helper(world: World) -> None:
    with pytest.raises(ImsgError, match=r"handles\.check requires bridge transport") as err:
        call(world, "handles.check", address=ALICE)
    assert err.value.rpc_code == -32603
    with pytest.raises(BridgeNotReady) as refused:
        call(world, "tapback", chat_guid=world.alice_guid, message_id="G", reaction="love")
    assert refused.value.rpc_data == {
        "retry_safe": True, "disposition": "not_started", "transport": "bridge_v2",
        "operation": "send-reaction",
        "detail": "The bridge ready lock is absent. Run imsg launch explicitly before retrying."}


# --- send and send.tracked --------------------------------------------------------------------

def outgoing(world: World, **fields: Any) -> bm.Outgoing:
    values: dict[str, Any] = {"to": None, "chat": None, "text": "hi", "file": "",
                              "service": "auto", "region": "US", "reply_to": None,
                              "formatting": None, "allow_sms_fallback": True}
    values.update(fields)
    return bm.Outgoing(**values)


def test_send_route_table(world: World) -> None:
    from imsg.rpc.params import ChatSelector

    ctx = context(world)
    chat = ChatSelector("chat_id", world.chats["alice"])
    unknown = ChatSelector("chat_identifier", "+15550000000")
    assert bm.send_via_bridge(ctx, outgoing(world, chat=chat), "applescript") is None
    assert bm.send_via_bridge(ctx, outgoing(world, chat=chat), "auto") is None  # no lock
    with pytest.raises(BridgeNotReady):
        bm.send_via_bridge(ctx, outgoing(world, chat=chat), "bridge")
    for transport in ("auto", "applescript"):
        with pytest.raises(InvalidParams, match="reply_to requires bridge transport"):
            bm.send_via_bridge(ctx, outgoing(world, chat=chat, reply_to="G"), transport)
    with pytest.raises(InvalidParams, match="requires an existing chat target"):
        bm.send_via_bridge(ctx, outgoing(world, chat=unknown), "bridge")
    assert bm.send_via_bridge(ctx, outgoing(world, to="+15550000000"), "auto") is None
    world.start()
    sent = bm.send_via_bridge(ctx, outgoing(world, to=ALICE), "auto")
    assert sent is not None and sent["transport"] == "bridge"
    assert sent["chat_guid"] == world.alice_guid and sent["service"] == "iMessage"
    assert sent["guid"] == sent["message_id"] == newest(world)[0].guid
    grouped = bm.send_via_bridge(
        ctx, outgoing(world, chat=ChatSelector("chat_identifier", newest(world, "trip")[0]
                                               .chat_identifier)), "bridge")
    assert grouped is not None and grouped["chat_guid"].endswith(";+;" + newest(
        world, "trip")[0].chat_identifier)


@pytest.mark.parametrize(("mode", "falls_back"), [("symlink-inbox", True),
                                                  ("malformed", False), ("error", False)])
def test_auto_falls_back_only_when_nothing_started(world: World, mode: str,
                                                   falls_back: bool) -> None:
    from imsg.rpc.params import ChatSelector

    world.start(mode)
    ctx = context(world)
    chat = ChatSelector("chat_guid", world.alice_guid)
    if falls_back:
        assert bm.send_via_bridge(ctx, outgoing(world, chat=chat), "auto") is None
        with pytest.raises(SendError):  # with a reply it never falls back
            bm.send_via_bridge(ctx, outgoing(world, chat=chat, reply_to="G"), "auto")
    else:
        with pytest.raises(SendError) as err:
            bm.send_via_bridge(ctx, outgoing(world, chat=chat), "auto")
        assert err.value.disposition == "may_have_completed"


def test_send_tracked(ready: World) -> None:
    attempt = "0f6b5e1c-6a1d-4e3b-9a62-4d6f1b2c3d4e"
    result = call(ready, "send.tracked", chat_id=ready.chats["alice"], text="tracked",
                  attempt_id=attempt)
    assert result == {"ok": True, "transport": "bridge", "attempt_id": attempt,
                      "guid": attempt.upper(), "message_id": attempt.upper(),
                      "chat_guid": ready.alice_guid, "service": "iMessage"}
    assert newest(ready)[0].guid == attempt.upper()
    with pytest.raises(SendError, match="attempt_id already identifies a message") as err:
        call(ready, "send.tracked", chat_id=ready.chats["alice"], text="again",
             attempt_id=attempt.upper())
    assert err.value.retry_safe
    for params, text in (({"attempt_id": "nope"}, "attempt_id must be a UUID"),
                         ({"file": "/x"}, "exactly one text message"),
                         ({"transport": "applescript"}, "requires bridge transport")):
        with pytest.raises(InvalidParams, match=text):
            call(ready, "send.tracked", chat_id=1, text="x",
                 **{"attempt_id": "0f6b5e1c-6a1d-4e3b-9a62-4d6f1b2c3d4f", **params})


def test_send_tracked_needs_the_helpers_support(world: World) -> None:
    world.start(without=("clientMessageGuid",))
    with pytest.raises(SendError, match="client_message_guid") as err:
        call(world, "send.tracked", chat_guid=world.alice_guid, text="x",
             attempt_id="0f6b5e1c-6a1d-4e3b-9a62-4d6f1b2c3d40")
    assert err.value.disposition == "not_started"


# --- bridge events ----------------------------------------------------------------------------

def test_bridge_events_stream(ready: World) -> None:
    import threading

    spec = call(ready, "bridge.events.subscribe", bufferLimit=8)
    assert spec.response(5) == {"subscription": 5, "buffer_limit": 8, "resumable": False}
    frames: list[dict[str, Any]] = []
    done = threading.Event()

    def consume() -> None:
        for _, frame in spec.items(5):
            frames.append(json.loads(frame))
            done.set()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    call(ready, "typing", to=ALICE)
    assert done.wait(5)
    spec.close()
    worker.join(5)
    assert frames[0]["method"] == "bridge.event"
    event = frames[0]["params"]["event"]
    assert frames[0]["params"]["subscription"] == 5 and event["event"] == "started-typing"
    assert event["data"] == {"chatGuid": ready.alice_guid} and "ts" in event
    ready.container.events.unlink()
    with pytest.raises(ImsgError, match="does not exist") as err:
        call(ready, "bridge.events.subscribe")
    assert err.value.rpc_message == "Bridge events unavailable"
    with pytest.raises(InvalidParams, match="between 1 and 4096"):
        call(ready, "bridge.events.subscribe", buffer_limit=0)


# --- availability -----------------------------------------------------------------------------

def methods_now(world: World) -> list[str]:
    from imsg.rpc.status import snapshot

    return list(snapshot(context(world))["methods"])


def test_methods_follow_the_helpers_selectors(world: World) -> None:
    bridge_only = {"typing", "read", "tapback", "send.rich", "bridge.events.subscribe",
                   "handles.check", "send.tracked"}
    assert not bridge_only & set(methods_now(world))
    world.start(without=("sendReaction", "editMessageItemTranslation", "editMessageItem",
                         "editMessage", "clientMessageGuidReservation"))
    available = methods_now(world)
    assert bridge_only - {"tapback", "send.tracked"} <= set(available)
    assert "tapback" not in available and "message.edit" not in available
    assert "send.tracked" not in available
    assert available.index("poll.send") + 1 == available.index("messages.poll.send")
    world.stop()
    world.start(without=("registry",))
    available = methods_now(world)
    assert {"typing", "read", "handles.check"} <= set(available)
    assert "send.rich" not in available


def test_status_bridge_object(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from imsg.rpc.status import snapshot

    assert snapshot(context(world))["bridge"] == {
        "ready": False,
        "error": "The bridge is not started. Run imsg launch explicitly before using bridge "
                 "methods."}
    world.start("unresponsive:status")
    monkeypatch.setenv("IMSG_BRIDGE_TIMEOUT", "0.3")
    assert snapshot(context(world))["bridge"] == {
        "ready": False,
        "error": "The existing bridge did not answer a non-launching status probe."}
    monkeypatch.delenv("IMSG_BRIDGE_TIMEOUT")
    world.stop()
    world.start(without=("v2",))
    bridge = snapshot(context(world))["bridge"]
    assert bridge["ready"] is False and bridge["v2_ready"] is False
    assert bridge["error"] == ("The running bridge did not report a ready v2 inbox and chat "
                               "registry.")
    world.stop()
    world.start()
    status = snapshot(context(world))
    assert list(status["bridge"]) == ["ready", "bridge_version", "v2_ready",
                                      "registry_available", "selectors"]
    assert status["capabilities"]["features"] == {"tapback.emoji": 2}


def test_failures_classify_through_handlers(world: World,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    world.start("unresponsive")
    monkeypatch.setenv("IMSG_BRIDGE_TIMEOUT", "0.3")
    with pytest.raises(DeliveryUnknown) as err:
        call(world, "message.unsend", chat_guid=world.alice_guid, message_id="G")
    assert err.value.rpc_data["operation"] == "unsend-message"
    assert err.value.disposition == "still_in_flight"

