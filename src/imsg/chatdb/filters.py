"""Message filters shared by history, watch and paging: participants and a date window."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from imsg.chatdb.dates import parse_iso
from imsg.chatdb.models import Message
from imsg.errors import InvalidInput


@dataclass(slots=True)
class Filters:
    """Participants (handles, compared case-insensitively) and dates as Unix ns (start
    inclusive, end exclusive). Empty means "everything"."""

    participants: tuple[str, ...] = ()
    start_ns: int | None = None
    end_ns: int | None = None
    _wanted: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        # accepts() runs for every watched row: fold the handles once, not per row.
        self._wanted = frozenset(p.casefold() for p in self.participants)

    @classmethod
    def parse(
        cls,
        participants: Iterable[str] | None = None,
        start: str | None = None,
        end: str | None = None,
    ) -> Filters:
        """Validate user input; raises InvalidDate/InvalidInput."""
        handles = tuple(p.strip() for p in participants or () if p and p.strip())
        filters = cls(handles, parse_iso(start) if start else None, parse_iso(end) if end else None)
        if (
            filters.start_ns is not None
            and filters.end_ns is not None
            and filters.start_ns >= filters.end_ns
        ):
            raise InvalidInput("--start must be before --end")
        return filters

    def accepts(self, message: Message, date_ns: int | None) -> bool:
        if self._wanted and message.sender.casefold() not in self._wanted:
            return False
        if date_ns is not None:
            if self.start_ns is not None and date_ns < self.start_ns:
                return False
            if self.end_ns is not None and date_ns >= self.end_ns:
                return False
        return True
