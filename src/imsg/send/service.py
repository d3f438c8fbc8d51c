"""What local history says about a target: which chat it names, which service reaches it."""

from __future__ import annotations

from dataclasses import dataclass

from imsg.chatdb.reader import ChatDB, ChatRef
from imsg.send.targets import Service, Target


@dataclass(frozen=True, slots=True)
class ServiceChoice:
    """The service to use, and whether a text-only send may retry over SMS when Messages
    cannot find the buddy on iMessage (no history says either way)."""

    service: Service
    sms_fallback: bool


def find_chat(db: ChatDB, target: Target) -> ChatRef:
    """The chat a chat target names; raises ChatNotFound."""
    if target.kind == "chat_id":
        return db.chat_ref(int(target.value))
    if target.kind == "chat_guid":
        return db.chat_ref(db.chat_id_by(guid=target.value))
    return db.chat_ref(db.chat_id_by(identifier=target.value))


def choose_service(db: ChatDB, handle: str, requested: Service, *,
                   text_only: bool) -> ServiceChoice:
    """The service for a direct send to ``handle`` (normalized).

    ``imessage``/``sms`` are kept. ``auto``: emails and handles seen on iMessage use iMessage;
    handles seen only on SMS/RCS use SMS; unknown phone numbers use iMessage, with the SMS
    fallback for text-only sends.
    """
    if requested != "auto":
        return ServiceChoice(requested, sms_fallback=False)
    if "@" in handle:
        return ServiceChoice("imessage", sms_fallback=False)
    seen = db.handle_services(handle)
    if "imessage" in seen:
        return ServiceChoice("imessage", sms_fallback=False)
    if seen:
        return ServiceChoice("sms", sms_fallback=False)
    return ServiceChoice("imessage", sms_fallback=text_only)
