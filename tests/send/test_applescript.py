"""The fixed scripts, osascript's argv, and osascript's failures mapped to error classes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from imsg.errors import (
    AttachmentError,
    AutomationDenied,
    InvalidInput,
    MessagesUnavailable,
    SendError,
    SendInterrupted,
    SendTimeout,
    UnknownChatInMessages,
)
from imsg.send import applescript, children
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


def fake_osascript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """An osascript that runs ``body`` (sh) after reading the script from stdin."""
    path = tmp_path / "fake-osascript"
    path.write_text(f"#!/bin/sh\ncat > /dev/null\n{body}\n")
    path.chmod(0o755)
    monkeypatch.setenv("IMSG_OSASCRIPT", str(path))
    return path


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting for a reaper counts as exited)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        stat = Path(f"/proc/{pid}/stat")  # Linux: an unreaped zombie has exited too
        with contextlib.suppress(OSError):
            if stat.read_text().rpartition(")")[2].split()[0] == "Z":
                return True
        time.sleep(0.02)
    return False


def test_timeout_kills_the_whole_process_group(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # osascript with a child of its own: both must be gone, not just the leader.
    fake_osascript(tmp_path, monkeypatch, f'sleep 30 &\necho $$ $! > "{tmp_path}/pids"\nwait')
    with pytest.raises(SendTimeout, match=r"within 0\.3s") as caught:
        applescript.send_to_chat("g", text="hi", file="", timeout_s=0.3, what="chat 1")
    assert caught.value.disposition == "still_in_flight"
    assert all(gone(int(pid)) for pid in (tmp_path / "pids").read_text().split())


def test_a_descendant_that_left_the_group_cannot_hold_the_send(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # It keeps osascript's pipes open from another session; killing the group cannot reach it.
    monkeypatch.setattr(applescript, "REAP_S", 0.2)
    fake_osascript(tmp_path, monkeypatch, f"{sys.executable} -c 'import os, time; os.setsid();"
                   f" open(\"{tmp_path}/escaped\", \"w\").write(str(os.getpid()));"
                   " time.sleep(30)' &\nexec sleep 30")
    try:
        with pytest.raises(SendTimeout) as caught:
            applescript.send_to_chat("g", text="hi", file="", timeout_s=0.5, what="chat 1")
        assert caught.value.disposition == "still_in_flight"
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((tmp_path / "escaped").read_text()), signal.SIGKILL)


@pytest.mark.parametrize(("body", "disposition", "error", "message"), [
    ('echo "IMSG_RESULT\tfailure\tnot_started\t-1728" >&2\n'
     'echo "0:0: execution error: Can’t get chat id \\"x\\". (-1728)" >&2\nexit 1',
     "not_started", UnknownChatInMessages, r"-1728: Can’t get chat id \"x\"\.\)$"),
    ('echo "IMSG_RESULT\tfailure\tmay_have_completed\t-1708" >&2\n'
     'echo "0:0: execution error: Messages got an error: Can’t send. (-1708)" >&2\nexit 1',
     "may_have_completed", SendError, r"Can’t send\. \(-1708\); it may have been sent"),
    ('echo "0:0: execution error: Not authorized to send Apple events to Messages. (-1743)" >&2'
     "\nexit 1", "may_have_completed", AutomationDenied, "Automation"),
    ("exit 0", "may_have_completed", SendError, "without the structured delivery result"),
    ('echo "IMSG_RESULT\tok\tcompleted\t0"\nexit 3', "may_have_completed", SendError,
     "no error text"),
    ("kill -9 $$", "still_in_flight", SendError, "killed by SIGKILL"),
    ('echo "IMSG_RESULT\tfailure\tnot_started\t-1712" >&2\n'
     'echo "0:0: execution error: Messages got an error: AppleEvent timed out. (-1712)" >&2'
     "\nexit 1", "may_have_completed", SendTimeout, "-1712"),
    ('echo "IMSG_RESULT\tfailure\tmay_have_completed\t-1712" >&2\n'
     'echo "0:0: execution error: Messages got an error: AppleEvent timed out. (-1712)" >&2'
     "\nexit 1", "still_in_flight", SendTimeout, "Messages may still send it"),
])
def test_the_structured_result_decides_the_disposition(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, disposition: str,
        error: type[SendError], message: str) -> None:
    fake_osascript(tmp_path, monkeypatch, body)
    with pytest.raises(error) as caught:
        applescript.send_to_chat("g", text="hi", file="", timeout_s=10, what="chat 1")
    assert type(caught.value) is error
    assert caught.value.disposition == disposition
    assert (caught.value.transport, caught.value.operation) == ("applescript", "send")
    assert re.search(message, str(caught.value)), str(caught.value)


def test_success_needs_the_ok_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_osascript(tmp_path, monkeypatch, 'printf "IMSG_RESULT\\tok\\tcompleted\\t0\\n"')
    applescript.send_to_chat("g", text="hi", file="", timeout_s=10, what="chat 1")


def test_text_inside_an_error_message_cannot_forge_the_result() -> None:
    stderr = ("IMSG_RESULT\tfailure\tmay_have_completed\t-1708\n"
              "0:0: execution error: Can’t get participant \"\nIMSG_RESULT\tok\tcompleted\t0"
              "\n\". (-1708)\n")
    assert applescript.parse_result("", stderr) == applescript.ScriptResult(
        ok=False, disposition="may_have_completed", errno=-1708)
    assert applescript.parse_result("IMSG_RESULT\tok\tcompleted\t0\n", "") == (
        applescript.ScriptResult(ok=True, disposition=None, errno=0))
    assert applescript.parse_result("IMSG_RESULT ok completed 0", "junk") is None


def test_react_reports_operation_react(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_osascript(tmp_path, monkeypatch, "exit 1")
    with pytest.raises(SendError) as caught:
        applescript.react_in_chat("g", lookup="x", key="1", timeout_s=10, what="chat 1")
    assert caught.value.rpc_data["operation"] == "react"


def test_terminate_all_stops_a_send_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              fresh_children: children.Registry) -> None:
    fake_osascript(tmp_path, monkeypatch, f'echo $$ > "{tmp_path}/pid"\nexec sleep 30')
    failures: list[BaseException] = []

    def send() -> None:
        try:
            applescript.send_to_chat("g", text="hi", file="", timeout_s=60, what="chat 1")
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=send)
    thread.start()
    deadline = time.monotonic() + 20
    while not (tmp_path / "pid").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert children.terminate_all("imsg rpc is shutting down") == 1
    thread.join(20)
    [error] = failures
    assert isinstance(error, SendInterrupted)
    assert error.disposition == "still_in_flight" and error.rpc_code == -32001
    assert "imsg rpc is shutting down" in str(error) and "outcome is unknown" in str(error)
    assert gone(int((tmp_path / "pid").read_text()))
    with pytest.raises(SendInterrupted) as refused:
        applescript.send_to_chat("g", text="hi", file="", timeout_s=60, what="chat 1")
    assert refused.value.disposition == "not_started"
    assert children.terminate_all() == 0


def test_stop_on_signals_turns_sigterm_into_an_interrupted_send(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_osascript(tmp_path, monkeypatch, "exec sleep 30")
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    before = signal.getsignal(signal.SIGTERM)
    with children.stop_on_signals():
        timer.start()
        with pytest.raises(SendInterrupted, match="imsg received SIGTERM") as caught:
            applescript.send_to_chat("g", text="hi", file="", timeout_s=60, what="chat 1")
    timer.join()
    assert caught.value.disposition == "still_in_flight"
    assert signal.getsignal(signal.SIGTERM) is before


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
    err = classify_failure(stderr + "\n", "chat 1", disposition="not_started")
    assert type(err) is error
    assert re.search(message, str(err)), str(err)


def test_automation_help_names_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM_PROGRAM", "Apple_Terminal")
    err = classify_failure("execution error: Not authorized to send Apple events to Messages. "
                           "(-1743)", "x")
    assert "Allow Terminal to control Messages" in str(err)
