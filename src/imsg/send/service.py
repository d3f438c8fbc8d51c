"""What local history says about a target: which chat it names, which service reaches it."""

from __future__ import annotations

from dataclasses import dataclass

from imsg.chatdb.reader import ChatDB, ChatRef
from imsg.send.targets import Service, Target

_IMESSAGE = frozenset({"imessage", "imessagelite"})


@dataclass(frozen=True, slots=True)
class ServiceChoice:
    """The service to use, and whether a failed first attempt may be retried over SMS."""

    service: Service
    sms_fallback: bool


def find_chat(db: ChatDB, target: Target) -> ChatRef:
    """The chat a chat target names; raises ChatNotFound."""
    if target.kind == "chat_id":
        return db.chat_ref(int(target.value))
    if target.kind == "chat_guid":
        return db.chat_ref(db.chat_id_by(guid=target.value))
    return db.chat_ref(db.chat_id_by(identifier=target.value))


def choose_service(db: ChatDB, handle: str, requested: Service, *, text_only: bool,
                   allow_sms_fallback: bool = True) -> ServiceChoice:
    """The service for a direct send to ``handle`` (normalized).

    ``imessage``/``sms`` are kept. ``auto``: emails and handles seen on iMessage use iMessage;
    handles seen only on SMS/RCS use SMS; unknown handles use iMessage. The SMS fallback is
    allowed only for ``auto`` iMessage text sends to a phone number, when
    ``allow_sms_fallback`` is set (the Swift tool's narrow rule).
    """
    if requested != "auto":
        return ServiceChoice(requested, sms_fallback=False)
    is_phone = handle.startswith("+") and "@" not in handle
    seen = set() if not is_phone else db.handle_services(handle)
    if seen and not seen & _IMESSAGE:
        return ServiceChoice("sms", sms_fallback=False)
    return ServiceChoice("imessage", sms_fallback=allow_sms_fallback and text_only and is_phone)
