"""Waiting for the row a bridge send wrote in chat.db (``send.rich`` with a file,
``send.multipart``, poll captions): success is reported only once Messages shows it.

``observe_sent`` looks at rows after ``baseline`` in chat ``chat_id`` every ``interval_s`` for
an outgoing one: the helper's ``guid`` when it gave one, else the first outgoing row (with an
attachment when ``attachment`` is set). It returns the message, or None when none appeared
within ``timeout_s``; reading failures propagate as ``imsg.errors`` (the database went away).
"""

from __future__ import annotations

import time

from imsg.chatdb.models import Message
from imsg.chatdb.reader import ChatDB

TIMEOUT_S = 8.0
INTERVAL_S = 0.05
_PAGE = 200


def observe_sent(db: ChatDB, baseline: int, chat_id: int, guid: str | None, *,
                 attachment: bool = False, timeout_s: float = TIMEOUT_S,
                 interval_s: float = INTERVAL_S) -> Message | None:
    deadline = time.monotonic() + timeout_s
    wanted = guid.upper() if guid else None
    while True:
        cursor = baseline
        while True:
            rows = db.messages_after(cursor, limit=_PAGE, chat_id=chat_id)
            for message, _ in rows:
                if _matches(message, wanted, attachment):
                    return message
            if len(rows) < _PAGE:
                break
            cursor = rows[-1][0].id
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval_s)


def _matches(message: Message, guid: str | None, attachment: bool) -> bool:
    if not message.is_from_me:
        return False
    if guid is not None:
        return message.guid.upper() == guid
    return bool(message.attachments) or not attachment
