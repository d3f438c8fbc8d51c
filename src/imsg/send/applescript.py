"""The fixed AppleScripts imsg runs, and running them through ``osascript`` with argv.

Every user value (recipient, text, file path, service, chat guid, search text) travels as an
``on run argv`` argument of ``osascript -l AppleScript -``; the script source arrives on stdin
and never changes, so no value is ever parsed as AppleScript (or by a shell: there is none).
The binary is ``$IMSG_OSASCRIPT`` if set, else ``/usr/bin/osascript``; the simulator
(``imsg-sim-osascript``) plugs in there and refuses any script but these two.

**Dispatch phase.** Each script notes its phase (``pre_dispatch``, then ``dispatch_started``
just before Messages is told to send or the tapback keys are pressed) and reports it in one
line, ``IMSG_RESULT<TAB>ok|failure<TAB>completed|not_started|may_have_completed<TAB><errno>``:
returned on stdout on success, logged to stderr before the error is re-raised on failure. The
phase gives the failure its disposition: an error before dispatch is ``not_started`` (nothing
was sent, safe to retry), after it ``may_have_completed``. No such line means
``may_have_completed``. Our time bound, an AppleEvent timeout (-1712) after dispatch and a
signal are ``still_in_flight`` (Messages holds the Apple event and may act on it after
osascript is gone); none of them is ever ``not_started``.

**Children.** osascript runs in its own process group (``imsg.send.children``): a timeout
kills the whole group and reaps it, and ``children.terminate_all`` stops every in-flight one
at shutdown (the send then fails with SendInterrupted, ``still_in_flight``).

Failures of ``osascript`` become one error class each (``classify_failure``):
-1743 → AutomationDenied (which app to allow); 1002 → AutomationDenied (Accessibility);
-600/-609/-10810/-1719 → MessagesUnavailable; -1728 → UnknownChatInMessages;
-43 → AttachmentError; -1712 or our time bound → SendTimeout; anything else → SendError.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
from dataclasses import dataclass

from imsg.errors import (
    AttachmentError,
    AutomationDenied,
    Disposition,
    ImsgError,
    InvalidInput,
    MessagesUnavailable,
    SendError,
    SendInterrupted,
    SendTimeout,
    UnknownChatInMessages,
)
from imsg.send import children

DEFAULT_OSASCRIPT = "/usr/bin/osascript"
RESULT_TAG = "IMSG_RESULT"
NO_RESULT = "osascript exited without the structured delivery result"
REAP_S = 5.0

# Shared tail of both scripts: report the phase of a failure, re-raise it, or report success.
_REPORT = """\
	on error errMsg number errNum
		if phase is "pre_dispatch" then
			set disposition to "not_started"
		else
			set disposition to "may_have_completed"
		end if
		log "IMSG_RESULT" & tab & "failure" & tab & disposition & tab & errNum
		error errMsg number errNum
	end try
	return "IMSG_RESULT" & tab & "ok" & tab & "completed" & tab & "0"
end run
"""

# argv: 1 "chat" or "buddy", 2 chat guid or handle, 3 "iMessage" or "SMS" (buddy only),
# 4 text ("" = none), 5 POSIX path of a staged file ("" = none). The file is resolved before
# anything is sent, so a missing file cannot leave a text-only half send behind.
SEND_SCRIPT = """\
on run argv
	set targetKind to item 1 of argv
	set targetName to item 2 of argv
	set serviceKind to item 3 of argv
	set messageText to item 4 of argv
	set filePath to item 5 of argv
	set phase to "pre_dispatch"
	try
		if filePath is not "" then set theFile to POSIX file filePath as alias
		tell application "Messages"
			if targetKind is "chat" then
				set theTarget to chat id targetName
			else
				if serviceKind is "SMS" then
					set theService to first service whose service type is SMS
				else
					set theService to first service whose service type is iMessage
				end if
				try
					set theTarget to buddy targetName of theService
				on error
					set theTarget to participant targetName of theService
				end try
			end if
			if messageText is not "" then
				set phase to "dispatch_started"
				send messageText to theTarget
			end if
			if filePath is not "" then
				set phase to "dispatch_started"
				send theFile to theTarget
			end if
		end tell
""" + _REPORT

# argv: 1 chat guid (checked by Messages, -1728 if unknown), 2 text typed into Messages'
# search to open the chat (never untrusted control characters: see imsg.send.sender), 3
# tapback menu key "1"…"6". Cmd-T opens the tapback menu on the chat's latest message; Return
# confirms (without it the menu stays open, Swift imsg #53).
REACT_SCRIPT = """\
on run argv
	set chatGuid to item 1 of argv
	set chatLookup to item 2 of argv
	set reactionKey to item 3 of argv
	set phase to "pre_dispatch"
	try
		tell application "Messages"
			activate
			set targetChat to chat id chatGuid
		end tell
		delay 0.3
		tell application "System Events"
			tell process "Messages"
				keystroke "f" using command down
				delay 0.15
				keystroke "a" using command down
				keystroke chatLookup
				delay 0.25
				key code 36
				delay 0.35
				set phase to "dispatch_started"
				keystroke "t" using command down
				delay 0.2
				keystroke reactionKey
				delay 0.1
				key code 36
			end tell
		end tell
""" + _REPORT

_RESULT_LINE = re.compile(
    r"IMSG_RESULT\t(ok|failure)\t(completed|not_started|may_have_completed)\t(-?\d+)")
_CODE = re.compile(r"\((-?\d+)\)\s*$")
_DETAIL = re.compile(r"execution error:\s*(.*?)\s*(?:\(-?\d+\))?\s*$", re.DOTALL)
_APPLE_EVENTS_TO = re.compile(r"Apple events to (.+?)\.")
_UNAVAILABLE_CODES = {-600, -609, -10810, -1719}
_HOST_APPS = {
    "Apple_Terminal": "Terminal",
    "iTerm.app": "iTerm",
    "vscode": "Visual Studio Code",
    "WarpTerminal": "Warp",
    "ghostty": "Ghostty",
}


def osascript_path() -> str:
    return os.environ.get("IMSG_OSASCRIPT") or DEFAULT_OSASCRIPT


def send_to_chat(guid: str, *, text: str, file: str, timeout_s: float, what: str) -> None:
    """Send ``text`` then ``file`` (each "" for none) to Messages' ``chat id guid``."""
    _run(SEND_SCRIPT, ["chat", guid, "", text, file], timeout_s=timeout_s, what=what)


def send_to_buddy(handle: str, *, apple_service: str, text: str, file: str, timeout_s: float,
                  what: str) -> None:
    """Send ``text`` then ``file`` to ``handle`` on the "iMessage" or "SMS" service."""
    _run(SEND_SCRIPT, ["buddy", handle, apple_service, text, file], timeout_s=timeout_s,
         what=what)


def react_in_chat(guid: str, *, lookup: str, key: str, timeout_s: float, what: str) -> None:
    """Open the chat by typing ``lookup`` into search, then pick tapback ``key`` ("1"…"6")."""
    _run(REACT_SCRIPT, [guid, lookup, key], timeout_s=timeout_s, what=what, operation="react")


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """The script's ``IMSG_RESULT`` line: success, the disposition of a failure, its errno."""

    ok: bool
    disposition: Disposition | None
    errno: int


def parse_result(stdout: str, stderr: str) -> ScriptResult | None:
    """The first ``IMSG_RESULT`` line of stdout (success), else of stderr (a failure is logged
    there before the error text, so text inside an error message can never come first)."""
    for stream in (stdout, stderr):
        for line in stream.splitlines():
            match = _RESULT_LINE.fullmatch(line.strip())
            if match:
                ok, phase, number = match.groups()
                disposition: Disposition | None = (
                    None if phase == "completed" else "not_started"
                    if phase == "not_started" else "may_have_completed")
                return ScriptResult(ok == "ok", disposition, int(number))
    return None


def _run(script: str, argv: list[str], *, timeout_s: float, what: str,
         operation: str = "send") -> None:
    """Run ``script`` with ``argv`` through osascript; return when it reports success.

    ``what`` names the target in error messages. Raises InvalidInput for a value osascript
    cannot carry (NUL, invalid UTF-8, over the OS argument limit), MessagesUnavailable when
    osascript cannot be started, SendTimeout (``still_in_flight``) when it runs longer than
    ``timeout_s`` (its process group is killed), SendInterrupted when ``terminate_all``
    stopped it, and the class of its error number otherwise, with the disposition of its
    ``IMSG_RESULT`` line (see the module docstring).
    """
    for value in argv:
        _check_value(value)
    binary = osascript_path()
    try:
        child = children.spawn([binary, "-l", "AppleScript", "-", *argv])
    except OSError as exc:
        if exc.errno == errno.E2BIG:
            raise InvalidInput("The text is too long to hand to osascript") from None
        raise MessagesUnavailable(
            f"Cannot run {binary}: {exc.strerror}. Sending needs macOS's osascript "
            "(IMSG_OSASCRIPT names another one)", operation=operation) from None
    timed_out = False
    try:
        out, err = child.process.communicate(script.encode("utf-8"), timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        out, err = _reap(child)
    except BaseException:
        _reap(child)
        raise
    finally:
        children.release(child)
    status = child.process.returncode
    if child.stop_reason is not None:
        raise SendInterrupted(
            f"{child.stop_reason}: osascript was stopped while Messages was handling the "
            f"{operation} to {what}; the outcome is unknown: check the chat before sending "
            "again", disposition="still_in_flight", operation=operation)
    if timed_out:
        raise SendTimeout(
            f"Messages did not answer within {timeout_s:g}s ({what}); osascript was stopped, "
            "but Messages may still send it: check the chat before retrying",
            disposition="still_in_flight", operation=operation)
    if status < 0:
        raise SendError(
            f"osascript was killed by {_signal_name(-status)} while Messages was handling the "
            f"{operation} to {what}; Messages may still send it: check the chat before "
            "retrying", disposition="still_in_flight", operation=operation)
    result = parse_result(out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
    if status == 0 and result is not None and result.ok:
        return
    stderr = err.decode("utf-8", "replace")
    if result is None and status == 0:
        raise SendError(f"{NO_RESULT} ({what}); it may have been sent: check the chat before "
                        "retrying", operation=operation)
    disposition = result.disposition if result and not result.ok else None
    raise classify_failure(stderr, what, disposition=disposition or "may_have_completed",
                           operation=operation)


def _reap(child: children.Child) -> tuple[bytes, bytes]:
    """Kill the child's process group and collect it. A descendant that left the group and
    keeps the pipes open cannot hold us: after ``REAP_S`` only the child itself is waited for."""
    child.kill_group()
    try:
        return child.process.communicate(timeout=REAP_S)
    except subprocess.TimeoutExpired:
        child.process.wait()
        return b"", b""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _check_value(value: str) -> None:
    if "\0" in value:
        raise InvalidInput("Values sent to Messages cannot contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("Values sent to Messages must be valid UTF-8 text") from None


_UNSURE = {
    "not_started": "",
    "may_have_completed": "; it may have been sent: check the chat before retrying",
    "still_in_flight": "; Messages may still send it: check the chat before retrying",
}


def classify_failure(stderr: str, what: str, *, disposition: Disposition = "may_have_completed",
                     operation: str = "send") -> ImsgError:
    """The error for osascript's stderr (``NN:MM: execution error: <text> (<code>)``), with
    ``disposition`` (from the script's ``IMSG_RESULT`` line). An AppleEvent timeout after
    dispatch is ``still_in_flight``, before it ``may_have_completed``: never ``not_started``."""
    lines = [line for line in stderr.splitlines() if not _RESULT_LINE.fullmatch(line.strip())]
    text = "\n".join(lines).strip()
    code_match = _CODE.search(text)
    code = int(code_match.group(1)) if code_match else None
    detail_match = _DETAIL.search(text)
    detail = detail_match.group(1) if detail_match else text or "no error text"
    if code == -1712:
        late: Disposition = ("may_have_completed" if disposition == "not_started"
                             else "still_in_flight")
        return SendTimeout(f"Messages did not answer in time (-1712: {detail}){_UNSURE[late]}",
                           disposition=late, operation=operation)
    unsure = _UNSURE[disposition]
    kind: type[SendError] = SendError
    if code == -1743:
        app_match = _APPLE_EVENTS_TO.search(text)
        app = app_match.group(1) if app_match else "Messages"
        kind, message = AutomationDenied, (
            f"Not allowed to control {app} (-1743). Allow {_host_app()} to control {app} in "
            f"System Settings > Privacy & Security > Automation, then retry{unsure}.")
    elif code == 1002:
        kind, message = AutomationDenied, (
            f"Not allowed to send keystrokes (1002). Allow {_host_app()} in System Settings > "
            f"Privacy & Security > Accessibility, then retry{unsure}.")
    elif code in _UNAVAILABLE_CODES:
        kind, message = MessagesUnavailable, (
            f"Messages cannot send right now ({code}: {detail}). Open Messages and sign in to "
            f"iMessage (or turn on Text Message Forwarding for SMS){unsure}.")
    elif code == -1728:
        kind, message = UnknownChatInMessages, (
            f"Messages does not know {what} (-1728: {detail}){unsure}")
    elif code == -43 and disposition == "not_started":
        return AttachmentError(f"Messages could not read the file (-43: {detail})")
    else:
        suffix = f" ({code})" if code is not None else ""
        message = f"AppleScript failed: {detail}{suffix}{unsure}"
    return kind(message, disposition=disposition, operation=operation)


def _host_app() -> str:
    """The app macOS most likely asks about: the terminal imsg runs in, when it says so."""
    name = _HOST_APPS.get(os.environ.get("TERM_PROGRAM", ""))
    if name:
        return name
    return "the app that runs imsg (Terminal, iTerm, your editor, or the gateway that starts it)"
