"""``message.send_status``: what chat.db says about one sent message, by guid.

Reads chat.db only (the newest row with that guid; ``send_status_row`` matches the guid as
given, upper- or lower-cased, through the guid index), so a client whose ``send`` answer was
lost can ask whether it went out. The shape is the Swift tool's::

    {"ok": true, "guid": G, "send_state": "failed|delivered|sent|pending",
     "service": "iMessage"|null, "checked_at": ISO, "delivered_at"?: ISO,
     "status_fields": {is_sent, is_delivered, is_finished, error, date_delivered,
                       date_read, is_delayed, is_prepared, is_pending_satellite_send,
                       was_downgraded} | null}

``send_state``: ``failed`` when ``error`` is not 0, else ``delivered`` when ``is_delivered``
or ``date_delivered`` is set, else ``sent`` when ``is_sent``, else ``pending``; an unknown guid
is ``pending`` with ``status_fields: null``. Columns a database lacks read as 0/empty; values
that are not numbers (a damaged row) read as 0, dates outside what ISO-8601 can show as null.

Failure modes: InvalidInput (``guid is required``) for an empty guid; the reader's
DatabaseError family when chat.db cannot be read.
"""

from __future__ import annotations

import time
from typing import Any

from imsg.chatdb.dates import iso_from_apple, iso_from_unix_ns
from imsg.chatdb.reader import ChatDB
from imsg.errors import InvalidInput

FLAGS = ("is_sent", "is_delivered", "is_finished", "is_delayed", "is_prepared",
         "is_pending_satellite_send", "was_downgraded")


def send_status(db: ChatDB, guid: str) -> dict[str, Any]:
    """The send state of the message ``guid`` (see the module docstring)."""
    wanted = guid.strip() if isinstance(guid, str) else ""
    if not wanted:
        raise InvalidInput("guid is required")
    row = db.send_status_row(wanted)
    checked_at = iso_from_unix_ns(time.time_ns())
    if row is None:
        return {"ok": True, "guid": wanted, "send_state": "pending", "service": None,
                "checked_at": checked_at, "status_fields": None}
    flags = {name: bool(_number(row.get(name))) for name in FLAGS}
    error = _number(row.get("error"))
    delivered_at = _iso(row.get("date_delivered"))
    read_at = _iso(row.get("date_read"))
    if error:
        state = "failed"
    elif flags["is_delivered"] or delivered_at:
        state = "delivered"
    elif flags["is_sent"]:
        state = "sent"
    else:
        state = "pending"
    result: dict[str, Any] = {"ok": True, "guid": str(row.get("guid") or wanted),
                              "send_state": state, "service": row.get("service") or None,
                              "checked_at": checked_at}
    if delivered_at:
        result["delivered_at"] = delivered_at
    result["status_fields"] = {
        "is_sent": flags["is_sent"], "is_delivered": flags["is_delivered"],
        "is_finished": flags["is_finished"], "error": error, "date_delivered": delivered_at,
        "date_read": read_at, "is_delayed": flags["is_delayed"],
        "is_prepared": flags["is_prepared"],
        "is_pending_satellite_send": flags["is_pending_satellite_send"],
        "was_downgraded": flags["was_downgraded"],
    }
    return result


def _number(value: object) -> int:
    """An integer column's value; 0 for NULL, text or anything else a damaged row holds."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 2**63:
        return int(value)
    return 0


def _iso(value: object) -> str | None:
    """ISO-8601 of an Apple date; None for 0/NULL, damaged values, or dates beyond year 9999."""
    number = _number(value)
    if not number:
        return None
    try:
        return iso_from_apple(number)
    except (OverflowError, ValueError, OSError):
        return None
