"""The wire contract as JSON Schemas: every key imsg may emit, its type, and which keys are
always there. ``additionalProperties`` is false everywhere, so a renamed, retyped, missing or
unexpected key fails a test. Sources: the Swift tool's documented payloads (0.15) plus imsg's
documented additions (README, "Differences from the Swift imsg")."""

from __future__ import annotations

from typing import Any

ISO = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"}
INT = {"type": "integer"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
STRS = {"type": "array", "items": STR}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "required": list(required),
            "properties": {**required, **(optional or {})}, "additionalProperties": False}


ATTACHMENT = obj(
    {"filename": STR, "transfer_name": STR, "uti": STR, "mime_type": STR, "total_bytes": INT,
     "is_sticker": BOOL, "original_path": STR, "missing": BOOL},
    {"transcription": STR, "converted_path": STR, "converted_mime_type": STR,
     "conversion_error": STR})

REACTION = obj(
    {"id": INT, "type": {"enum": ["love", "like", "dislike", "laugh", "emphasis", "question",
                                  "custom", "sticker"]},
     "emoji": STR, "sender": STR, "is_from_me": BOOL, "created_at": ISO},
    {"sender_name": STR})

URL_PREVIEW = obj({"url": STR}, {"id": INT, "guid": STR, "balloon_bundle_id": STR,
                                 "created_at": ISO, "title": STR})

POLL_VOTE = obj({"option_id": STR, "participant": STR, "event_type": STR},
                {"option_text": STR, "server_time": STR})
POLL = obj(
    {"kind": {"enum": ["created", "vote", "unknown"]},
     "event": {"enum": ["imessage.poll.created", "imessage.poll.voted", "imessage.poll.unknown"]},
     "options": {"type": "array", "items": obj({"id": STR, "text": STR})},
     "votes": {"type": "array", "items": POLL_VOTE}, "participants": STRS,
     "metadata": {"type": "object"}},
    {"poll_guid": STR, "question": STR, "vote": POLL_VOTE, "original_guid": STR,
     "creator": STR})

GROUP_EVENT = obj({"type": STR}, {"handle": STR, "title": STR, "description": STR})

MESSAGE = obj(
    {"id": INT, "chat_id": INT, "guid": STR, "sender": STR, "is_from_me": BOOL, "text": STR,
     "created_at": ISO, "attachments": {"type": "array", "items": ATTACHMENT},
     "reactions": {"type": "array", "items": REACTION}, "chat_identifier": STR,
     "chat_guid": STR, "chat_name": STR, "participants": STRS, "is_group": BOOL},
    {"reply_to_guid": STR, "thread_originator_guid": STR, "thread_originator_part": STR,
     "reply_to_text": STR, "reply_to_sender": STR, "sender_name": STR,
     "destination_caller_id": STR, "balloon_bundle_id": STR, "url_preview": URL_PREVIEW,
     "poll": POLL, "is_read": BOOL, "date_read": ISO, "cursor": INT, "service": STR,
     "edited_at": ISO, "retracted_at": ISO,
     "edit_history": {"type": "array", "items": obj({"text": STR}, {"at": ISO})},
     "group_event": GROUP_EVENT, "is_reaction": BOOL, "reaction_type": STR,
     "reaction_emoji": STR, "is_reaction_add": BOOL, "reacted_to_guid": STR,
     "event": {"enum": ["edited", "retracted"]}})

CHAT = obj(
    {"id": INT, "name": STR, "identifier": STR, "service": STR, "last_message_at": ISO,
     "display_name": STR, "is_group": BOOL, "participants": STRS},
    {"guid": STR, "contact_name": STR, "account_id": STR, "account_login": STR,
     "last_addressed_handle": STR, "unread_count": INT})

GROUP = obj(
    {"id": INT, "identifier": STR, "guid": STR, "name": STR, "service": STR, "is_group": BOOL,
     "participants": STRS},
    {"account_id": STR, "account_login": STR, "last_addressed_handle": STR})

FEATURES = obj({name: BOOL for name in (
    "unread_state", "scheduled_messages", "reactions", "reply_context", "routing_metadata",
    "balloon_payloads")})

STATUS = obj({
    "version": STR, "protocol_version": {"const": 1},
    "database": {"oneOf": [
        obj({"path": STR, "ready": {"const": True}, "features": FEATURES}),
        obj({"path": STR, "ready": {"const": False}, "error": STR})]},
    "bridge": obj({"ready": BOOL}, {"error": STR, "bridge_version": INT, "v2_ready": BOOL,
                                    "registry_available": BOOL, "helper_version": STR,
                                    "selectors": {"type": "object",
                                                  "additionalProperties": BOOL}}),
    "contacts": obj({"available": BOOL}),
    "methods": STRS, "supported_methods": STRS,
    "capabilities": obj({"engine": obj({"version": STR, "commit": STR, "built_at": STR}),
                         "features": {"type": "object", "additionalProperties": INT}}),
    "server": obj({"pid": INT, "transport": {"enum": ["stdio", "socket"]},
                   "permissions": obj({"full_disk_access": STR, "automation": STR}),
                   "subscriptions": INT}, {"schema_profile": STR}),
})

DELIVERY = obj({"retry_safe": BOOL,
                "disposition": {"enum": ["not_started", "may_have_completed", "still_in_flight"]},
                "transport": {"enum": ["bridge_v2", "bridge_legacy", "applescript"]},
                "operation": STR, "detail": {"type": "string", "maxLength": 512}})

DATABASE_UNAVAILABLE = obj({"path": STR, "detail": STR, "retryable": {"const": True}},
                           {"reason": STR})

ERROR = obj({"code": INT, "message": STR}, {"data": {}})

SEND_RESULT = obj(
    {"ok": {"const": True}, "transport": {"enum": ["applescript", "bridge"]}},
    {"id": INT, "guid": STR, "message_id": STR, "chat_guid": STR, "chat_id": INT,
     "service": STR, "status": {"const": "sent"}, "attempt_id": STR})

AFTER_RESULT = obj(
    {"messages": {"type": "array", "items": MESSAGE}, "next_rowid": INT, "has_more": BOOL},
    {"skipped": {"type": "array", "items": obj({"rowid": INT, "guid": STR, "reason": {
        "enum": ["never_joined", "unreadable"]}})}, "waiting_on": INT})

SEND_STATUS = obj(
    {"ok": {"const": True}, "guid": STR,
     "send_state": {"enum": ["failed", "delivered", "sent", "pending"]},
     "service": {"type": ["string", "null"]}, "checked_at": ISO,
     "status_fields": {"oneOf": [{"type": "null"}, obj({
         "is_sent": BOOL, "is_delivered": BOOL, "is_finished": BOOL, "error": INT,
         "date_delivered": {"oneOf": [ISO, {"type": "null"}]},
         "date_read": {"oneOf": [ISO, {"type": "null"}]}, "is_delayed": BOOL,
         "is_prepared": BOOL, "is_pending_satellite_send": BOOL, "was_downgraded": BOOL})]}},
    {"delivered_at": ISO})

NOTIFICATIONS = {
    "message": obj({"subscription": INT, "message": MESSAGE}),
    "watch.overflow": obj({"subscription": INT, "resume_after_rowid": INT,
                           "reason": {"const": "buffer_limit_exceeded"},
                           "terminal": {"const": True}}),
    "watch.skipped": obj({"subscription": INT, "rowid": INT, "guid": STR}),
    "error": obj({"subscription": INT, "error": obj({"message": STR}, {"last_rowid": INT})}),
}

COUNT = {"type": "integer", "minimum": 0}
STATS = obj(
    {"total_messages": COUNT, "sent_messages": COUNT, "received_messages": COUNT,
     "time_zone": STR,
     "chats": {"type": "array", "items": obj({"chat_id": INT, "identifier": STR, "name": STR,
                                              "service": STR, "message_count": COUNT})},
     "senders": {"type": "array", "items": obj({"handle": STR, "message_count": COUNT})},
     "services": {"type": "array", "items": obj({"service": STR, "message_count": COUNT})},
     "dates": {"type": "array", "items": obj({
         "date": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\d$"},
         "message_count": COUNT})}},
    {"media": obj({
        "total_attachments": COUNT, "total_bytes": COUNT,
        "types": {"type": "array", "items": obj({"uti": STR, "mime_type": STR,
                                                 "attachment_count": COUNT,
                                                 "total_bytes": COUNT})},
        "chats": {"type": "array", "items": obj({"chat_id": INT, "identifier": STR,
                                                 "name": STR, "attachment_count": COUNT,
                                                 "total_bytes": COUNT})}})})

SCHEDULED = obj({"id": INT, "guid": STR, "chat_id": INT, "chat_identifier": STR,
                 "chat_guid": STR, "chat_name": STR, "text": STR, "service": STR,
                 "scheduled_at": ISO, "schedule_type": INT, "schedule_state": INT})
