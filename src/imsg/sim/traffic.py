"""Traffic a gateway must survive, written into a simulated chat.db the way Messages writes it.

- ``echo_twin``: Messages sometimes records our own outgoing message a second time as if it
  had come in: ``is_from_me = 0``, another GUID, same chat and text.
- ``unflagged_outgoing`` + ``correct_from_me``: our own send first written with
  ``is_from_me = 0`` and corrected to 1 a moment later (a watcher sees the first version).
- ``icloud_backlog``: a burst of old, back-dated rows arriving now (high ROWIDs, dates hours or
  days ago), as when iCloud syncs a device's history.
- ``sms_conversation``: a direct chat on the SMS service with incoming texts, so replies must
  stay on SMS.

Every function takes a ``SimDB`` and returns the ROWIDs it wrote.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from imsg.sim.messages import ME, SimDB


def chat_of(sim: SimDB, rowid: int) -> int:
    row = sim.conn.execute("SELECT chat_id FROM chat_message_join WHERE message_id = ?",
                           (rowid,)).fetchone()
    if row is None:
        raise KeyError(f"message {rowid} is in no chat")
    return int(row[0])


def echo_twin(sim: SimDB, rowid: int, *, sender: str | None = None) -> int:
    """A twin of outgoing message ``rowid``: same chat and text, ``is_from_me = 0``, a new
    GUID. Its sender is the direct chat's other party (in a group: our own address, since the
    twin has no handle of its own), unless given."""
    chat_id = chat_of(sim, rowid)
    _, identifier, is_group = sim.chat_info(chat_id)
    return sim.message(chat_id, sim.text_of(rowid), sender=sender or (ME if is_group
                                                                      else identifier))


def unflagged_outgoing(sim: SimDB, chat_id: int, text: str) -> int:
    """Our own send, written first with ``is_from_me = 0`` (see ``correct_from_me``)."""
    _, identifier, is_group = sim.chat_info(chat_id)
    return sim.message(chat_id, text, sender=ME if is_group else identifier)


def correct_from_me(sim: SimDB, rowid: int) -> None:
    """The late correction: the row becomes the outgoing message it always was."""
    sim.conn.execute("UPDATE message SET is_from_me = 1, is_sent = 1, is_read = 0, "
                     "date_read = 0 WHERE ROWID = ?", (rowid,))


def icloud_backlog(sim: SimDB, chat_id: int, count: int, *, age_s: float = 3 * 86400,
                   sender: str | None = None, spacing_s: float = 60.0,
                   text: str = "old message {i}") -> list[int]:
    """``count`` incoming rows written now but dated ``age_s`` ago onwards (``spacing_s``
    apart)."""
    start = time.time() - age_s
    return [sim.receive(chat_id, sender, text.format(i=i), at=start + i * spacing_s)
            for i in range(count)]


def sms_conversation(sim: SimDB, handle: str, texts: Sequence[str]) -> tuple[int, list[int]]:
    """A direct SMS chat with ``handle`` and its incoming ``texts``: (chat id, ROWIDs)."""
    chat_id = sim.chat([handle], service="SMS")
    return chat_id, [sim.receive(chat_id, handle, text) for text in texts]
