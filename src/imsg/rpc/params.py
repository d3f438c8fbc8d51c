"""Strict method parameters (protocol v1), failing as ``InvalidParams`` before any side effect.

Each method declares the keys it accepts (canonical snake_case names, each with its accepted
aliases). ``Params`` checks the whole object up front, in this order, with the Swift tool's
words in ``data``:

- ``params`` present but not an object → ``params must be an object when present``;
- a key the method does not know (the alphabetically first) → ``unknown <method> param: <key>``;
- two spellings of one parameter → ``use only one of <a>, <b>`` (declaration order);
- an explicit ``null`` → ``<name> must not be null``.

Then each getter checks its type, naming the canonical key even when an alias was used:
integers are JSON integers within the signed 64-bit range (booleans, floats such as ``1.0`` and
numeric strings are rejected); booleans are ``true``/``false`` only; strings are JSON strings;
string arrays are arrays of strings (no comma-separated strings); object arrays are arrays of
objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, overload

from imsg.rpc.errors import InvalidParams

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

Accepted = Mapping[str, tuple[str, ...]]  # canonical name → aliases


class Params:
    def __init__(self, method: str, raw: Any, accepted: Accepted) -> None:
        if not isinstance(raw, dict):
            raise InvalidParams("params must be an object when present")
        spelling = {alias: name for name, aliases in accepted.items() for alias in aliases}
        spelling.update({name: name for name in accepted})
        unknown = sorted(key for key in raw if key not in spelling)
        if unknown:
            raise InvalidParams(f"unknown {method} param: {unknown[0]}")
        self._values: dict[str, Any] = {}
        for name, aliases in accepted.items():
            given = [key for key in (name, *aliases) if key in raw]
            if len(given) > 1:
                raise InvalidParams(f"use only one of {', '.join(given)}")
            if given:
                value = raw[given[0]]
                if value is None:
                    raise InvalidParams(f"{name} must not be null")
                self._values[name] = value

    def has(self, name: str) -> bool:
        return name in self._values

    @overload
    def integer(self, name: str, default: int, *, minimum: int | None = None,
                maximum: int | None = None) -> int: ...

    @overload
    def integer(self, name: str, default: None = None, *, minimum: int | None = None,
                maximum: int | None = None) -> int | None: ...

    def integer(self, name: str, default: int | None = None, *, minimum: int | None = None,
                maximum: int | None = None) -> int | None:
        """The integer ``name`` (or ``default``), within ``[minimum, maximum]``."""
        if name not in self._values:
            return default
        value = self._values[name]
        if (not isinstance(value, int) or isinstance(value, bool)
                or not _INT64_MIN <= value <= _INT64_MAX):
            raise InvalidParams(f"{name} must be an integer")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise InvalidParams(_range_text(name, minimum, maximum))
        return value

    def require_integer(self, name: str, *, minimum: int | None = None,
                        maximum: int | None = None) -> int:
        value = self.integer(name, minimum=minimum, maximum=maximum)
        if value is None:
            raise InvalidParams(f"{name} is required")
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        if name not in self._values:
            return default
        value = self._values[name]
        if not isinstance(value, bool):
            raise InvalidParams(f"{name} must be a boolean")
        return value

    @overload
    def string(self, name: str, default: str) -> str: ...

    @overload
    def string(self, name: str, default: None = None) -> str | None: ...

    def string(self, name: str, default: str | None = None) -> str | None:
        if name not in self._values:
            return default
        value = self._values[name]
        if not isinstance(value, str):
            raise InvalidParams(f"{name} must be a string")
        if "\x00" in value:
            raise InvalidParams(f"{name} must not contain NUL characters")
        return value

    def require_string(self, name: str) -> str:
        """A string that is not blank (``<name> is required`` otherwise)."""
        value = self.string(name)
        if value is None or not value.strip():
            raise InvalidParams(f"{name} is required")
        return value

    def strings(self, name: str) -> list[str]:
        if name not in self._values:
            return []
        value = self._values[name]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise InvalidParams(f"{name} must be an array of strings")
        return [item.strip() for item in value if item.strip()]

    def objects(self, name: str) -> list[dict[str, Any]]:
        if name not in self._values:
            return []
        value = self._values[name]
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise InvalidParams(f"{name} must be an array of objects")
        return list(value)


def _range_text(name: str, minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"{name} must be an integer between {minimum} and {maximum}"
    if minimum == 1:
        return f"{name} must be a positive integer"
    if minimum == 0:
        return f"{name} must be a non-negative integer"
    if minimum is not None:
        return f"{name} must be at least {minimum}"
    return f"{name} must be at most {maximum}"


# --- chat selectors --------------------------------------------------------------------------

CHAT_SELECTOR: Accepted = {"chat_id": (), "chat_identifier": (), "chat_guid": ()}
_ONE_SELECTOR = "exactly one of chat_id, chat_identifier, or chat_guid is required"


@dataclass(frozen=True, slots=True)
class ChatSelector:
    kind: Literal["chat_id", "chat_identifier", "chat_guid"]
    value: int | str


def chat_selector(p: Params, *, required: bool = True) -> ChatSelector | None:
    """The one chat selector given, checked as protocol v1 checks it."""
    given = [name for name in ("chat_id", "chat_identifier", "chat_guid") if p.has(name)]
    if len(given) > 1 or (required and not given):
        raise InvalidParams(_ONE_SELECTOR)
    if not given:
        return None
    if given[0] == "chat_id":
        chat_id = p.integer("chat_id")
        if chat_id is None or chat_id <= 0:
            raise InvalidParams("chat_id must be a positive integer")
        return ChatSelector("chat_id", chat_id)
    kind: Literal["chat_identifier", "chat_guid"] = (
        "chat_identifier" if given[0] == "chat_identifier" else "chat_guid")
    text = p.string(kind)
    if not text or not text.strip():
        raise InvalidParams(f"{kind} must be a non-empty string")
    return ChatSelector(kind, text)


def target_or_chat(p: Params) -> tuple[str | None, ChatSelector | None]:
    """``to`` or exactly one chat selector (send, typing, read)."""
    to = p.string("to")
    chat = chat_selector(p, required=False)
    if to is not None and chat is not None:
        raise InvalidParams("use to or exactly one chat selector; not both")
    if to is not None and not to.strip():
        raise InvalidParams("to must be a non-empty string")
    if to is None and chat is None:
        raise InvalidParams(f"to is required, or {_ONE_SELECTOR}")
    return to, chat
