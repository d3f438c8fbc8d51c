"""Every failure imsg reports, one class each.

Each class carries the JSON-RPC error code the RPC server answers with (and its ``data``) and
the exit code the CLI ends with, so the same failure reads the same everywhere::

    ImsgError                         -32603  exit 1   (base; also "internal error")
    ├── InvalidInput                  -32602  exit 2   bad flag, parameter or value
    │   ├── InvalidDate               -32602  exit 2   not an ISO-8601 date with a time zone
    │   ├── InvalidTarget             -32602  exit 2   a send target none of the accepted forms
    │   │   ├── ContactNotFound       -32602  exit 2   no contact has that name (or no readable
    │   │   │                                          AddressBook to look in)
    │   │   └── AmbiguousContact      -32602  exit 2   several contacts have that name (the
    │   │                                              message lists them with their handles)
    │   ├── ChatNotFound              -32602  exit 3   no chat with that id / identifier / guid
    │   ├── AttachmentError           -32602  exit 15  file missing, unreadable or too large
    │   └── UnsupportedByDatabase     -32602  exit 30  this chat.db lacks the column a request
    │                                                  needs (read state, Send Later)
    ├── DatabaseError                 -32603  exit 8   SQLite failed while reading
    │   ├── DatabaseUnavailable       -32002           the database cannot be opened (data:
    │   │   │                                          {path, detail, retryable, reason})
    │   │   ├── DatabaseNotFound      -32002  exit 4   no file at the path
    │   │   ├── PermissionDenied      -32002  exit 5   macOS refused the read (Full Disk Access)
    │   │   └── NotAMessagesDatabase  -32002  exit 6   a file, but not Messages' chat.db
    │   ├── DatabaseBusy              -32603  exit 7   locked for longer than the busy timeout
    │   ├── TooManyOpenFiles          -32603  exit 18  the process ran out of file descriptors
    │   └── SchemaMismatch            -32603  exit 28  chat.db lacks a table or column imsg
    │                                                  reads (renamed or dropped by an update)
    ├── SendError                     -32603 / -32001  a mutation failed (data: the delivery
    │   │                                     exit 9   object, below)
    │   ├── AutomationDenied                  exit 10  no Automation permission for Messages
    │   ├── MessagesUnavailable               exit 11  Messages not running or not signed in
    │   ├── UnknownChatInMessages             exit 12  Messages does not know the chat (-1728)
    │   ├── SendTimeout                       exit 13  osascript did not return in time
    │   ├── SendNotConfirmed                  exit 14  accepted, but no row (or a ghost row)
    │   ├── DeliveryUnknown                   exit 16  the bridge may have done it; no answer
    │   ├── SendInterrupted                   exit 27  imsg was stopped (shutdown, a signal)
    │   │                                              while the send was under way
    │   └── BridgeNotReady                    exit 31  a bridge mutation found no ready helper
    │                                                  (``not_started``: nothing was published)
    ├── MutationLaneBlocked           -32004  exit 16  an earlier mutation may still complete
    ├── BridgeUnavailable             -32003  exit 17  no injected helper answers
    │   └── BridgeEventsUnavailable   -32003  exit 17  the helper's event log cannot be read
    ├── BridgeError                   -32603  exit 32  a non-mutating bridge request failed (the
    │   │                                              helper refused or answered garbage; an
    │   │                                              unsafe container path)
    │   └── BridgeNoAnswer            -32603  exit 32  no answer in time (an unresponsive helper)
    ├── LaunchFailed                  -32603  exit 33  `imsg launch` refused or failed (``reason``:
    │                                                  sip_enabled, sip_unknown, dylib_not_found,
    │                                                  launch_failed, ready_timeout)
    ├── SendNotAllowed                -32602  exit 34  `imsg mcp`: sending is off (no
    │                                                  --allow-send) or the target is not in
    │                                                  --allow-to; nothing was sent
    ├── OutputError                   -32603  exit 19  stdout cannot be written
    ├── SocketInUse                   -32603  exit 21  another process serves (or took over) the
    │                                                  socket path
    ├── ServiceError                  -32603  exit 22  the service manager refused, the service is
    │                                                  unreachable or went away
    ├── ConfigInvalid (InvalidInput)  -32602  exit 23  the gateway config has problems (each one
    │                                                  named by its key path)
    ├── PairingNotFound (InvalidInput) -32602 exit 24  no pending pairing request has that code
    ├── StateError                    -32603  exit 25  the gateway's state database cannot be
    │                                                  opened, read or written
    ├── ChildFailed                   -32603  exit 26  the gateway's `imsg rpc` child could not be
    │                                                  started, died, timed out or answered an
    │                                                  error (``code``, ``data``)
    └── IndexUnavailable              -32603  exit 29  the search index cannot be built or read
                                                       (searches then scan chat.db instead)

**Delivery object** (``SendError.rpc_data``): ``{retry_safe, disposition, transport,
operation, detail}``. ``disposition`` is ``not_started`` (nothing was dispatched: safe to
retry; answered -32603 "Delivery failed before dispatch"), ``may_have_completed`` (nothing is
running any more, the outcome is unknown: do not retry; -32001) or ``still_in_flight`` (it may
still complete later: do not retry; -32001, and the RPC mutation lane blocks).

Foreign exceptions (sqlite3, OSError, subprocess) are translated into these at one boundary per
subsystem (see ``imsg.chatdb.connection.translate_errors``); nothing else leaks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
DELIVERY_OUTCOME_UNKNOWN = -32001
DATABASE_UNAVAILABLE = -32002
BRIDGE_UNAVAILABLE = -32003
MUTATION_LANE_BLOCKED = -32004

Disposition = Literal["not_started", "may_have_completed", "still_in_flight"]
DETAIL_LIMIT = 512
NO_DETAIL = "No additional diagnostic was available."


class ImsgError(Exception):
    """Base of every imsg failure. ``str(err)`` is the one-line message shown to the user.

    ``rpc_code`` is the JSON-RPC code; ``rpc_message`` the error object's ``message`` (None:
    the standard text for the code); ``rpc_data`` its ``data`` (default: the message)."""

    rpc_code: int = INTERNAL_ERROR
    rpc_message: str | None = None
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def rpc_data(self) -> Any:
        return self.message


class InvalidInput(ImsgError):
    rpc_code = INVALID_PARAMS
    exit_code = 2


class InvalidDate(InvalidInput):
    def __init__(self, value: str, reason: str | None = None) -> None:
        super().__init__(
            f"Invalid ISO8601 date: {value} ("
            + (reason or "expected e.g. 2026-05-16T15:24:36Z or 2026-05-16T17:24:36+02:00")
            + ")"
        )
        self.value = value


class InvalidTarget(InvalidInput):
    pass


class ContactNotFound(InvalidTarget):
    """A send addressed by contact name matched no contact; ``reason`` says why when the
    AddressBook itself could not be read."""

    def __init__(self, name: str, reason: str | None = None) -> None:
        detail = f": {reason}" if reason else ""
        super().__init__(f"No contact named {name!r}{detail} (give a phone number, an email "
                         "or a chat_id instead)")
        self.name = name


class AmbiguousContact(InvalidTarget):
    """A send addressed by contact name matched several contacts; ``candidates`` are
    ``(name, handles)`` pairs."""

    def __init__(self, name: str, candidates: list[tuple[str, tuple[str, ...]]]) -> None:
        listed = "; ".join(f"{shown} ({', '.join(handles)})" for shown, handles in candidates)
        super().__init__(f"Contact name {name!r} is ambiguous: {listed} (send to one of "
                         "these handles instead)")
        self.name = name
        self.candidates = candidates


class ChatNotFound(InvalidInput):
    exit_code = 3

    def __init__(self, chat: int | str) -> None:
        super().__init__(f"Chat not found: {chat}")
        self.chat = chat


class AttachmentError(InvalidInput):
    exit_code = 15


class UnsupportedByDatabase(InvalidInput):
    """The request needs a column this chat.db does not have. ``feature`` names what:
    ``unread`` (``message.is_read``) or ``scheduled`` (``schedule_type``/``schedule_state``)."""

    exit_code = 30

    def __init__(self, feature: str, message: str) -> None:
        super().__init__(message)
        self.feature = feature


class DatabaseError(ImsgError):
    exit_code = 8


FULL_DISK_ACCESS_HELP = (
    "Grant Full Disk Access to the app that runs imsg (Terminal, iTerm, your editor, or the "
    "gateway that spawns it) in System Settings > Privacy & Security > Full Disk Access, then "
    "restart that app."
)
MISSING_DETAIL = ("The configured Messages database does not exist. Create or copy chat.db at "
                  "this path, then retry.")
UNOPENABLE_DETAIL = ("The configured Messages database could not be opened read-only. Verify "
                     "the path and grant Full Disk Access to the supervising process, then retry.")


class DatabaseUnavailable(DatabaseError):
    """The database cannot be opened. RPC answers -32002 ``Database unavailable`` with the
    Swift tool's ``detail`` text, plus ``reason``: this error's own one-line explanation."""

    rpc_code = DATABASE_UNAVAILABLE
    detail = UNOPENABLE_DETAIL

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path

    @property
    def rpc_data(self) -> Any:
        return {"path": self.path, "detail": self.detail, "retryable": True,
                "reason": self.message}


class DatabaseNotFound(DatabaseUnavailable):
    exit_code = 4
    detail = MISSING_DETAIL

    def __init__(self, path: str) -> None:
        super().__init__(path, f"No Messages database at {path} (is Messages set up on this "
                               "Mac? Point --db or IMSG_DB at a chat.db)")


class PermissionDenied(DatabaseUnavailable):
    exit_code = 5

    def __init__(self, path: str, detail: str = "") -> None:
        reason = f" ({detail})" if detail else ""
        super().__init__(path, f"Permission denied reading {path}{reason}. "
                               f"{FULL_DISK_ACCESS_HELP}")


class NotAMessagesDatabase(DatabaseUnavailable):
    exit_code = 6

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(path, f"{path} is not a Messages database: {detail}")


class DatabaseBusy(DatabaseError):
    exit_code = 7


class TooManyOpenFiles(DatabaseError):
    """EMFILE/ENFILE: this process (or the system) is out of file descriptors. Not a
    permission problem, whatever SQLite's message says."""

    exit_code = 18

    def __init__(self, what: str) -> None:
        super().__init__(f"Too many open files while {what}: raise the limit (`ulimit -n`) or "
                         "close other subscriptions/clients")


class SchemaMismatch(DatabaseError):
    """A query names a table or column this chat.db does not have (``no such column: …``):
    unlike a lock or a file being replaced, this does not go away by retrying."""

    exit_code = 28


def one_line(text: str, limit: int = DETAIL_LIMIT) -> str:
    """``text`` on one line, at most ``limit`` characters (for details sent to clients)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class SendError(ImsgError):
    """A send (or another mutation) failed. ``disposition`` says whether it may have happened;
    the RPC code follows from it (-32603 when ``not_started``, else -32001).

    ``settled`` (optional, for ``still_in_flight``): a check that returns True once whatever
    was left running can no longer complete (e.g. the bridge helper's claim on the request is
    gone), so the RPC mutation lane need not stay blocked for its full time."""

    exit_code = 9
    default_disposition: Disposition = "may_have_completed"
    settled: Callable[[], bool] | None = None

    def __init__(self, message: str, *, disposition: Disposition | None = None,
                 transport: str = "applescript", operation: str = "send") -> None:
        super().__init__(message)
        self.disposition: Disposition = disposition or self.default_disposition
        self.transport = transport
        self.operation = operation
        self.rpc_code = INTERNAL_ERROR if self.retry_safe else DELIVERY_OUTCOME_UNKNOWN
        self.rpc_message = ("Delivery failed before dispatch" if self.retry_safe
                            else "Delivery outcome unknown")

    @property
    def retry_safe(self) -> bool:
        return self.disposition == "not_started"

    @property
    def rpc_data(self) -> Any:
        return {"retry_safe": self.retry_safe, "disposition": self.disposition,
                "transport": self.transport, "operation": self.operation,
                "detail": one_line(self.message) or NO_DETAIL}


class AutomationDenied(SendError):
    exit_code = 10
    default_disposition = "not_started"


class MessagesUnavailable(SendError):
    exit_code = 11
    default_disposition = "not_started"


class UnknownChatInMessages(SendError):
    exit_code = 12
    default_disposition = "not_started"


class SendTimeout(SendError):
    exit_code = 13


class SendNotConfirmed(SendError):
    exit_code = 14


class DeliveryUnknown(SendError):
    exit_code = 16


class SendInterrupted(SendError):
    """imsg stopped the send (RPC shutdown, SIGINT/SIGTERM/SIGHUP): ``still_in_flight`` when
    osascript was killed mid-run, ``may_have_completed`` while confirming, ``not_started``
    before osascript ran."""

    exit_code = 27


class MutationLaneBlocked(ImsgError):
    """An earlier mutation of this process ended ``still_in_flight``: every later mutation is
    refused (-32004) with that failure's delivery object, so nothing is sent twice."""

    rpc_code = MUTATION_LANE_BLOCKED
    rpc_message = "Mutation lane blocked"
    exit_code = 20

    def __init__(self, cause: SendError) -> None:
        super().__init__(f"A prior {cause.operation} remains in flight. Restart the RPC child "
                         "before sending another mutation.")
        self.cause = cause

    @property
    def rpc_data(self) -> Any:
        return {**self.cause.rpc_data, "detail": self.message}


BRIDGE_NOT_STARTED = ("The bridge is not started. Run imsg launch explicitly before using bridge "
                      "methods.")


class BridgeUnavailable(ImsgError):
    """No usable injected helper for a non-mutating bridge operation (-32003)."""

    rpc_code = BRIDGE_UNAVAILABLE
    rpc_message = "Bridge unavailable"
    exit_code = 17

    def __init__(self, detail: str = BRIDGE_NOT_STARTED) -> None:
        super().__init__(detail)

    @property
    def rpc_data(self) -> Any:
        return {"detail": self.message, "retryable": True}


class BridgeEventsUnavailable(BridgeUnavailable):
    """``bridge.events.subscribe`` cannot start: the helper's event log is missing, not a
    regular file, or unreadable (-32003 ``Bridge events unavailable``)."""

    rpc_message = "Bridge events unavailable"


class BridgeNotReady(SendError):
    """A bridge mutation found no ready lock (no injected helper): nothing was published, so
    it is ``not_started`` and safe to retry once the bridge runs."""

    exit_code = 31
    default_disposition = "not_started"

    def __init__(self, operation: str, transport: str = "bridge_v2") -> None:
        super().__init__("The bridge ready lock is absent. Run imsg launch explicitly before "
                         "retrying.", transport=transport, operation=operation)


class BridgeError(ImsgError):
    """A non-mutating bridge request failed: the helper answered ``success: false``, did not
    answer in time, answered something that is not a valid response, or the container holds
    a symbolic link or a path imsg may not use."""

    exit_code = 32


class BridgeNoAnswer(BridgeError):
    """The helper did not answer a non-mutating request in time (``imsg status`` calls such
    a helper unresponsive)."""


class LaunchFailed(ImsgError):
    """``imsg launch`` (or a CLI bridge command launching Messages) refused or failed;
    ``reason`` is the Swift tool's error key: ``sip_enabled``, ``sip_unknown``,
    ``dylib_not_found``, ``launch_failed`` or ``ready_timeout``; ``dylib`` the helper used."""

    exit_code = 33

    def __init__(self, reason: str, message: str, dylib: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.dylib = dylib


class SendNotAllowed(ImsgError):
    """``imsg mcp`` refused a send, tapback, typing indicator or read receipt before doing
    anything: the server was not started with ``--allow-send``, or the target is outside
    ``--allow-to``."""

    rpc_code = INVALID_PARAMS
    exit_code = 34


class OutputError(ImsgError):
    exit_code = 19

    def __init__(self, detail: str) -> None:
        super().__init__(f"cannot write output: {detail}")


class SocketInUse(ImsgError):
    """The socket path is served by another process: a second server at start, or a socket
    that replaced ours while serving (the path was taken over; exiting lets the supervisor
    restart us)."""

    exit_code = 21


class ServiceError(ImsgError):
    """``imsg service``/``--connect``: the service manager (launchd, systemd) or a build tool
    refused, this platform has none we support, or the service cannot be reached."""

    exit_code = 22


class ConfigInvalid(InvalidInput):
    """``imsg gateway``: the configuration file has problems. The message lists each one as
    ``key.path: what is wrong``; ``problems`` keeps the structured list (notes included)."""

    exit_code = 23

    def __init__(self, lines: list[str], problems: tuple[Any, ...] = ()) -> None:
        count = len(lines)
        head = "invalid gateway configuration" + (f" ({count} problems)" if count > 1 else "")
        super().__init__(head + ":\n  " + "\n  ".join(lines) if lines else head)
        self.lines = lines
        self.problems = problems


class PairingNotFound(InvalidInput):
    exit_code = 24

    def __init__(self, code: str) -> None:
        super().__init__(f"No pending pairing request found for code: {code}")
        self.code = code


class StateError(ImsgError):
    """The gateway's state database (pairing, cursors, journal) cannot be used."""

    exit_code = 25


class ChildFailed(ImsgError):
    """The gateway's ``imsg rpc`` child failed: it could not start, exited, stopped answering,
    or answered a JSON-RPC error (``code`` and ``data`` as it sent them; None otherwise)."""

    exit_code = 26

    def __init__(self, message: str, *, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


class IndexUnavailable(ImsgError):
    """The search index beside chat.db cannot be created, opened or updated: no FTS5 trigram
    tokenizer in this SQLite, an unwritable cache directory, a damaged index file. Searching
    never fails for this (it scans chat.db instead); ``imsg index`` reports it."""

    exit_code = 29

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"search index {path} unavailable: {detail}")
        self.path = path
        self.detail = detail
