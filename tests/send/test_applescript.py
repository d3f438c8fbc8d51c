"""The fixed scripts, osascript's argv, and osascript's failures mapped to error classes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from imsg.errors import (
    AttachmentError,
    AutomationDenied,
    InvalidInput,
    MessagesUnavailable,
    SendError,
    SendTimeout,
    UnknownChatInMessages,
)
from imsg.send import applescript
from imsg.send.applescript import REACT_SCRIPT, SEND_SCRIPT, classify_failure

from .conftest import Recorder

HOSTILE = [
    'she said "hi"',
    "back\\slash \\\" \\n",
    "line one\nline two\r\nthree",
    '" & do shell script "touch /tmp/imsg-pwned" & "',
    "$(touch imsg-pwned) `touch imsg-pwned`; touch imsg-pwned",
    "-e",
    "--help",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_values_travel_as_argv_and_the_script_never_changes(recorder: Recorder,
                                                            value: str) -> None:
    applescript.send_to_buddy(value, apple_service="SMS", text=value, file=value,
                              timeout_s=10, what="x")
    call = recorder.call()
    assert call["argv"] == ["-l", "AppleScript", "-", "buddy", value, "SMS", value, value]
    assert call["stdin"] == SEND_SCRIPT


def test_chat_and_react_argv(recorder: Recorder) -> None:
    applescript.send_to_chat("any;+;chat1", text="hi", file="", timeout_s=10, what="x")
    assert recorder.call()["argv"][3:] == ["chat", "any;+;chat1", "", "hi", ""]
    applescript.react_in_chat("any;+;chat1", lookup="Team", key="2", timeout_s=10, what="x")
    assert recorder.call() == {"argv": ["-l", "AppleScript", "-", "any;+;chat1", "Team", "2"],
                               "stdin": REACT_SCRIPT}


def test_scripts_read_every_value_from_argv() -> None:
    for script, count in ((SEND_SCRIPT, 5), (REACT_SCRIPT, 3)):
        assert script.startswith("on run argv\n")
        for item in range(1, count + 1):
            assert f"item {item} of argv" in script
        assert f"item {count + 1} of argv" not in script


@pytest.mark.parametrize(("value", "message"), [
    ("nul\0byte", "NUL"),
    ("lone \udc80 surrogate", "UTF-8"),
    ("x" * 3_000_000, "too long"),
])
def test_values_osascript_cannot_carry(recorder: Recorder, value: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        applescript.send_to_chat("g", text=value, file="", timeout_s=10, what="x")
    assert not recorder.ran


def test_missing_osascript(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMSG_OSASCRIPT", str(tmp_path / "nope"))
    with pytest.raises(MessagesUnavailable, match=r"Cannot run .*nope"):
        applescript.send_to_chat("g", text="hi", file="", timeout_s=10, what="x")


def test_default_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMSG_OSASCRIPT", raising=False)
    assert applescript.osascript_path() == "/usr/bin/osascript"


def test_timeout_kills_osascript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeper = tmp_path / "sleeper"
    sleeper.write_text("#!/bin/sh\necho $$ > \"$0.pid\"\nexec sleep 30\n")
    sleeper.chmod(0o755)
    monkeypatch.setenv("IMSG_OSASCRIPT", str(sleeper))
    with pytest.raises(SendTimeout, match=r"within 0\.3s"):
        applescript.send_to_chat("g", text="hi", file="", timeout_s=0.3, what="chat 1")
    pid = int((tmp_path / "sleeper.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize(("stderr", "error", "message"), [
    ("0:0: execution error: Not authorized to send Apple events to Messages. (-1743)",
     AutomationDenied, "control Messages in System Settings > Privacy & Security > Automation"),
    ("0:0: execution error: Not authorized to send Apple events to System Events. (-1743)",
     AutomationDenied, "Allow .* to control System Events"),
    ("1:2: execution error: System Events got an error: osascript is not allowed to send "
     "keystrokes. (1002)", AutomationDenied, "Accessibility"),
    ("1:2: execution error: Messages got an error: Application isn’t running. (-600)",
     MessagesUnavailable, "sign in"),
    ("1:2: execution error: Messages got an error: Can’t get service 1 whose service type = "
     "iMessage. Invalid index. (-1719)", MessagesUnavailable, "-1719"),
    ('1:2: execution error: Messages got an error: Can’t get chat id "any;-;chat1". (-1728)',
     UnknownChatInMessages, 'does not know chat 1 .*Can’t get chat id "any;-;chat1"'),
    ("1:2: execution error: File /x wasn’t found. (-43)", AttachmentError, "-43"),
    ("1:2: execution error: Messages got an error: AppleEvent timed out. (-1712)",
     SendTimeout, "-1712"),
    ("1:2: execution error: Messages got an error: Something odd. (-1708)",
     SendError, r"AppleScript failed: Messages got an error: Something odd\. \(-1708\)"),
    ("osascript: couldn't do it", SendError, "AppleScript failed: osascript: couldn't do it"),
    ("", SendError, "no error text"),
])
def test_failures_map_to_one_class_each(stderr: str, error: type[Exception],
                                        message: str) -> None:
    err = classify_failure(stderr + "\n", "chat 1")
    assert type(err) is error
    assert re.search(message, str(err)), str(err)


def test_automation_help_names_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM_PROGRAM", "Apple_Terminal")
    err = classify_failure("execution error: Not authorized to send Apple events to Messages. "
                           "(-1743)", "x")
    assert "Allow Terminal to control Messages" in str(err)
