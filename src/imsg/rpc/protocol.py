"""The JSON-RPC 2.0 envelope: one input line → calls; results and errors → frame bytes.

``parse`` never raises. Each line becomes a ``Frame`` of items, each either a ``Call`` to run or
a ``Rejected`` element to answer with its error (the Swift tool's texts in ``data``):

- invalid UTF-8 → ``ParseError`` ``invalid utf8``; not JSON, NaN/Infinity, a number beyond
  float range, nesting too deep → ``ParseError`` with the reason (id null);
- a scalar, or a batch element that is not an object → ``InvalidRequest`` ``request must be an
  object``; ``id`` not a string/number/null → ``id must be a string, number, or null`` (id
  null); ``jsonrpc`` not exactly ``"2.0"`` → ``jsonrpc must be exactly 2.0``; ``method``
  missing, not a string or empty → ``method is required`` (both echoing the id);
- batches (arrays) are an imsg extension: an empty one, one of more than ``MAX_BATCH``
  elements or a batch line over ``MAX_BATCH_BYTES`` → one ``InvalidRequest`` (answered as a
  single object, not an array).

Framing failures are always answered, even on a line without an ``id``. ``params`` is not
checked here: a non-object ``params`` is the method's -32602 (silent for notifications). An
absent ``params`` becomes ``{}``; an explicit ``null`` stays ``None`` (and is rejected then).
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
MAX_BATCH: Final = 100
MAX_BATCH_BYTES: Final = 1024 * 1024
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    params: Any
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
    if line.lstrip()[:1] == b"[" and len(line) > MAX_BATCH_BYTES:
        return _refused(f"a batch line may hold at most {MAX_BATCH_BYTES} bytes; send the "
                        "requests one per line")
    try:
        value = decode(line)
    except ParseError as err:
        return Frame([Rejected(err)], False)
    if isinstance(value, list):
        if not value:
            return _refused("empty batch")
        if len(value) > MAX_BATCH:
            return _refused(f"a batch may hold at most {MAX_BATCH} requests (got {len(value)});"
                            " send the rest in another line")
        return Frame([_item(element) for element in value], True)
    return Frame([_item(value)], False)


def _refused(detail: str) -> Frame:
    return Frame([Rejected(InvalidRequest(detail))], False)


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
        raise ParseError("invalid utf8") from None
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
        return Rejected(InvalidRequest("request must be an object"))
    has_id = "id" in value
    rid = value.get("id")
    if not _valid_id(rid):
        return Rejected(InvalidRequest("id must be a string, number, or null"))
    if value.get("jsonrpc") != JSONRPC:
        return Rejected(InvalidRequest("jsonrpc must be exactly 2.0"), rid)
    method = value.get("method")
    if not isinstance(method, str) or not method:
        return Rejected(InvalidRequest("method is required"), rid)
    return Call(method, value.get("params", {}), rid, not has_id)


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
