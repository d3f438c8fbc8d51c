"""The fixed AppleScripts imsg runs, and running them through ``osascript`` with argv.

Every user value (recipient, text, file path, service, chat guid, search text) travels as an
``on run argv`` argument of ``osascript -l AppleScript -``; the script source arrives on stdin
and never changes, so no value is ever parsed as AppleScript (or by a shell: there is none).
The binary is ``$IMSG_OSASCRIPT`` if set, else ``/usr/bin/osascript``; the simulator
(``imsg-sim-osascript``) plugs in there and refuses any script but these two.

Failures of ``osascript`` become one error class each (``classify_failure``):
-1743 → AutomationDenied (which app to allow); 1002 → AutomationDenied (Accessibility);
-600/-609/-10810/-1719 → MessagesUnavailable; -1728 → UnknownChatInMessages;
-43 → AttachmentError; -1712 or our time bound → SendTimeout; anything else → SendError.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess

from imsg.errors import (
    AttachmentError,
    AutomationDenied,
    ImsgError,
    InvalidInput,
    MessagesUnavailable,
    SendError,
    SendTimeout,
    UnknownChatInMessages,
)

DEFAULT_OSASCRIPT = "/usr/bin/osascript"

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
		if messageText is not "" then send messageText to theTarget
		if filePath is not "" then send theFile to theTarget
	end tell
end run
"""

# argv: 1 chat guid (checked by Messages, -1728 if unknown), 2 text typed into Messages'
# search to open the chat, 3 tapback menu key "1"…"6". Cmd-T opens the tapback menu on the
# chat's latest message; Return confirms (without it the menu stays open, Swift imsg #53).
REACT_SCRIPT = """\
on run argv
	set chatGuid to item 1 of argv
	set chatLookup to item 2 of argv
	set reactionKey to item 3 of argv
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
			keystroke "t" using command down
			delay 0.2
			keystroke reactionKey
			delay 0.1
			key code 36
		end tell
	end tell
end run
"""

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
    _run(REACT_SCRIPT, [guid, lookup, key], timeout_s=timeout_s, what=what)


def _run(script: str, argv: list[str], *, timeout_s: float, what: str) -> None:
    """Run ``script`` with ``argv`` through osascript; return when it exits 0.

    ``what`` names the target in error messages. Raises InvalidInput for a value osascript
    cannot carry (NUL, invalid UTF-8, over the OS argument limit), MessagesUnavailable when
    osascript cannot be started, SendTimeout when it runs longer than ``timeout_s`` (it is
    killed), and the class of its error number otherwise (see the module docstring).
    """
    for value in argv:
        _check_value(value)
    binary = osascript_path()
    try:
        done = subprocess.run(
            [binary, "-l", "AppleScript", "-", *argv],
            input=script.encode("utf-8"),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SendTimeout(
            f"Messages did not answer within {timeout_s:g}s ({what}); osascript was stopped "
            "(the message may still go out: check the chat before retrying)") from None
    except OSError as exc:
        if exc.errno == errno.E2BIG:
            raise InvalidInput("The text is too long to hand to osascript") from None
        raise MessagesUnavailable(
            f"Cannot run {binary}: {exc.strerror}. Sending needs macOS's osascript "
            "(IMSG_OSASCRIPT names another one)") from None
    if done.returncode != 0:
        raise classify_failure(done.stderr.decode("utf-8", "replace"), what)


def _check_value(value: str) -> None:
    if "\0" in value:
        raise InvalidInput("Values sent to Messages cannot contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("Values sent to Messages must be valid UTF-8 text") from None


def classify_failure(stderr: str, what: str) -> ImsgError:
    """The error for osascript's stderr (``NN:MM: execution error: <text> (<code>)``)."""
    text = stderr.strip()
    code_match = _CODE.search(text)
    code = int(code_match.group(1)) if code_match else None
    detail_match = _DETAIL.search(text)
    detail = detail_match.group(1) if detail_match else text or "no error text"
    if code == -1743:
        app_match = _APPLE_EVENTS_TO.search(text)
        app = app_match.group(1) if app_match else "Messages"
        return AutomationDenied(
            f"Not allowed to control {app} (-1743). Allow {_host_app()} to control {app} in "
            "System Settings > Privacy & Security > Automation, then retry.")
    if code == 1002:
        return AutomationDenied(
            f"Not allowed to send keystrokes (1002). Allow {_host_app()} in System Settings > "
            "Privacy & Security > Accessibility, then retry.")
    if code in _UNAVAILABLE_CODES:
        return MessagesUnavailable(
            f"Messages cannot send right now ({code}: {detail}). Open Messages and sign in to "
            "iMessage (or turn on Text Message Forwarding for SMS).")
    if code == -1728:
        return UnknownChatInMessages(f"Messages does not know {what} (-1728: {detail})")
    if code == -43:
        return AttachmentError(f"Messages could not read the file (-43: {detail})")
    if code == -1712:
        return SendTimeout(f"Messages did not answer in time (-1712: {detail})")
    return SendError(f"AppleScript failed: {detail}" + (f" ({code})" if code is not None else ""))


def _host_app() -> str:
    """The app macOS most likely asks about: the terminal imsg runs in, when it says so."""
    name = _HOST_APPS.get(os.environ.get("TERM_PROGRAM", ""))
    if name:
        return name
    return "the app that runs imsg (Terminal, iTerm, your editor, or the gateway that starts it)"
