"""A stand-in for ``osascript`` driving Messages, so sends are tested end to end on any OS.

Point ``IMSG_OSASCRIPT`` at ``imsg-sim-osascript`` and ``IMSG_SIM_DB`` at a simulated chat.db.
It takes exactly what imsg passes (``-l AppleScript -``, the script on stdin, values as
arguments), refuses any script but imsg's fixed send and react scripts, and then does what
Messages would: for a send, the outgoing rows (text NULL, attributedBody, ``is_from_me``,
service, handle and direct chat created for a new buddy, the chat join, attachment rows),
text first, then the file; for a react, a tapback row on the chat's latest incoming message.
Nothing in a value is ever evaluated. Like the real scripts it reports its dispatch phase: on
success ``IMSG_RESULT<TAB>ok<TAB>completed<TAB>0`` on stdout; on failure the line
``IMSG_RESULT<TAB>failure<TAB>not_started|may_have_completed<TAB><errno>`` on stderr (the
script's ``log``), then osascript's own ``execution error`` line, exit 1.

``IMSG_SIM_FAIL`` makes it fail as Messages does. Before dispatch (``not_started``):
``automation`` (-1743), ``accessibility`` (1002, react), ``not-running`` (-600),
``unknown-chat`` (-1728), ``no-imessage`` (iMessage buddies unknown, -1728; SMS works).
After dispatch (``may_have_completed``): ``send-error`` (Messages' ``send`` fails, nothing
written), ``sent-then-error`` (the rows are written, then ``send`` reports an error),
``file-error`` (the text goes out, the file does not). Other: ``ghost-row`` (a chat send
writes the macOS 26 empty unjoined row instead), ``no-result`` (rows written, exit 0, but no
``IMSG_RESULT`` line), ``timeout`` (never returns, nothing sent), ``hang-after-send`` (rows
written, then never returns), ``killed`` (rows written, then killed by SIGKILL). Like
Messages' sandbox it cannot read files outside ``~/Library/Messages/Attachments`` (error 25).
A react whose search text holds a line break types the rest into the compose field, and the
script's final Return sends it, as System Events would.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence

from imsg.send.applescript import REACT_SCRIPT, SEND_SCRIPT
from imsg.sim.messages import SimAttachment, SimDB

FAILURES = ("automation", "accessibility", "not-running", "unknown-chat", "no-imessage",
            "send-error", "sent-then-error", "file-error", "ghost-row", "no-result", "timeout",
            "hang-after-send", "killed")
_KEYS = {"1": "love", "2": "like", "3": "dislike", "4": "laugh", "5": "emphasis",
         "6": "question"}
_LINE_BREAKS = ("\r\n", "\n", "\r")


class ScriptError(Exception):
    """An AppleScript execution error: ``message`` and ``number`` as osascript prints them."""

    def __init__(self, message: str, number: int) -> None:
        super().__init__(message)
        self.message = message
        self.number = number


class Phase:
    """The script's dispatch phase: ``started`` once Messages was told to send."""

    started = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run like ``osascript -l AppleScript - ARG...``; return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:3] != ["-l", "AppleScript", "-"]:
        return _usage("expected: -l AppleScript - [argument ...]")
    values = args[3:]
    script = sys.stdin.buffer.read().decode("utf-8", "replace")
    arity = {SEND_SCRIPT: 5, REACT_SCRIPT: 3}.get(script)
    if arity is None:
        return _usage("refusing a script that is not imsg's fixed send or react script")
    if len(values) != arity:
        return _usage(f"this script takes {arity} arguments, got {len(values)}")
    failure = os.environ.get("IMSG_SIM_FAIL", "")
    if failure and failure not in FAILURES:
        return _usage(f"unknown IMSG_SIM_FAIL {failure!r} (one of {', '.join(FAILURES)})")
    if failure == "timeout":
        time.sleep(3600)
    path = os.environ.get("IMSG_SIM_DB")
    if not path:
        return _usage("IMSG_SIM_DB must name the simulated chat.db")
    db = SimDB(path)
    phase = Phase()
    try:
        if script == SEND_SCRIPT:
            _send(db, values, failure, phase)
        else:
            _react(db, values, failure, phase)
    except ScriptError as err:
        disposition = "may_have_completed" if phase.started else "not_started"
        sys.stderr.write(f"IMSG_RESULT\tfailure\t{disposition}\t{err.number}\n"
                         f"0:0: execution error: {err.message} ({err.number})\n")
        return 1
    finally:
        db.close()
    _after_dispatch(failure)
    if failure != "no-result":
        sys.stdout.write("IMSG_RESULT\tok\tcompleted\t0\n")
    return 0


def _after_dispatch(failure: str) -> None:
    """What goes wrong once the rows are written: osascript hangs or is killed."""
    sys.stdout.flush()
    if failure == "hang-after-send":
        time.sleep(3600)
    if failure == "killed":
        os.kill(os.getpid(), signal.SIGKILL)


def _usage(problem: str) -> int:
    sys.stderr.write(f"imsg-sim-osascript: {problem}\n")
    return 2


def _check_common(failure: str) -> None:
    if failure == "automation":
        raise ScriptError("Not authorized to send Apple events to Messages.", -1743)
    if failure == "not-running":
        raise ScriptError("Messages got an error: Application isn’t running.", -600)


def _send(db: SimDB, values: list[str], failure: str, phase: Phase) -> None:
    kind, name, service, text, file = values
    recipient: tuple[str, int] | None = None
    if file and not os.path.isfile(file):  # ``POSIX file … as alias``, before dispatch
        raise ScriptError(f"File {file} wasn’t found.", -43)
    _check_common(failure)
    if kind == "chat":
        chat_id = _chat_by_guid(db, name, failure)
        if failure == "ghost-row":
            phase.started = True
            _ghost_row(db, chat_id, name)
            return
    else:
        if failure == "unknown-chat" or (failure == "no-imessage" and service == "iMessage"):
            raise ScriptError(f"Messages got an error: Can’t get participant \"{name}\".", -1728)
        chat_id = _direct_chat(db, name, service)
        recipient = (service, db.handle(name, service))
    phase.started = True
    if failure == "send-error":
        raise ScriptError("Messages got an error: Can’t send the message.", -1708)
    if text:
        _outgoing(db, chat_id, text, (), recipient)
    if file:
        if failure == "file-error":
            raise ScriptError("Messages got an error: An error of type 22 has occurred.", 22)
        _check_readable_by_messages(file)
        import mimetypes  # only file sends pay for its start-up

        mime = mimetypes.guess_type(file)[0] or "application/octet-stream"
        attachment = SimAttachment(os.path.basename(file), mime_type=mime, uti="public.data",
                                   size=os.path.getsize(file))
        _outgoing(db, chat_id, None, (attachment,), recipient)
    if failure == "sent-then-error":
        raise ScriptError("Messages got an error: The message could not be delivered.", -1700)


def _outgoing(db: SimDB, chat_id: int, text: str | None, attachments: tuple[SimAttachment, ...],
              recipient: tuple[str, int] | None) -> None:
    """One outgoing row; to a buddy it carries the buddy's service and handle."""
    if recipient is None:
        db.message(chat_id, text, from_me=True, attachments=attachments)
    else:
        service, handle_id = recipient
        db.message(chat_id, text, from_me=True, attachments=attachments, service=service,
                   handle_id=handle_id)


def _direct_chat(db: SimDB, handle: str, service: str) -> int:
    """The direct chat with ``handle``, created if new: one per service up to macOS 15, one
    ``any;-;`` chat for every service on macOS 26 (its services in ``chat_service``)."""
    if db.is_tahoe:
        row = db.conn.execute("SELECT ROWID FROM chat WHERE guid = ?",
                              (f"any;-;{handle}",)).fetchone()
        if row is not None:
            db.conn.execute("INSERT OR IGNORE INTO chat_service (service, chat) VALUES (?, ?)",
                            (service, row[0]))
            return int(row[0])
    return db.chat([handle], service=service)


def _check_readable_by_messages(path: str) -> None:
    """Messages' sandbox reads only its own folder; ``send`` fails after dispatch if not."""
    allowed = os.path.join(os.path.expanduser("~"), "Library", "Messages", "Attachments", "")
    if not os.path.realpath(path).startswith(os.path.realpath(allowed)):
        raise ScriptError("Messages got an error: An error of type 25 has occurred.", 25)


def _chat_by_guid(db: SimDB, guid: str, failure: str) -> int:
    row = db.conn.execute("SELECT ROWID FROM chat WHERE guid = ?", (guid,)).fetchone()
    if row is None or failure == "unknown-chat":
        raise ScriptError(f"Messages got an error: Can’t get chat id \"{guid}\".", -1728)
    return int(row[0])


def _ghost_row(db: SimDB, chat_id: int, guid: str) -> None:
    """macOS 26: AppleScript's view of the group guid has the other polarity, and Messages
    writes an empty SMS row addressed to that string, joined to no chat."""
    seen = guid.replace(";+;", ";-;", 1) if ";+;" in guid else guid.replace(";-;", ";+;", 1)
    db.message(chat_id, None, from_me=True, join=False, handle_id=db.handle(seen, "SMS"),
               service="SMS")


def _react(db: SimDB, values: list[str], failure: str, phase: Phase) -> None:
    guid, lookup, key = values
    _check_common(failure)
    chat_id = _chat_by_guid(db, guid, failure)
    if failure == "accessibility":
        raise ScriptError("System Events got an error: osascript is not allowed to send "
                          "keystrokes.", 1002)
    latest = db.conn.execute(
        "SELECT m.ROWID FROM message m JOIN chat_message_join j ON j.message_id = m.ROWID"
        " WHERE j.chat_id = ? AND m.is_from_me = 0 AND COALESCE(m.associated_message_type, 0)"
        " = 0 ORDER BY j.message_date DESC, m.ROWID DESC LIMIT 1",
        (chat_id,),
    ).fetchone()
    typed_into_compose = _after_line_break(lookup)
    phase.started = True
    if latest is not None and key in _KEYS:
        db.react(chat_id, int(latest[0]), _KEYS[key], from_me=True)
    if typed_into_compose:  # the script's final Return sends what landed in the compose field
        db.message(chat_id, typed_into_compose, from_me=True)


def _after_line_break(typed: str) -> str:
    """What ``keystroke`` types after the first line break: it lands in the compose field."""
    for mark in _LINE_BREAKS:
        if mark in typed:
            return typed.split(mark, 1)[1]
    return ""


if __name__ == "__main__":
    sys.exit(main())
