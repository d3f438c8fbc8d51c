"""The accepted parameters of the bridge methods (canonical name → aliases), as the Swift tool
spells them (``imsg.rpc.params`` checks them strictly). Pure data, so the method catalog can
list every method without importing the bridge."""

from __future__ import annotations

from imsg.rpc.params import Accepted

REPLY: Accepted = {"reply_to": ("replyTo", "reply_to_guid", "message_guid")}
TARGET: Accepted = {"message_id": ("messageId", "message_guid", "messageGuid", "message")}
PART: Accepted = {"part_index": ("partIndex",)}
POLL_CHOICE: Accepted = {
    "poll_guid": ("pollGuid", "poll_message_guid", "message_guid", "message_id"),
    "option_id": ("optionId", "optionIdentifier"), "option_index": ("optionIndex",),
    "option": (),
}
CHAT: Accepted = {"chat_id": (), "chat_identifier": (), "chat_guid": ()}
PARAMS: dict[str, Accepted] = {
    "bridge.events.subscribe": {"buffer_limit": ("bufferLimit",)},
    "chat": CHAT,
    "send.rich": {**CHAT, "text": ("message",), "file": ("path",), "url": (),
                  "effect_id": ("effectId", "effect"), "subject": (), **REPLY, **PART,
                  "dd_scan": ("ddScan",), "text_formatting": ("textFormatting",)},
    "send.attachment": {**CHAT, "file": ("path",), "audio": ("is_audio", "as_voice"), **REPLY,
                        **PART},
    "send.multipart": {**CHAT, "parts": (), "effect_id": ("effectId", "effect"), "subject": ()},
    "send.sticker": {**CHAT, "file": ("path",), "attach_to": (), **PART},
    "poll.send": {**CHAT, **REPLY, "question": (), "options": ("option",),
                  "creator_handle": ("creatorHandle",), "comment": (),
                  "suppress_comment": ("suppressComment",)},
    "poll.vote": {**CHAT, **POLL_CHOICE},
    "tapback": {**CHAT, **TARGET, "reaction": ("kind",), "emoji": (), "remove": (), **PART},
    "typing": {"to": (), **CHAT, "typing": (), "service": ()},
    "read": {"to": (), **CHAT},
    "message.edit": {**CHAT, **TARGET, "text": ("new_text", "newText", "edited_message"),
                     "backwards_compatibility_message": (
                         "backwardsCompatibilityMessage", "bc_text", "bcText"), **PART},
    "message.unsend": {**CHAT, **TARGET, **PART},
    "message.target": {**CHAT, **TARGET},
    "chats.create": {"addresses": (), "service": (), "name": (), "text": ()},
    "group.rename": {**CHAT, "name": ()},
    "group.setIcon": {**CHAT, "file": ()},
    "group.member": {**CHAT, "address": ()},
    "handles.check": {"address": (), "alias_type": (), "service": ()},
}
