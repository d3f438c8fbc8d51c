"""Every reading tool through the SDK's client over stdio, against ``imsg mcp`` on a simulated
chat.db with an AddressBook (sending off: the server's default)."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

from tests.mcp.harness import Session, World, content_text

READ_TOOLS = {"find_chat", "list_chats", "get_unread", "read_messages", "get_context",
              "search_messages", "list_attachments", "get_attachment", "wait_for_message",
              "diagnose"}


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, content_text(result)
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def test_tools_are_listed_with_typed_schemas(session: Session) -> None:
    tools = {tool.name: tool for tool in session.run(session.client.list_tools()).tools}
    assert set(tools) == READ_TOOLS | {"send_message", "react"}  # no bridge here
    for name in READ_TOOLS:
        assert tools[name].annotations is not None
        assert tools[name].annotations.read_only_hint is True, name
        assert tools[name].description, name
    assert tools["send_message"].annotations.read_only_hint is False  # type: ignore[union-attr]
    read = tools["read_messages"].input_schema["properties"]
    assert set(read) == {"chat_id", "chat", "limit", "before", "after", "participants"}
    assert read["chat_id"]["anyOf"][0] == {"minimum": 1, "type": "integer"}
    assert read["limit"]["maximum"] == 500 and read["limit"]["default"] == 50
    assert read["participants"]["anyOf"][0] == {"items": {"type": "string"}, "type": "array"}
    wait = tools["wait_for_message"].input_schema["properties"]
    assert wait["timeout_s"]["maximum"] == 300
    assert set(wait) == {"chat_id", "chat", "sender", "since", "timeout_s", "include_mine"}
    reaction = tools["react"].input_schema["properties"]["reaction"]
    assert reaction["enum"] == ["love", "like", "dislike", "laugh", "emphasis", "question"]
    listing = tools["list_attachments"].input_schema["properties"]
    assert set(listing) == {"chat_id", "chat", "kind", "sender", "before", "after", "limit"}
    assert listing["kind"]["enum"] == ["image", "video", "audio", "file", "any"]
    assert listing["kind"]["default"] == "any"
    assert listing["limit"]["maximum"] == 100 and listing["limit"]["default"] == 20
    assert listing["sender"]["anyOf"][0]["type"] == "string"
    assert listing["chat"] == read["chat"] and listing["before"] == read["before"]
    assert "required" not in tools["list_attachments"].input_schema
    assert tools["search_messages"].input_schema["required"] == ["query"]
    assert tools["get_context"].input_schema["required"] == ["message_id"]


def test_list_chats_names_people_and_counts_unread(session: Session, world: World) -> None:
    result = session.call("list_chats")
    text = content_text(result)
    assert text.splitlines()[0].startswith("3 chats, most recent first (times UTC")
    assert "Alice Appleseed (+15555550123) [chat 1] · 2026-02-02 02:40 · 2 unread" in text
    assert "    last: call me when you can" in text
    assert "Weekend Trip [chat 3, group: Alice Appleseed, Bob]" in text
    chats = data(result)["chats"]
    assert chats[0]["id"] == world.chats["alice"]
    assert chats[0]["unread_count"] == 2 and chats[0]["contact_name"] == "Alice Appleseed"
    trip = next(c for c in chats if c["id"] == world.chats["trip"])
    assert trip["participant_names"] == {"+15555550123": "Alice Appleseed",
                                         "bob@example.com": "Bob"}
    assert trip["last_message"]["text"] == "\ufffcthe view"  # the wire keeps U+FFFC
    assert "chat_guid" not in trip["last_message"]
    only = data(session.call("list_chats", unread_only=True))["chats"]
    assert [c["id"] for c in only] == [world.chats["alice"]]


def test_find_chat_by_typo_phone_group_name_and_several_people(session: Session,
                                                              world: World) -> None:
    def best(query: str) -> int:
        return int(data(session.call("find_chat", query=query))["chats"][0]["id"])

    assert best("alcie") == world.chats["alice"]
    assert best("(555) 555-0188") == world.chats["sms"]
    assert best("carol") == world.chats["sms"]
    assert best("weekend") == world.chats["trip"]
    assert best("Alice, Bob") == world.chats["trip"]
    assert best("BOB@EXAMPLE.COM") == world.chats["trip"]
    text = session.text("find_chat", query="nobody at all")
    assert text.startswith("No chat matches 'nobody at all'")


def test_read_messages_by_query_folds_everything(session: Session, world: World) -> None:
    result = session.call("read_messages", chat="weekend trip")
    lines = content_text(result).splitlines()
    assert lines[0] == ("Weekend Trip [chat 3, group: Alice Appleseed, Bob]: 7 messages, "
                        "newest first (times UTC+00:00)")
    assert lines[1] == "-- Mon 2026-02-02 --"
    assert lines[2] == f"#{world.photo} 02:40 Bob: the view [0: image view.jpg, 10 B]"
    assert lines[3:6] == ["#19 02:00 me: Can't wait!", "    Packing list soon.",
                          "    ↳ reply to Bob: Cabin is booked for Friday–Sunday"]
    assert "#18 01:59 Alice Appleseed: I'll bring the snacks (voice message)" in lines
    assert "#17 01:58 Bob: https://example.com/cabin [link: Lakeside Cabin]" in lines
    assert lines[lines.index("#14 01:55 Bob: Cabin is booked for Friday–Sunday") + 1] == \
        "    reactions: ‼️ Alice Appleseed, 🎉 Bob"
    assert "#13 01:54 * You added +15555550188 to the conversation." in lines
    body = data(result)
    assert body["chat"]["id"] == world.chats["trip"] and body["has_more"] is False
    assert [m["id"] for m in body["messages"]][:2] == [world.photo, 19]
    assert "chat_identifier" not in body["messages"][0]
    assert body["messages"][2]["attachments"][0]["transcription"] == "I'll bring the snacks"


def test_read_messages_marks_edits_and_unsends_and_pages(session: Session) -> None:
    first = session.call("read_messages", chat_id=1, limit=5)
    text = content_text(first)
    assert "#7 01:46 me: No worries, I'll grab a table (edited)" in text
    assert "#8 01:48 me: (unsent)" in text
    assert "#9 01:50 Alice Appleseed: [0: image IMG_0042.jpeg, 1 KB]" in text
    body = data(first)
    assert body["has_more"] is True
    oldest = body["messages"][-1]["created_at"]
    assert text.splitlines()[-1] == f'(older messages: read_messages(chat_id=1, before="{oldest}"))'
    rest = data(session.call("read_messages", chat_id=1, before=oldest))
    assert rest["has_more"] is False
    ids = [m["id"] for m in body["messages"]] + [m["id"] for m in rest["messages"]]
    assert ids == sorted(set(ids), reverse=True) and len(ids) == 9


def test_read_messages_by_participant_and_time(session: Session) -> None:
    bob = data(session.call("read_messages", chat="Weekend Trip", participants=["Bob"]))
    assert {m["sender"] for m in bob["messages"]} == {"bob@example.com"}
    assert len(bob["messages"]) == 3
    late = data(session.call("read_messages", chat_id=3, after="2026-02-02T01:58:00Z",
                             before="2026-02-02T02:30"))
    assert [m["id"] for m in late["messages"]] == [19, 18, 17]
    none = session.call("read_messages", chat_id=3, participants=["Zed"])
    assert none.is_error and content_text(none) == "No participant of chat 3 matches 'Zed'"


def test_get_unread_returns_the_messages(session: Session, world: World) -> None:
    result = session.call("get_unread")
    lines = content_text(result).splitlines()
    assert lines[0].startswith("2 unread in 1 chat")
    assert lines[1] == "== Alice Appleseed (+15555550123) [chat 1]: 2 unread =="
    assert lines[3:] == [f"#{world.unread[1]} 02:40 Alice Appleseed: call me when you can",
                         f"#{world.unread[0]} 02:40 Alice Appleseed: are you there?"]
    assert data(result)["total_unread"] == 2


def test_search_messages_by_sender_chat_and_dates(session: Session) -> None:
    result = session.call("search_messages", query="CABIN")
    text = content_text(result)
    assert text.splitlines()[0] == "2 messages match 'CABIN', newest first (times UTC+00:00):"
    assert "-- Weekend Trip [chat 3, group: Alice Appleseed, Bob] · Mon 2026-02-02 --" in text
    assert [m["id"] for m in data(result)["messages"]] == [17, 14]
    assert [c["id"] for c in data(result)["chats"]] == [3]

    def ids(**arguments: Any) -> list[int]:
        return [m["id"] for m in data(session.call("search_messages", **arguments))["messages"]]

    assert ids(query="e", sender="Bob") == [20, 17, 14]
    assert ids(query="wait", sender="me") == [19]
    assert ids(query="snacks", sender="alice appleseed") == [18]  # a voice transcript
    assert ids(query="e", chat="Alice", sender="+1 555 555 0123", limit=2) == [22, 21]
    assert ids(query="cabin", before="2026-02-02T01:56:00Z") == [14]
    assert ids(query="cabin", after="2026-02-03") == []
    assert content_text(session.call("search_messages", query="cabin", after="2026-02-03")) == \
        "No messages match 'cabin'."


def test_get_context_around_a_hit(session: Session) -> None:
    result = session.call("get_context", message_id=14, before=1, after=2)
    lines = content_text(result).splitlines()
    assert lines[0].startswith("Weekend Trip [chat 3, group: Alice Appleseed, Bob]: 4 messages "
                               "around #14, oldest first")
    assert lines[2:] == ["#13 01:54 * You added +15555550188 to the conversation.",
                         ">> #14 01:55 Bob: Cabin is booked for Friday–Sunday",
                         "    reactions: ‼️ Alice Appleseed, 🎉 Bob",
                         "#17 01:58 Bob: https://example.com/cabin [link: Lakeside Cabin]",
                         "#18 01:59 Alice Appleseed: I'll bring the snacks (voice message)"]
    missing = session.call("get_context", message_id=999)
    assert missing.is_error and content_text(missing) == "No message #999 in any chat"


def test_get_attachment_returns_a_downscaled_image(session: Session, world: World) -> None:
    result = session.call("get_attachment", message_id=world.photo)
    assert not result.is_error, content_text(result)
    text, image = result.content
    assert text.text.startswith(  # type: ignore[union-attr]
        f"#{world.photo} [0: image view.jpg, 10 B]: 3000×2000, shown at 1568×1045 (image/jpeg)")
    assert image.type == "image" and image.mime_type == "image/jpeg"  # type: ignore[union-attr]
    decoded = Image.open(io.BytesIO(base64.b64decode(image.data)))  # type: ignore[union-attr]
    assert decoded.size == (1568, 1045)
    assert data(result)["image"]["source_width"] == 3000
    small = session.call("get_attachment", message_id=world.photo, max_pixels=200)
    assert data(small)["image"]["width"] == 200


def test_get_attachment_other_files_and_failures(session: Session) -> None:
    voice = session.call("get_attachment", message_id=18)
    assert [block.type for block in voice.content] == ["text"]
    assert "transcript: I'll bring the snacks" in content_text(voice)
    assert data(voice)["attachment"]["mime_type"] == "audio/x-caf"
    broken = session.call("get_attachment", message_id=9)  # 1 KB of zeros named .jpeg
    assert broken.is_error
    assert content_text(broken).startswith("Cannot decode IMG_0042.jpeg as an image:")
    beyond = session.call("get_attachment", message_id=9, index=3)
    assert content_text(beyond) == "Message #9 has 1 attachment; no index 3"
    assert content_text(session.call("list_chats")).startswith("3 chats")  # still serving


def test_list_attachments_newest_first_for_get_attachment(session: Session,
                                                          world: World) -> None:
    result = session.call("list_attachments")
    assert content_text(result).splitlines() == [
        "3 attachments, newest first (times UTC+00:00):",
        "-- Weekend Trip [chat 3, group: Alice Appleseed, Bob] · Mon 2026-02-02 --",
        f"#{world.photo} 02:40 Bob: [0: image view.jpg, 10 B] the view",
        "#18 01:59 Alice Appleseed: [0: audio Audio Message.caf, 1 KB] transcript: I'll bring "
        "the snacks",
        "-- Alice Appleseed (+15555550123) [chat 1] · Mon 2026-02-02 --",
        "#9 01:50 Alice Appleseed: [0: image IMG_0042.jpeg, 1 KB]"]
    body = data(result)
    assert body["has_more"] is False
    assert [c["id"] for c in body["chats"]] == [world.chats["trip"], world.chats["alice"]]
    first = body["attachments"][0]
    assert {k: first[k] for k in ("message_id", "index", "chat_id", "sender", "sender_name",
                                  "is_from_me", "kind")} == {
        "message_id": world.photo, "index": 0, "chat_id": world.chats["trip"],
        "sender": "bob@example.com", "sender_name": "Bob", "is_from_me": False, "kind": "image"}
    assert first["attachment"]["transfer_name"] == "view.jpg"
    assert first["attachment"]["missing"] is False
    assert body["attachments"][1]["attachment"]["transcription"] == "I'll bring the snacks"
    shown = session.call("get_attachment", message_id=first["message_id"], index=first["index"])
    assert data(shown)["image"]["source_width"] == 3000


def test_list_attachments_filters_and_limit(session: Session, world: World) -> None:
    def listed(**arguments: Any) -> list[tuple[int, int]]:
        body = data(session.call("list_attachments", **arguments))
        return [(a["message_id"], a["index"]) for a in body["attachments"]]

    photo, voice, alice_photo = (world.photo, 0), (18, 0), (9, 0)
    assert listed(kind="image") == [photo, alice_photo]
    assert listed(kind="audio") == [voice]
    assert listed(kind="video") == [] and listed(kind="file") == []
    assert listed(chat="weekend trip") == [photo, voice]
    assert listed(chat_id=world.chats["alice"]) == [alice_photo]
    assert listed(sender="Bob") == [photo]
    assert listed(sender="+1 (555) 555-0123", kind="image") == [alice_photo]
    assert listed(sender="me") == []
    assert listed(after="2026-02-02T01:55:00Z") == [photo, voice]
    assert listed(before="2026-02-02T01:55:00Z") == [alice_photo]
    assert listed(chat="Alice", sender="alice", before="2026-02-02T01:50:00Z") == []
    text = content_text(session.call("list_attachments", chat="weekend", kind="audio"))
    assert text.splitlines()[0] == ("1 audio file in Weekend Trip [chat 3, group: Alice "
                                    "Appleseed, Bob], newest first (times UTC+00:00):")
    assert content_text(session.call("list_attachments", chat_id=1, kind="video")) == \
        "No videos in Alice Appleseed (+15555550123) [chat 1]."
    assert content_text(session.call("list_attachments", sender="Bob", kind="audio")) == \
        "No audio files from Bob."
    page = session.call("list_attachments", limit=1, kind="image")
    assert data(page)["has_more"] is True
    older = content_text(page).splitlines()[-1]
    created = data(page)["attachments"][0]["created_at"]
    assert older == f'(older: list_attachments(kind="image", before="{created}"))'
    assert listed(kind="image", before=created) == [alice_photo]


def test_list_attachments_refuses_bad_arguments(session: Session) -> None:
    def error(**arguments: Any) -> str:
        result = session.call("list_attachments", **arguments)
        assert result.is_error
        return content_text(result)

    assert error(chat_id=99) == "Chat not found: 99"
    assert error(chat_id=1, chat="Alice") == "Give chat_id or chat, not both"
    assert error(sender="Zed") == "No one matches 'Zed'"
    assert error(chat_id=1, sender="Bob") == "No one matches 'Bob' in chat 1"
    assert error(after="later").startswith("Invalid time: 'later'")
    assert "kind" in error(kind="photo")
    assert "limit" in error(limit=101)


def test_bad_arguments_are_tool_errors(session: Session) -> None:
    def error(tool: str, **arguments: Any) -> str:
        result = session.call(tool, **arguments)
        assert result.is_error
        return content_text(result)

    assert error("read_messages", chat_id=99) == "Chat not found: 99"
    assert error("read_messages", chat="zzzz qqqq") == "Chat not found: zzzz qqqq"
    assert error("read_messages").startswith("Give chat_id, or chat:")
    assert error("read_messages", chat_id=1, chat="Alice") == "Give chat_id or chat, not both"
    assert error("read_messages", chat_id=1, before="soon").startswith("Invalid time: 'soon'")
    assert error("read_messages", chat_id=1, after="1d", before="2d") == \
        "after must be earlier than before"
    assert "limit" in error("read_messages", chat_id=1, limit=0)
    assert "timeout_s" in error("wait_for_message", timeout_s=301)
    result = session.call("read_messages", chat_id=99)
    assert result.structured_content == {"error": {"type": "ChatNotFound",
                                                   "message": "Chat not found: 99",
                                                   "exit_code": 3}}


def test_diagnose(session: Session) -> None:
    result = session.call("diagnose")
    text = content_text(result)
    assert text.splitlines()[0].startswith("ok    database    ")
    assert "ok    contacts    5 contacts from 3 stores" in text
    assert "skip  bridge      IMCore helper not running" in text
    assert "sending off" in text
    assert data(result)["server"]["mode"] == "sending off"
