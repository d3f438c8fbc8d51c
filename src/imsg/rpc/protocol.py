"""The JSON-RPC 2.0 envelope: one input line → calls; results and errors → frame bytes.

``parse`` never raises. Each line becomes a ``Frame`` of items, each either a ``Call`` to run or
a ``Rejected`` element to answer with its error:

- not JSON, invalid UTF-8, NaN/Infinity, a number beyond float range, nesting too deep
  → ``ParseError`` (id null);
- an empty batch → one ``InvalidRequest`` (answered as a single object, not an array);
- an element that is not an object, ``jsonrpc`` other than ``"2.0"``, ``method`` missing or not
  a string, ``params`` neither object nor array, ``id`` not a string/number/null
  → ``InvalidRequest`` (echoing the id when it has a valid type, else null).

A ``Call`` without an ``id`` member is a notification (never answered); ``"id": null`` is a
request answered with ``"id": null``. Decoding uses msgspec; a line it rejects is retried with
the standard library, which also accepts lone UTF-16 surrogates (``"\\ud800"``). Encoding falls
back to ASCII-escaped JSON when a string holds a lone surrogate, so any id or detail echoed
back stays valid JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from imsg.rpc.errors import InvalidRequest, ParseError, RpcError

JSONRPC: Final = "2.0"
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    params: dict[str, Any] | list[Any]
    id: Any
    is_notification: bool


@dataclass(frozen=True, slots=True)
class Rejected:
    error: RpcError
    id: Any = None


Item = Call | Rejected


@dataclass(frozen=True, slots=True)
class Frame:
    items: list[Item]
    is_batch: bool


def parse(line: bytes) -> Frame:
    """Decode and validate one line (never raises)."""
    try:
        value = decode(line)
    except ParseError as err:
        return Frame([Rejected(err)], False)
    if isinstance(value, list):
        if not value:
            return Frame([Rejected(InvalidRequest("empty batch"))], False)
        return Frame([_item(element) for element in value], True)
    return Frame([_item(value)], False)


def decode(line: bytes) -> Any:
    """JSON text → Python values; raises ParseError with a short reason."""
    try:
        return _decoder.decode(line)
    except RecursionError:
        raise ParseError("nesting too deep") from None
    except (msgspec.DecodeError, ValueError) as exc:
        first = str(exc)
    try:
        return json.loads(line.decode("utf-8"), parse_constant=_reject_constant,
                          parse_float=_finite_float)
    except UnicodeDecodeError:
        raise ParseError("invalid UTF-8") from None
    except RecursionError:
        raise ParseError("nesting too deep") from None
    except ValueError:  # JSONDecodeError, and numbers out of range
        raise ParseError(first) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def _item(value: Any) -> Item:
    if not isinstance(value, dict):
        return Rejected(InvalidRequest("a request must be a JSON object"))
    has_id = "id" in value
    rid = value.get("id")
    if not _valid_id(rid):
        return Rejected(InvalidRequest("id must be a string, a number or null"))
    if value.get("jsonrpc") != JSONRPC:
        return Rejected(InvalidRequest('jsonrpc must be "2.0"'), rid)
    method = value.get("method")
    if not isinstance(method, str):
        return Rejected(InvalidRequest("method must be a string"), rid)
    params = value.get("params", {})
    if not isinstance(params, dict | list):
        return Rejected(InvalidRequest("params must be an object or an array"), rid)
    return Call(method, params, rid, not has_id)


def encode(obj: Any) -> bytes:
    """Compact JSON bytes; msgspec Structs allowed anywhere inside ``obj``."""
    try:
        return _encoder.encode(obj)
    except UnicodeEncodeError:  # a lone surrogate somewhere: escape everything to ASCII
        return json.dumps(msgspec.to_builtins(obj), ensure_ascii=True,
                          separators=(",", ":")).encode("ascii")


def result(rid: Any, value: Any) -> bytes:
    return encode({"jsonrpc": JSONRPC, "id": rid, "result": value})


def error(rid: Any, err: RpcError) -> bytes:
    return encode({"jsonrpc": JSONRPC, "id": rid, "error": err.to_dict()})


def notification(method: str, params: Any) -> bytes:
    return encode({"jsonrpc": JSONRPC, "method": method, "params": params})


def batch(frames: list[bytes]) -> bytes:
    return b"[" + b",".join(frames) + b"]"
