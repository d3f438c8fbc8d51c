"""Polls as the bridge needs them from local history: a poll's options (to vote by index or
text) and this account's current choices (to withdraw one), read through the reader's poll
decoding (``imsg.chatdb.polls``).

Only the newest ``SCAN_LIMIT`` messages of the chat are looked at. ``poll_options`` raises
``InvalidInput`` (``poll <guid> not found or not decodable``) when the poll is not among them
or has no options; ``choose`` raises ``InvalidInput`` for a missing, doubled, out-of-range or
unknown option selector.
"""

from __future__ import annotations

from imsg.chatdb.reader import ChatDB
from imsg.errors import InvalidInput

SCAN_LIMIT = 500
Option = tuple[str, str]  # (option id, label)


def poll_options(db: ChatDB, chat_id: int, poll_guid: str) -> tuple[str, list[Option]]:
    """``(the poll row's guid, its options)``."""
    wanted = poll_guid.upper()
    for message in db.history(chat_id, limit=SCAN_LIMIT):
        poll = message.poll
        if message.guid.upper() == wanted and poll is not None and poll.options:
            return message.guid, [(option.id, option.text) for option in poll.options]
    raise InvalidInput(f"poll {poll_guid} not found or not decodable")


def my_selection(db: ChatDB, chat_id: int, poll_guid: str) -> list[str]:
    """The option ids of this account's newest vote on the poll (its selection snapshot)."""
    wanted = poll_guid.upper()
    for message in db.history(chat_id, limit=SCAN_LIMIT):
        poll = message.poll
        if (message.is_from_me and poll is not None and poll.kind == "vote"
                and (poll.poll_guid or "").upper() == wanted):
            return [vote.option_id for vote in poll.votes]
    return []


def choose(options: list[Option], *, option_id: str | None = None,
           option_index: int | None = None, option: str | None = None) -> Option:
    """The one option named by id, 1-based index or label (case-insensitive)."""
    given = [v for v in (option_id, option_index, option) if v is not None]
    if len(given) != 1:
        raise InvalidInput("exactly one of option_id, option_index, or option is required")
    if option_index is not None:
        if not 1 <= option_index <= len(options):
            raise InvalidInput(f"option_index {option_index} out of range "
                               f"(1...{len(options)})")
        return options[option_index - 1]
    if option_id is not None:
        for candidate in options:
            if candidate[0].lower() == option_id.strip().lower():
                return candidate
        raise InvalidInput(f"option_id {option_id} is not an option of this poll")
    text = (option or "").strip().casefold()
    for candidate in options:
        if candidate[1].strip().casefold() == text:
            return candidate
    raise InvalidInput(f"option {option!r} is not an option of this poll")
