"""Every failure imsg reports, one class each.

Each class carries the JSON-RPC error code the RPC server answers with and the exit code the
CLI ends with, so the same failure reads the same everywhere::

    ImsgError                         -32603  exit 1   (base; also "internal error")
    ├── InvalidInput                  -32602  exit 2   bad flag, parameter or value
    │   ├── InvalidDate               -32602  exit 2   not an ISO-8601 date with a time zone
    │   ├── InvalidTarget             -32602  exit 2   a send target none of the accepted forms
    │   └── ChatNotFound              -32602  exit 3   no chat with that id / identifier / guid
    ├── DatabaseError                 -32603  exit 8   SQLite failed while reading
    │   ├── DatabaseNotFound          -32603  exit 4   no file at the path
    │   ├── PermissionDenied          -32603  exit 5   macOS refused the read (Full Disk Access)
    │   ├── NotAMessagesDatabase      -32603  exit 6   a file, but not Messages' chat.db
    │   └── DatabaseBusy              -32603  exit 7   locked for longer than the busy timeout
    └── SendError                     -32603  exit 9   Messages did not take the message
        ├── AutomationDenied          -32603  exit 10  no Automation permission for Messages
        ├── MessagesUnavailable       -32603  exit 11  Messages not running or not signed in
        ├── UnknownChatInMessages     -32603  exit 12  Messages does not know the chat (-1728)
        ├── SendTimeout               -32603  exit 13  osascript did not return in time
        ├── SendNotConfirmed          -32603  exit 14  accepted, but no row (or a ghost row)
        └── AttachmentError           -32602  exit 15  file missing, unreadable or too large

Foreign exceptions (sqlite3, OSError, subprocess) are translated into these at one boundary per
subsystem (see ``imsg.chatdb.connection.translate_errors``); nothing else leaks.
"""

from __future__ import annotations

INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class ImsgError(Exception):
    """Base of every imsg failure. ``str(err)`` is the one-line message shown to the user."""

    rpc_code: int = INTERNAL_ERROR
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ImsgError):
    rpc_code = INVALID_PARAMS
    exit_code = 2


class InvalidDate(InvalidInput):
    def __init__(self, value: str) -> None:
        super().__init__(
            f"Invalid ISO8601 date: {value!r} (expected e.g. 2026-05-16T15:24:36Z or "
            "2026-05-16T17:24:36+02:00)"
        )
        self.value = value


class InvalidTarget(InvalidInput):
    pass


class ChatNotFound(InvalidInput):
    exit_code = 3

    def __init__(self, chat: int | str) -> None:
        super().__init__(f"Chat not found: {chat}")
        self.chat = chat


class DatabaseError(ImsgError):
    exit_code = 8


class DatabaseNotFound(DatabaseError):
    exit_code = 4

    def __init__(self, path: str) -> None:
        super().__init__(
            f"No Messages database at {path} (is Messages set up on this Mac? "
            "Point --db or IMSG_DB at a chat.db)"
        )
        self.path = path


FULL_DISK_ACCESS_HELP = (
    "Grant Full Disk Access to the app that runs imsg (Terminal, iTerm, your editor, or the "
    "gateway that spawns it) in System Settings > Privacy & Security > Full Disk Access, then "
    "restart that app."
)


class PermissionDenied(DatabaseError):
    exit_code = 5

    def __init__(self, path: str, detail: str = "") -> None:
        reason = f" ({detail})" if detail else ""
        super().__init__(f"Permission denied reading {path}{reason}. {FULL_DISK_ACCESS_HELP}")
        self.path = path


class NotAMessagesDatabase(DatabaseError):
    exit_code = 6

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path} is not a Messages database: {detail}")
        self.path = path


class DatabaseBusy(DatabaseError):
    exit_code = 7


class SendError(ImsgError):
    exit_code = 9


class AutomationDenied(SendError):
    exit_code = 10


class MessagesUnavailable(SendError):
    exit_code = 11


class UnknownChatInMessages(SendError):
    exit_code = 12


class SendTimeout(SendError):
    exit_code = 13


class SendNotConfirmed(SendError):
    exit_code = 14


class AttachmentError(SendError):
    rpc_code = INVALID_PARAMS
    exit_code = 15
