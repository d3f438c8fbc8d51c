"""Finding chats and people from what a person would say: a name, a nickname with a typo, a
phone number typed any way, an email, a group's title, or several people at once.

``find_chats`` scores every chat that has messages (most recent first breaks ties) against the
query and returns the best ones; ``resolve_chat`` is the one chat ``read_messages`` and the
other tools read when they are given a query instead of an id; ``handles_named`` turns a
person into the handles a filter compares.

Scores (higher is better, 100 at most), per query part:

- a handle (phone in any national or international spelling, email in any case) equal to a
  participant's: 100 in a direct chat, 90 in a group;
- a group title or a participant's contact name equal to the part (case and spaces ignored):
  100 for a direct chat or a title, 70 for a member of a group;
- every word of the part starting a word of the name: 85 / 60; the part inside the name: 75 /
  50; a name within two typos' similarity (``difflib`` ratio ≥ 0.8, word by word): up to 65 /
  45; the part's digits (4 or more) inside a participant's phone: 60 / 40.

A query naming several people (``Alice, Bob``, ``Alice and Bob``, ``Alice & Bob``) scores
each chat by its weakest part, so only chats with every one of them match; a group of exactly
those people scores 5 more. Chats scoring under 40 are not returned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from imsg.chatdb.models import Chat
from imsg.chatdb.reader import ChatDB
from imsg.errors import ChatNotFound, InvalidInput, InvalidTarget
from imsg.send.targets import normalize_handle, normalize_phone

MAX_CHATS = 100_000
MIN_SCORE = 40.0
_SPLIT = re.compile(r"\s*(?:,|&|\+|;|\band\b)\s*", re.IGNORECASE)
_NON_DIGITS = re.compile(r"\D+")
_E164 = re.compile(r"\+\d{6,15}")


@dataclass(frozen=True, slots=True)
class Found:
    chat: Chat
    score: float


def fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def as_handle(value: str, region: str = "US") -> str | None:
    """``value`` as chat.db spells handles (E.164 or a lower-cased email), or None when it is
    not one."""
    try:
        return normalize_handle(value, region)
    except (InvalidTarget, InvalidInput):
        return None


def same_handle(left: str, right: str, region: str = "US") -> bool:
    """Whether two handles name the same address (phones compared in E.164)."""
    if left.casefold() == right.casefold():
        return True
    a, b = normalize_phone(left, region), normalize_phone(right, region)
    return a is not None and a == b


def all_chats(db: ChatDB) -> list[Chat]:
    """Every chat with messages, most recent activity first."""
    return db.chats(MAX_CHATS)


def find_chats(db: ChatDB, query: str, limit: int, names: dict[str, str]) -> list[Found]:
    """The ``limit`` best chats for ``query`` (module docstring), best first. ``names`` is
    filled with the contact names of every participant seen. Raises InvalidInput for an
    empty query and the DatabaseError family."""
    parts = [_Part.of(p) for p in _SPLIT.split(query) if p.strip()]
    if not parts:
        raise InvalidInput("query must name a person, a phone number, an email or a group")
    chats = all_chats(db)
    names.update(db.contact_names(h for chat in chats for h in chat.participants))
    phones: dict[str, str | None] = {}
    found = []
    for chat in chats:
        score = min(_part_score(chat, part, names, phones) for part in parts)
        if len(parts) > 1 and chat.is_group and len(chat.participants) == len(parts):
            score += 5
        if score >= MIN_SCORE:
            found.append(Found(chat, score))
    found.sort(key=lambda f: -f.score)  # stable: recency breaks ties
    return found[:limit]


def resolve_chat(db: ChatDB, query: str, names: dict[str, str]) -> tuple[Chat, list[Found]]:
    """The best chat for ``query`` and the runners-up worth mentioning (within 15 points of
    it); raises ChatNotFound when nothing matches."""
    found = find_chats(db, query, 4, names)
    if not found:
        raise ChatNotFound(query)
    best = found[0]
    return best.chat, [f for f in found[1:] if f.score >= best.score - 15]


def chat_by_id(db: ChatDB, chat_id: int) -> Chat:
    """The chat with this ROWID as a full ``Chat`` (unread count, contact name); raises
    ChatNotFound."""
    from imsg.chatdb.chats import chat_payload

    ref = db.chat_ref(chat_id)
    unread = db.unread_counts([chat_id]).get(chat_id, 0) if db.q.has_read_state else None
    contact = None
    if not ref.is_group:
        names = db.contact_names([ref.identifier, *ref.participants])
        contact = names.get(ref.identifier) or (
            names.get(ref.participants[0]) if len(ref.participants) == 1 else None)
    return chat_payload(ref, unread=unread, contact_name=contact)


def handles_named(value: str, handles: Iterable[str], names: dict[str, str]) -> list[str]:
    """The handles among ``handles`` that ``value`` names: the same address, or a contact
    name matching as a chat query part would (at least the substring rule)."""
    address = as_handle(value)
    pool = sorted(set(handles))
    if address is not None:
        return [h for h in pool if same_handle(h, address)]
    wanted = fold(value)
    scored = [(h, _name_score(wanted, fold(names[h]))) for h in pool if h in names]
    best = max((score for _, score in scored), default=0.0)
    if best < 75:
        return []
    return [h for h, score in scored if score == best]


@dataclass(frozen=True, slots=True)
class _Part:
    text: str  # folded
    address: str | None  # as a handle, when it is one
    digits: str

    @classmethod
    def of(cls, raw: str) -> _Part:
        return cls(fold(raw), as_handle(raw), _NON_DIGITS.sub("", raw))


def _part_score(chat: Chat, part: _Part, names: dict[str, str],
                phones: dict[str, str | None]) -> float:
    direct = not chat.is_group
    members = chat.participants or [chat.identifier]
    if part.address is not None:
        for handle in members:
            if handle.casefold() == part.address.casefold():
                return 100.0 if direct else 90.0
            if handle not in phones:  # chat.db mostly stores E.164 already: no parsing then
                canonical = "@" in handle or _E164.fullmatch(handle) is not None
                phones[handle] = None if canonical else normalize_phone(handle, "US")
            if phones[handle] == part.address:
                return 100.0 if direct else 90.0
        # Not a participant's address: a short number ("5550188") may still be a fragment.
    best = 0.0
    title = fold(chat.display_name) if chat.is_group else ""
    if title and title != fold(chat.identifier):
        best = _name_score(part.text, title)
    member_scale = 1.0 if direct else 0.7
    for handle in members:
        name = names.get(handle)
        if name:
            best = max(best, _name_score(part.text, fold(name)) * member_scale)
        if len(part.digits) >= 4 and part.digits in _NON_DIGITS.sub("", handle):
            best = max(best, 60.0 if direct else 40.0)
    return best


def _name_score(part: str, name: str) -> float:
    """How well a folded query part names a folded name (module docstring, direct scale)."""
    if part == name:
        return 100.0
    words, wanted = name.split(), part.split()
    if all(any(w.startswith(q) for w in words) for q in wanted):
        return 85.0
    if part in name:
        return 75.0
    return _typo_score(wanted, words)


def _typo_score(wanted: Sequence[str], words: Sequence[str]) -> float:
    """Every query word close to some word of the name (ratio ≥ 0.8): 65 × the weakest."""
    if not wanted or not words:
        return 0.0
    weakest = 1.0
    for q in wanted:
        ratio = max((_ratio(q, w) for w in words), default=0.0)
        if ratio < 0.8:
            return 0.0
        weakest = min(weakest, ratio)
    return 65.0 * weakest


def _ratio(a: str, b: str) -> float:
    """``SequenceMatcher.ratio``, skipped (0) when its cheap upper bounds are already below
    0.8: most pairs of words are nowhere near each other."""
    matcher = SequenceMatcher(None, a, b)
    if matcher.real_quick_ratio() < 0.8 or matcher.quick_ratio() < 0.8:
        return 0.0
    return matcher.ratio()
