"""What a watcher yields: ``WatchEvent``, carrying a ``Message`` or a ``SkippedRow``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from imsg.chatdb.models import Message

SkipReason = Literal["never_joined", "unreadable"]


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A message row given up: never joined to a chat within the horizon, or unreadable.

    ``detail`` is one human line (what ``imsg watch`` prints on stderr).
    """

    rowid: int
    guid: str
    reason: SkipReason
    detail: str


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One thing a watcher reports, in the order it happened:

    - ``"message"``: a new message (``message``, with ``cursor`` set);
    - ``"edited"`` / ``"retracted"``: an edit or unsend of a delivered message (``message``,
      with ``event`` set to the kind);
    - ``"skipped"``: a row given up (``skipped``); only from a watcher made with
      ``report_skipped=True``.
    """

    kind: Literal["message", "edited", "retracted", "skipped"]
    payload: Message | SkippedRow

    @property
    def message(self) -> Message:
        """The message; raises TypeError on a ``"skipped"`` event."""
        if not isinstance(self.payload, Message):
            raise TypeError("a skipped-row event carries no message: read .skipped")
        return self.payload

    @property
    def skipped(self) -> SkippedRow:
        """The row given up; raises TypeError on any other event."""
        if not isinstance(self.payload, SkippedRow):
            raise TypeError(f"a {self.kind!r} event carries a message, not a skipped row")
        return self.payload
