"""The envelope without a process: parsing never raises, every failure is one error class."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imsg.errors import ChatNotFound, DatabaseBusy, InvalidDate, PermissionDenied, SendTimeout
from imsg.rpc import protocol
from imsg.rpc.errors import (
    InternalError,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    RpcError,
    ServerBusy,
    to_rpc_error,
)


def only(frame: protocol.Frame) -> protocol.Item:
    assert not frame.is_batch and len(frame.items) == 1
    return frame.items[0]


def test_one_class_per_code() -> None:
    classes = [ParseError, InvalidRequest, MethodNotFound, InvalidParams, InternalError,
               ServerBusy]
    assert [c.CODE for c in classes] == [-32700, -32600, -32601, -32602, -32603, -32000]
    assert sorted(c.__name__ for c in RpcError.__subclasses__()) == sorted(
        c.__name__ for c in classes)


def test_call_notification_and_null_id() -> None:
    call = only(protocol.parse(b'{"jsonrpc":"2.0","id":7,"method":"status"}'))
    assert call == protocol.Call("status", {}, 7, False)
    note = only(protocol.parse(b'{"jsonrpc":"2.0","method":"status","params":[]}'))
    assert note == protocol.Call("status", [], None, True)  # params are the method's to check
    null = only(protocol.parse(b'{"jsonrpc":"2.0","id":null,"method":"status"}'))
    assert isinstance(null, protocol.Call) and null.id is None and not null.is_notification


@pytest.mark.parametrize(("line", "reason"), [
    (b"{", None),
    (b'{"id":NaN}', None),
    (b"[1e400]", None),
    (b'{"a":"\xff"}', "invalid utf8"),
    (b"[" * 200_000 + b"]" * 200_000, "nesting too deep"),
])
def test_parse_errors(line: bytes, reason: str | None) -> None:
    item = only(protocol.parse(line))
    assert isinstance(item, protocol.Rejected) and isinstance(item.error, ParseError)
    assert item.id is None and item.error.data
    if reason:
        assert item.error.data == reason


@pytest.mark.parametrize(("value", "rid", "data"), [
    (3, None, "request must be an object"),
    ({"jsonrpc": "2.0", "id": 1}, 1, "method is required"),
    ({"jsonrpc": "2.0", "id": "a", "method": 5}, "a", "method is required"),
    ({"jsonrpc": "2.0", "id": 2, "method": ""}, 2, "method is required"),
    ({"jsonrpc": 2.0, "id": 1, "method": "x"}, 1, "jsonrpc must be exactly 2.0"),
    ({"id": 1, "method": "x"}, 1, "jsonrpc must be exactly 2.0"),
    ({"jsonrpc": "2.0", "id": [1], "method": "x"}, None, "id must be a string, number, or null"),
    ({"jsonrpc": "2.0", "id": False, "method": "x"}, None,
     "id must be a string, number, or null"),
])
def test_invalid_requests_echo_a_valid_id(value: object, rid: object, data: str) -> None:
    item = only(protocol.parse(json.dumps(value).encode()))
    assert isinstance(item, protocol.Rejected) and isinstance(item.error, InvalidRequest)
    assert item.id == rid and item.error.data == data


def test_batches() -> None:
    empty = protocol.parse(b"[]")
    assert not empty.is_batch and isinstance(only(empty), protocol.Rejected)
    mixed = protocol.parse(b'[1, {"jsonrpc":"2.0","method":"a"}]')
    assert mixed.is_batch and [type(i) for i in mixed.items] == [protocol.Rejected, protocol.Call]


def test_oversize_batches_are_refused_whole_without_running_anything() -> None:
    call = b'{"jsonrpc":"2.0","id":1,"method":"status"}'
    full = protocol.parse(b"[" + b",".join([call] * protocol.MAX_BATCH) + b"]")
    assert full.is_batch and len(full.items) == protocol.MAX_BATCH
    over = only(protocol.parse(b"[" + b",".join([call] * (protocol.MAX_BATCH + 1)) + b"]"))
    assert isinstance(over, protocol.Rejected) and isinstance(over.error, InvalidRequest)
    assert "at most 100 requests" in str(over.error.data)
    huge = only(protocol.parse(b"[" + b"{}," * 1_000_000 + b"{}]"))
    assert isinstance(huge, protocol.Rejected) and "bytes" in str(huge.error.data)


def test_lone_surrogates_decode_and_encode_as_json() -> None:
    call = only(protocol.parse(b'{"jsonrpc":"2.0","id":"\\ud800","method":"\\udfff"}'))
    assert isinstance(call, protocol.Call) and call.id == "\ud800"
    frame = protocol.error(call.id, MethodNotFound(call.method))
    assert frame.isascii() and json.loads(frame)["error"]["data"] == "\udfff"


def test_domain_errors_map_by_their_rpc_code() -> None:
    for exc, code in [(ChatNotFound(4), -32602), (InvalidDate("x"), -32602),
                      (DatabaseBusy("locked"), -32603)]:
        err = to_rpc_error(exc)
        assert err.code == code and err.data == exc.message
    unavailable = to_rpc_error(PermissionDenied("/db"))
    assert (unavailable.code, unavailable.message) == (-32002, "Database unavailable")
    assert unavailable.data["path"] == "/db" and unavailable.data["retryable"] is True
    timeout = to_rpc_error(SendTimeout("slow"))
    assert (timeout.code, timeout.message) == (-32001, "Delivery outcome unknown")
    assert timeout.data == {"retry_safe": False, "disposition": "may_have_completed",
                            "transport": "applescript", "operation": "send", "detail": "slow"}


def test_foreign_errors_are_internal_without_a_traceback() -> None:
    err = to_rpc_error(KeyError("secret detail"))
    assert isinstance(err, InternalError)
    assert err.data is not None and "KeyError" in err.data and "secret" not in err.data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_never_raises_on_bytes(line: bytes) -> None:
    frame = protocol.parse(line)
    assert frame.items
    for item in frame.items:
        if isinstance(item, protocol.Rejected):
            json.loads(protocol.error(item.id, item.error))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(), lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner,
                                                                            max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from(["id", "method", "params", "jsonrpc"]))
def test_any_json_value_is_a_call_or_rejected(value: object, key: str) -> None:
    request = {"jsonrpc": "2.0", "id": 1, "method": "status", key: value}
    frame = protocol.parse(json.dumps(request).encode())
    item = only(frame)
    if isinstance(item, protocol.Call):
        json.loads(protocol.result(item.id, {"echo": item.params}))
    else:
        assert isinstance(item.error, InvalidRequest)
