"""The guards that keep the bot from answering itself.

- ``EchoCache``: what this gateway just sent, per conversation scope (ids kept 60 s, texts
  4 s, recorded after every chunk is sent). Messages writes our own send back into chat.db,
  sometimes also as a twin row with ``is_from_me = 0`` and another GUID, or first unflagged
  and corrected later. An inbound row whose ROWID/GUID is one we sent, or whose text equals a
  text we sent in the same conversation within 4 s, is an echo. Each remembered text absorbs
  one echo only, so a person repeating the bot's words after the echo arrived is heard.
  Attachment-only sends are remembered by file name, so a person's own photo is never taken
  for the bot's. Failure mode: a person typing exactly what the bot said, within 4 s and
  before the echo arrives, is taken for the echo (logged as such).
- ``SelfChatCache``: in a "notes to self" thread Messages writes each message twice (from me,
  then mirrored as not from me). The from-me copy is remembered (10 s, 512 entries, keyed by
  scope + timestamp + SHA-256 of the text) and the mirror dropped.
- ``reflection_marker``: assistant-internal markup (thinking tags, ``assistant to=…``, ``#+#+``
  runs) outside code, the sign of our output reflected back as input.
- ``LoopBreaker``: after 5 *echo* drops in 60 s in one conversation, dispatches there pause
  until the window passes. Only drops that prove our own output came back count (echo and
  self-chat echo hits), never plain from-me rows, so a busy chat is not muted by its owner.

All are bounded in memory whatever the traffic; all take ``now`` so tests need no clock.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass

ID_TTL_S = 60.0
TEXT_TTL_S = 4.0
SELF_CHAT_TTL_S = 10.0
SELF_CHAT_MAX = 512
ECHO_SCOPES_MAX = 4096
ECHO_PER_SCOPE_MAX = 256
LOOP_THRESHOLD = 5
LOOP_WINDOW_S = 60.0
LOOP_KEYS_MAX = 4096
PLACEHOLDER_IDS = frozenset({"", "ok", "unknown"})


def normalize_text(text: str) -> str:
    return text.replace("\r\n", "\n").strip()


@dataclass(slots=True)
class _Sent:
    key: str
    at: float
    absorbed: bool = False


class EchoCache:
    """Recent sends per scope (``chat_id:N`` or ``imessage:<handle>``)."""

    def __init__(self, id_ttl_s: float = ID_TTL_S, text_ttl_s: float = TEXT_TTL_S) -> None:
        self.id_ttl_s = id_ttl_s
        self.text_ttl_s = text_ttl_s
        self._ids: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._texts: OrderedDict[str, deque[_Sent]] = OrderedDict()

    def remember(self, scope: str, *, text: str = "", ids: Iterable[object] = (),
                 file_name: str = "", now: float) -> None:
        """Record one sent message (a chunk, or a file with its caption)."""
        known = self._ids.setdefault(scope, {})
        self._ids.move_to_end(scope)
        for value in ids:
            key = str(value).strip() if value is not None else ""
            if key not in PLACEHOLDER_IDS:
                known[key] = now
        sent = self._texts.setdefault(scope, deque(maxlen=ECHO_PER_SCOPE_MAX))
        self._texts.move_to_end(scope)
        if normalize_text(text):
            sent.append(_Sent("t:" + normalize_text(text), now))
        if file_name:
            sent.append(_Sent("f:" + file_name, now))
        self._trim(now)

    def is_echo(self, scopes: Iterable[str], *, ids: Iterable[object], text: str,
                file_names: Iterable[str] = (), now: float) -> bool:
        """Pure look-up: would ``match`` find this row? (Used by the decision function.)"""
        return self._find(scopes, ids, text, tuple(file_names), now) is not None

    def absorb(self, scopes: Iterable[str], *, ids: Iterable[object], text: str,
               file_names: Iterable[str] = (), now: float) -> None:
        """Mark the remembered send that this echo matched as used up."""
        found = self._find(scopes, ids, text, tuple(file_names), now)
        if isinstance(found, _Sent):
            found.absorbed = True

    def _find(self, scopes: Iterable[str], ids: Iterable[object], text: str,
              file_names: tuple[str, ...], now: float) -> _Sent | bool | None:
        scopes = tuple(scopes)
        wanted = {str(v) for v in ids if v is not None} - PLACEHOLDER_IDS
        for scope in scopes:
            for key, at in self._ids.get(scope, {}).items():
                if key in wanted and now - at <= self.id_ttl_s:
                    return True
        keys = {"f:" + name for name in file_names if name}
        if normalize_text(text):
            keys.add("t:" + normalize_text(text))
        if not keys:
            return None
        for scope in scopes:
            for sent in reversed(self._texts.get(scope, ())):
                if (not sent.absorbed and sent.key in keys
                        and now - sent.at <= self.text_ttl_s):
                    return sent
        return None

    def _trim(self, now: float) -> None:
        while len(self._ids) > ECHO_SCOPES_MAX:
            self._ids.popitem(last=False)
        while len(self._texts) > ECHO_SCOPES_MAX:
            self._texts.popitem(last=False)
        for scope in list(self._ids)[:8]:  # amortized expiry of the oldest scopes
            live = {k: t for k, t in self._ids[scope].items() if now - t <= self.id_ttl_s}
            if live:
                self._ids[scope] = live
            else:
                del self._ids[scope]
        for scope in list(self._texts)[:8]:
            sent = self._texts[scope]
            while sent and now - sent[0].at > self.text_ttl_s:
                sent.popleft()
            if not sent:
                del self._texts[scope]


class SelfChatCache:
    """From-me rows seen in self-chat threads, to drop their mirrored copies."""

    def __init__(self, ttl_s: float = SELF_CHAT_TTL_S, max_entries: int = SELF_CHAT_MAX) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    @staticmethod
    def key(scope: str, created_at: str, text: str) -> str:
        digest = hashlib.sha256(normalize_text(text).encode("utf-8", "surrogatepass"))
        return f"{scope}|{created_at}|{digest.hexdigest()}"

    def remember(self, key: str, now: float) -> None:
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)

    def seen(self, key: str, now: float) -> bool:
        at = self._seen.get(key)
        return at is not None and now - at <= self.ttl_s


_FENCED = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)", re.DOTALL)
_INLINE = re.compile(r"`[^`\n]*`")
_MARKERS = (
    ("separator", re.compile(r"#\+#\+")),
    ("assistant to=", re.compile(r"\bassistant\s+to=[\w.-]+", re.IGNORECASE)),
    ("thinking tag", re.compile(r"<\s*/?\s*(?:think|thinking|thought|antthinking)\s*>",
                                re.IGNORECASE)),
    ("memory tag", re.compile(r"<\s*/?\s*relevant[_-]memories\s*>", re.IGNORECASE)),
    ("final tag", re.compile(r"<\s*/?\s*final\b[^<>\n]*>", re.IGNORECASE)),
)


def strip_code(text: str) -> str:
    """``text`` without fenced blocks and inline code spans."""
    return _INLINE.sub(" ", _FENCED.sub(" ", text))


def reflection_marker(text: str) -> str | None:
    """The name of the first assistant-internal marker found outside code, or None.
    Tags must be complete (``<thought>`` matches, ``<thought experiment`` does not)."""
    if not any(ch in text for ch in "#<aA"):
        return None
    prose = strip_code(text)
    for name, pattern in _MARKERS:
        if pattern.search(prose):
            return name
    return None


class LoopBreaker:
    """Counts echo drops per conversation key; trips at ``threshold`` within ``window_s``."""

    def __init__(self, threshold: int = LOOP_THRESHOLD, window_s: float = LOOP_WINDOW_S) -> None:
        self.threshold = threshold
        self.window_s = window_s
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def record(self, key: str, now: float) -> None:
        hits = self._hits.setdefault(key, deque(maxlen=self.threshold))
        self._hits.move_to_end(key)
        hits.append(now)
        while len(self._hits) > LOOP_KEYS_MAX:
            self._hits.popitem(last=False)

    def tripped(self, key: str, now: float) -> bool:
        hits = self._hits.get(key)
        return (hits is not None and len(hits) >= self.threshold
                and now - hits[0] <= self.window_s)
