"""What a tool hands back, and how it becomes an MCP result.

A tool returns an ``Answer``: the compact text the model reads (``content``), the same facts
as JSON for programs (``structuredContent``), and images when it has any. A failure is an
``imsg.errors`` exception; ``error_result`` turns it into an MCP tool error (``isError``)
whose text is the CLI's one-line message, so Full Disk Access guidance, ambiguous contact
names and "may have been sent" read the same everywhere. A send failure adds what to do next,
and its delivery object (``retry_safe``, ``disposition`` …) is the structured content.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import msgspec
from mcp_types import CallToolResult, ContentBlock, ImageContent, TextContent

from imsg.errors import ImsgError, SendError


@dataclass(frozen=True, slots=True)
class Image:
    data: bytes
    mime_type: str


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    data: dict[str, Any]
    images: tuple[Image, ...] = field(default=())


def to_result(answer: Answer) -> CallToolResult:
    content: list[ContentBlock] = [TextContent(type="text", text=answer.text)]
    content.extend(ImageContent(type="image", data=base64.b64encode(i.data).decode("ascii"),
                                mime_type=i.mime_type) for i in answer.images)
    return CallToolResult(content=content, structured_content=msgspec.to_builtins(answer.data))


def error_text(err: ImsgError) -> str:
    """The CLI's message, plus the next step after a failed send."""
    if isinstance(err, SendError):
        step = ("Nothing was sent; it is safe to try again." if err.retry_safe else
                "It may have been sent: check with read_messages before sending it again.")
        return f"{err.message} {step}"
    return err.message


def error_result(err: ImsgError) -> CallToolResult:
    data: dict[str, Any] = {"error": {"type": type(err).__name__, "message": err.message,
                                      "exit_code": err.exit_code}}
    if isinstance(err, SendError):
        data["error"]["delivery"] = err.rpc_data
    return CallToolResult(content=[TextContent(type="text", text=error_text(err))],
                          structured_content=data, is_error=True)
