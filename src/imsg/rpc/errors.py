"""JSON-RPC 2.0 protocol errors: one class per code, and the one place other errors map to them.

::

    RpcError                 (base: code + canonical message + optional ``data`` detail)
    ├── ParseError      -32700  not JSON, invalid UTF-8, nesting too deep, line too long
    ├── InvalidRequest  -32600  not a request object (or an empty batch)
    ├── MethodNotFound  -32601  no such method (``data`` = the name)
    ├── InvalidParams   -32602  a parameter is missing, ill-typed or refers to nothing
    └── InternalError   -32603  everything else; never carries a traceback

Domain errors (``imsg.errors.ImsgError``) carry their own ``rpc_code``; ``to_rpc_error`` turns
them, and any foreign exception, into one of the classes above. It is the only translation.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from imsg.errors import INVALID_PARAMS, ImsgError

log = logging.getLogger("imsg.rpc")


class RpcError(Exception):
    """A JSON-RPC error object: ``{"code", "message", "data"?}``."""

    CODE: ClassVar[int]
    MESSAGE: ClassVar[str]

    def __init__(self, data: str | None = None) -> None:
        super().__init__(data or self.MESSAGE)
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.CODE, "message": self.MESSAGE}
        if self.data:
            error["data"] = self.data
        return error


class ParseError(RpcError):
    CODE = -32700
    MESSAGE = "Parse error"


class InvalidRequest(RpcError):
    CODE = -32600
    MESSAGE = "Invalid Request"


class MethodNotFound(RpcError):
    CODE = -32601
    MESSAGE = "Method not found"


class InvalidParams(RpcError):
    CODE = -32602
    MESSAGE = "Invalid params"


class InternalError(RpcError):
    CODE = -32603
    MESSAGE = "Internal error"


def to_rpc_error(exc: BaseException) -> RpcError:
    """The boundary: protocol errors pass through, domain errors map by their ``rpc_code``
    (detail = their one-line message), anything else becomes an ``InternalError`` naming only
    the exception type; its traceback goes to the log on stderr, never to the client."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, ImsgError):
        cls = InvalidParams if exc.rpc_code == INVALID_PARAMS else InternalError
        return cls(exc.message)
    log.error("unexpected error", exc_info=exc)
    return InternalError(f"unexpected {type(exc).__name__} (details in the server log)")
