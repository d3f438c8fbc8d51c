"""JSON-RPC 2.0 errors: one class per protocol failure, and the one place other errors map.

::

    RpcError                 (base: code + message + optional ``data``)
    ├── ParseError      -32700  not JSON, invalid UTF-8, nesting too deep, line too long
    ├── InvalidRequest  -32600  not a request object, an oversize batch
    ├── MethodNotFound  -32601  no such method (``data`` = the name)
    ├── InvalidParams   -32602  a parameter is unknown, missing, ill-typed or refers to nothing
    ├── InternalError   -32603  everything else; never carries a traceback
    └── ServerBusy      -32000  admission refused (too many outstanding requests or
                                subscriptions, or the server is shutting down)

Domain errors (``imsg.errors.ImsgError``) carry their own ``rpc_code``, ``rpc_message`` and
``rpc_data`` (-32001 … -32004 with structured ``data`` objects live there); ``to_rpc_error``
turns them, and any foreign exception, into an ``RpcError``. It is the only translation.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from imsg.errors import ImsgError

log = logging.getLogger("imsg.rpc")

STANDARD_MESSAGES = {
    -32700: "Parse error",
    -32600: "Invalid Request",
    -32601: "Method not found",
    -32602: "Invalid params",
    -32603: "Internal error",
    -32000: "Server busy",
    -32001: "Delivery outcome unknown",
    -32002: "Database unavailable",
    -32003: "Bridge unavailable",
    -32004: "Mutation lane blocked",
}


class RpcError(Exception):
    """A JSON-RPC error object: ``{"code", "message", "data"?}``."""

    CODE: ClassVar[int] = -32603

    def __init__(self, data: Any = None, *, code: int | None = None,
                 message: str | None = None) -> None:
        self.code = self.CODE if code is None else code
        self.message = message or STANDARD_MESSAGES.get(self.code, "Internal error")
        super().__init__(data if isinstance(data, str) and data else self.message)
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None and self.data != "":
            error["data"] = self.data
        return error


class ParseError(RpcError):
    CODE = -32700


class InvalidRequest(RpcError):
    CODE = -32600


class MethodNotFound(RpcError):
    CODE = -32601


class InvalidParams(RpcError):
    CODE = -32602


class InternalError(RpcError):
    CODE = -32603


class ServerBusy(RpcError):
    CODE = -32000


def to_rpc_error(exc: BaseException) -> RpcError:
    """The boundary: protocol errors pass through, domain errors map by their ``rpc_code`` /
    ``rpc_message`` / ``rpc_data``, anything else becomes an ``InternalError`` naming only the
    exception type; its traceback goes to the log on stderr, never to the client."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, ImsgError):
        return RpcError(exc.rpc_data, code=exc.rpc_code, message=exc.rpc_message)
    log.error("unexpected error", exc_info=exc)
    return InternalError(f"unexpected {type(exc).__name__} (details in the server log)")
