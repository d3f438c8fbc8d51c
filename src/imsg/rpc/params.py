"""Method parameters with the Swift tool's lenient coercions, failing as ``InvalidParams``.

- integers: JSON integers, integral floats (``42.0``) or decimal strings (``"42"``), within
  the signed 64-bit range; booleans are not integers;
- booleans: ``true``/``false`` or the strings ``"true"``/``"false"`` (any case);
- strings: JSON strings, or integers (a phone number sent as a number);
- string lists: a JSON array of strings or one comma-separated string (blanks dropped).

A member that is ``null`` counts as absent. Each getter takes aliases (``debounce_ms`` /
``debounceMs``). Unknown members are ignored, as the Swift tool does. Positional params (a
non-empty array) are rejected: every method takes named parameters.
"""

from __future__ import annotations

import re
from typing import Any, overload

from imsg.rpc.errors import InvalidParams

_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_INT64 = 2**63


class Params:
    def __init__(self, raw: dict[str, Any] | list[Any]) -> None:
        if isinstance(raw, list):
            if raw:
                raise InvalidParams("params must be an object (named parameters)")
            raw = {}
        self._raw = raw

    def _get(self, name: str, aliases: tuple[str, ...]) -> Any:
        for key in (name, *aliases):
            value = self._raw.get(key)
            if value is not None:
                return value
        return None

    @overload
    def integer(self, name: str, default: int, *, minimum: int | None = None,
                maximum: int | None = None, aliases: tuple[str, ...] = ()) -> int: ...

    @overload
    def integer(self, name: str, default: None = None, *, minimum: int | None = None,
                maximum: int | None = None, aliases: tuple[str, ...] = ()) -> int | None: ...

    def integer(self, name: str, default: int | None = None, *, minimum: int | None = None,
                maximum: int | None = None, aliases: tuple[str, ...] = ()) -> int | None:
        value = self._get(name, aliases)
        if value is None:
            return default
        number = _as_int(value)
        if number is None:
            raise InvalidParams(f"{name} must be an integer")
        if minimum is not None and number < minimum:
            raise InvalidParams(f"{name} must be at least {minimum}")
        if maximum is not None and number > maximum:
            raise InvalidParams(f"{name} must be at most {maximum}")
        return number

    def require_integer(self, name: str, *, minimum: int | None = None) -> int:
        number = self.integer(name, minimum=minimum)
        if number is None:
            raise InvalidParams(f"{name} is required")
        return number

    def boolean(self, name: str, default: bool = False, *,
                aliases: tuple[str, ...] = ()) -> bool:
        value = self._get(name, aliases)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise InvalidParams(f"{name} must be true or false")

    @overload
    def string(self, name: str, default: str, *, aliases: tuple[str, ...] = ()) -> str: ...

    @overload
    def string(self, name: str, default: None = None, *,
               aliases: tuple[str, ...] = ()) -> str | None: ...

    def string(self, name: str, default: str | None = None, *,
               aliases: tuple[str, ...] = ()) -> str | None:
        value = self._get(name, aliases)
        if value is None:
            return default
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise InvalidParams(f"{name} must be a string")

    def require_string(self, name: str) -> str:
        value = self.string(name)
        if value is None or not value.strip():
            raise InvalidParams(f"{name} is required")
        return value

    def strings(self, name: str, *, aliases: tuple[str, ...] = ()) -> list[str]:
        value = self._get(name, aliases)
        if value is None:
            return []
        if isinstance(value, str):
            items = value.split(",")
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = value
        else:
            raise InvalidParams(f"{name} must be an array of strings or a comma-separated string")
        return [item.strip() for item in items if item.strip()]


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()) and len(value) < 30:
        number = int(value.strip())
    else:
        return None
    return number if -_INT64 <= number < _INT64 else None
