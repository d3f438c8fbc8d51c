"""``send()`` end to end: the simulated Messages writes the rows, chat.db confirms them."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from imsg.chatdb.reader import ChatDB
from imsg.chatdb.typedstream import body_text
from imsg.errors import (
    AttachmentError,
    AutomationDenied,
    ChatNotFound,
    DatabaseNotFound,
    InvalidInput,
    MessagesUnavailable,
    SendError,
    SendInterrupted,
    SendNotConfirmed,
    SendTimeout,
    UnknownChatInMessages,
)
from imsg.send import applescript
from imsg.send.applescript import SEND_SCRIPT
from imsg.send.children import Registry
from imsg.send.sender import SendResult, send
from imsg.send.stage import staging_root
from imsg.send.targets import Target, parse_target
from imsg.sim.messages import SimDB

from .conftest import ALICE, CAROL, Recorder, World

HOSTILE_TEXTS = {
    "quotes": 'she said "hi" and \'bye\'',
    "backslashes": "C:\\temp\\new \\\" \\n \\\\",
    "newlines": "line one\nline two\r\n\nline four\n",
    "applescript": '" & do shell script "touch imsg-pwned" & "',
    "shell": "$(touch imsg-pwned) `touch imsg-pwned`; touch imsg-pwned",
    "emoji": "👋🏽 👨‍👩‍👧‍👦 🇺🇸 ❤️",
    "long": ("0123456789" * 1000),
    "dash": "-e",
}


ONE_SCHEMA = pytest.mark.parametrize("schema", ["tahoe"])


def rows_after(world: World, rowid: int) -> list[tuple]:
    return world.db.conn.execute(
        "SELECT m.ROWID, m.text, m.attributedBody, m.is_from_me, m.service, j.chat_id"
        " FROM message m LEFT JOIN chat_message_join j ON j.message_id = m.ROWID"
        " WHERE m.ROWID > ? ORDER BY m.ROWID", (rowid,)).fetchall()


def max_rowid(world: World) -> int:
    return int(world.db.conn.execute("SELECT MAX(ROWID) FROM message").fetchone()[0])


def test_group_send_returns_the_verified_row(world: World) -> None:
    before = max_rowid(world)
    result = send(Target("chat_id", str(world.group)), text="hello", db_path=world.path)
    [(rowid, text, body, from_me, service, chat_id)] = rows_after(world, before)
    assert (text, body_text(body), from_me, service, chat_id) == (
        None, "hello", 1, "iMessage", world.group)
    guid = world.db.guid_of(rowid)
    chat_guid = world.db.conn.execute("SELECT guid FROM chat WHERE ROWID = ?",
                                      (world.group,)).fetchone()[0]
    assert result == SendResult(service="iMessage", id=rowid, guid=guid, chat_id=world.group,
                                chat_guid=chat_guid, verify_ms=result.verify_ms)
    assert list(result.to_dict().items()) == [
        ("status", "sent"), ("ok", True), ("transport", "applescript"), ("id", rowid),
        ("guid", guid), ("message_id", guid), ("chat_id", world.group),
        ("chat_guid", chat_guid), ("service", "iMessage")]


def test_to_dict_omits_empty_values() -> None:
    assert SendResult(service="SMS", id=5, guid="G", chat_id=3, chat_guid="").to_dict() == {
        "status": "sent", "ok": True, "transport": "applescript", "id": 5, "guid": "G",
        "message_id": "G", "chat_id": 3, "service": "SMS"}


@ONE_SCHEMA
@pytest.mark.parametrize("name", sorted(HOSTILE_TEXTS))
def test_text_arrives_verbatim_and_nothing_runs(world: World, name: str,
                                                monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    text = HOSTILE_TEXTS[name]
    result = send(Target("chat_id", str(world.group)), text=text, db_path=world.path)
    with ChatDB(world.path) as db:
        [(message, _)] = db.messages_after(result.id - 1, limit=1)
    assert message.text == text
    assert not (tmp_path / "imsg-pwned").exists()


def test_chat_guid_and_identifier_targets(world: World) -> None:
    guid, identifier = world.db.conn.execute(
        "SELECT guid, chat_identifier FROM chat WHERE ROWID = ?", (world.group,)).fetchone()
    assert send(Target("chat_guid", guid), text="a", db_path=world.path).chat_id == world.group
    assert send(Target("chat_identifier", identifier), text="b",
                db_path=world.path).chat_id == world.group


@ONE_SCHEMA
def test_a_direct_chat_is_sent_to_its_buddy(world: World, spy: Recorder) -> None:
    result = send(Target("chat_id", str(world.alice)), text="hi", db_path=world.path)
    assert spy.call()["argv"][3:] == ["buddy", ALICE, "iMessage", "hi", ""]
    assert result.chat_id == world.alice


@ONE_SCHEMA
def test_a_group_is_sent_to_the_group(world: World, spy: Recorder) -> None:
    guid = world.db.conn.execute("SELECT guid FROM chat WHERE ROWID = ?",
                                 (world.group,)).fetchone()[0]
    send(Target("chat_id", str(world.group)), text="hi", db_path=world.path)
    assert spy.call()["argv"][3:] == ["chat", guid, "", "hi", ""]


def test_a_new_buddy_gets_a_handle_and_a_chat(world: World) -> None:
    result = send(parse_target("(555) 555-0150"), text="hello stranger", db_path=world.path)
    identifier, service = world.db.conn.execute(
        "SELECT chat_identifier, service_name FROM chat WHERE ROWID = ?",
        (result.chat_id,)).fetchone()
    assert (identifier, service, result.service) == ("+15555550150", "iMessage", "iMessage")


def test_file_after_text_staged_under_home(world: World, tmp_path: Path) -> None:
    source = tmp_path / 'holiday "best" pic\'s.jpg'
    source.write_bytes(b"\xff\xd8 jpeg data")
    before = max_rowid(world)
    result = send(Target("chat_id", str(world.group)), text="look", file=str(source),
                  db_path=world.path)
    text_row, file_row = rows_after(world, before)
    assert result.id == text_row[0] and body_text(text_row[2]) == "look"
    [(name, size)] = world.db.conn.execute(
        "SELECT a.transfer_name, a.total_bytes FROM attachment a JOIN message_attachment_join j"
        " ON j.attachment_id = a.ROWID WHERE j.message_id = ?", (file_row[0],)).fetchall()
    assert (name, size) == (source.name, source.stat().st_size)
    [staged] = staging_root().glob("*/*")
    assert staged.name == source.name and staged.read_bytes() == source.read_bytes()


@ONE_SCHEMA
def test_file_only_send_returns_the_file_row(world: World, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("notes")
    before = max_rowid(world)
    result = send(Target("chat_id", str(world.group)), file=str(source), db_path=world.path)
    [(rowid, *_)] = rows_after(world, before)
    assert result.id == rowid


@ONE_SCHEMA
def test_file_problems_stop_the_send_before_messages(world: World, recorder: Recorder,
                                                    tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(AttachmentError, match="File too large"):
        send(Target("chat_id", str(world.group)), text="hi", file=str(big),
             db_path=world.path, max_file_bytes=1024)
    with pytest.raises(AttachmentError, match="File not found"):
        send(Target("chat_id", str(world.group)), text="hi", file=str(tmp_path / "nope"),
             db_path=world.path)
    assert not recorder.ran


@ONE_SCHEMA
@pytest.mark.parametrize(("text", "message"), [
    (None, "Nothing to send"), ("", "Nothing to send"), (" \n\t", "only whitespace")])
def test_nothing_to_send(world: World, recorder: Recorder, text: str | None,
                         message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        send(Target("chat_id", str(world.group)), text=text, db_path=world.path)
    assert not recorder.ran


@ONE_SCHEMA
@pytest.mark.parametrize("target", [Target("chat_id", "999"), Target("chat_guid", "any;+;x"),
                                    Target("chat_identifier", "chat000")])
def test_unknown_chats(world: World, target: Target) -> None:
    with pytest.raises(ChatNotFound):
        send(target, text="hi", db_path=world.path)


# --- service ----------------------------------------------------------------------------------

def test_auto_uses_sms_for_a_handle_seen_only_on_sms(world: World) -> None:
    result = send(parse_target("+15555550199"), text="hi", db_path=world.path)
    assert (result.service, result.chat_id) == ("SMS", world.sms_contact)


def test_auto_uses_imessage_for_a_handle_seen_on_imessage(world: World) -> None:
    result = send(parse_target(ALICE), text="hi", db_path=world.path)
    assert (result.service, result.chat_id) == ("iMessage", world.alice)


def test_pinned_sms(world: World) -> None:
    before = max_rowid(world)
    result = send(parse_target(f"sms:{ALICE}"), text="hi", db_path=world.path)
    assert result.service == "SMS" and rows_after(world, before)[0][4] == "SMS"


def test_fallback_retries_over_sms_and_confirms_the_sms_row(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMSG_SIM_FAIL", "no-imessage")
    before = max_rowid(world)
    result = send(parse_target(ALICE), text="hi", db_path=world.path)
    [row] = rows_after(world, before)
    assert (result.service, result.id, row[4]) == ("SMS", row[0], "SMS")


@ONE_SCHEMA
def test_no_sms_fallback_keeps_the_first_failure(world: World, spy: Recorder,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMSG_SIM_FAIL", "no-imessage")
    with pytest.raises(UnknownChatInMessages) as caught:
        send(parse_target("+15555550160"), text="hi", db_path=world.path,
             allow_sms_fallback=False)
    assert caught.value.disposition == "not_started" and caught.value.retry_safe
    assert spy.call()["argv"][4:6] == ["+15555550160", "iMessage"]


@ONE_SCHEMA
def test_no_fallback_for_files_pinned_services_or_email(world: World, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMSG_SIM_FAIL", "no-imessage")
    source = tmp_path / "a.jpg"
    source.write_bytes(b"x")
    with pytest.raises(UnknownChatInMessages, match=r"\+15555550160 on iMessage"):
        send(parse_target("+15555550160"), file=str(source), db_path=world.path)
    with pytest.raises(UnknownChatInMessages):
        send(parse_target("imessage:+15555550160"), text="hi", db_path=world.path)
    with pytest.raises(UnknownChatInMessages):
        send(parse_target(CAROL), text="hi", db_path=world.path)


@ONE_SCHEMA
@pytest.mark.parametrize("failure", ["send-error", "sent-then-error"])
def test_no_fallback_once_dispatch_began(world: World, monkeypatch: pytest.MonkeyPatch,
                                         failure: str) -> None:
    # Retrying over SMS after Messages began sending could deliver the text twice.
    monkeypatch.setenv("IMSG_SIM_FAIL", failure)
    before = max_rowid(world)
    with pytest.raises(SendError) as caught:
        send(parse_target("+15555550160"), text="hi", db_path=world.path)
    assert caught.value.disposition == "may_have_completed"
    assert all(row[4] != "SMS" for row in rows_after(world, before))


# --- Messages' failures -----------------------------------------------------------------------

@ONE_SCHEMA
@pytest.mark.parametrize(("failure", "error", "disposition"), [
    ("automation", AutomationDenied, "not_started"),
    ("not-running", MessagesUnavailable, "not_started"),
    ("unknown-chat", UnknownChatInMessages, "not_started"),
    ("send-error", SendError, "may_have_completed"),
    ("ghost-row", SendNotConfirmed, "may_have_completed"),
])
def test_messages_failures(world: World, monkeypatch: pytest.MonkeyPatch, failure: str,
                           error: type[SendError], disposition: str) -> None:
    monkeypatch.setenv("IMSG_SIM_FAIL", failure)
    before = max_rowid(world)
    with pytest.raises(error) as caught:
        send(Target("chat_id", str(world.group)), text="hi", db_path=world.path)
    assert type(caught.value) is error and caught.value.disposition == disposition
    assert caught.value.rpc_code == (-32603 if disposition == "not_started" else -32001)
    joined = [row for row in rows_after(world, before) if row[5]]
    assert joined == []


@ONE_SCHEMA
@pytest.mark.parametrize(("failure", "disposition", "message"), [
    ("sent-then-error", "may_have_completed", "could not be delivered"),
    ("file-error", "may_have_completed", "error of type 22"),
    ("no-result", "may_have_completed", "without the structured delivery result"),
    ("killed", "still_in_flight", "killed by SIGKILL"),
])
def test_failures_after_messages_wrote_rows_are_never_success(
        world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, failure: str,
        disposition: str, message: str) -> None:
    source = tmp_path / "a.jpg"
    source.write_bytes(b"x")
    monkeypatch.setenv("IMSG_SIM_FAIL", failure)
    before = max_rowid(world)
    with pytest.raises(SendError, match=message) as caught:
        send(Target("chat_id", str(world.group)), text="hi", file=str(source),
             db_path=world.path)
    assert caught.value.disposition == disposition and not caught.value.retry_safe
    assert [body_text(row[2]) for row in rows_after(world, before)][:1] == ["hi"]


def test_ghost_row_reports_failure(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMSG_SIM_FAIL", "ghost-row")
    with pytest.raises(SendNotConfirmed, match=r"unjoined empty outgoing row .*any;\+; / any;-;"):
        send(Target("chat_id", str(world.group)), text="hi", db_path=world.path)


@ONE_SCHEMA
@pytest.mark.parametrize("failure", ["timeout", "hang-after-send"])
def test_timeout_is_still_in_flight(world: World, monkeypatch: pytest.MonkeyPatch,
                                    failure: str) -> None:
    monkeypatch.setenv("IMSG_SIM_FAIL", failure)
    with pytest.raises(SendTimeout, match=r"within 0\.5s.*may still send it") as caught:
        send(Target("chat_id", str(world.group)), text="hi", db_path=world.path, timeout_s=0.5)
    assert caught.value.disposition == "still_in_flight"


@ONE_SCHEMA
def test_accepted_but_no_row_is_not_confirmed(world: World, recorder: Recorder) -> None:
    with pytest.raises(SendNotConfirmed, match=r"no matching outgoing row .* 0\.3s") as caught:
        send(parse_target(ALICE), text="hi", db_path=world.path, verify_timeout_s=0.3)
    assert recorder.ran and caught.value.disposition == "may_have_completed"


@ONE_SCHEMA
def test_attachment_only_send_waits_for_its_file_row(world: World, recorder: Recorder,
                                                     tmp_path: Path) -> None:
    source = tmp_path / "a.jpg"
    source.write_bytes(b"x")
    with pytest.raises(SendNotConfirmed, match="no matching outgoing row") as caught:
        send(Target("chat_id", str(world.group)), file=str(source), db_path=world.path,
             verify_timeout_s=0.3)
    assert caught.value.disposition == "may_have_completed"


@ONE_SCHEMA
def test_a_row_arriving_after_two_seconds_is_still_confirmed(world: World,
                                                             recorder: Recorder) -> None:
    # The window is 8 s, as the Swift tool waits: Messages under load is slow to write.
    def write_late() -> None:
        time.sleep(2.5)
        writer = SimDB(world.path)
        writer.send(world.group, "slow day")
        writer.close()

    thread = threading.Thread(target=write_late)
    thread.start()
    result = send(Target("chat_id", str(world.group)), text="slow day", db_path=world.path)
    thread.join()
    assert world.db.text_of(result.id) == "slow day"


@ONE_SCHEMA
def test_a_direct_guid_without_a_chat_reaches_its_handle(world: World, spy: Recorder) -> None:
    result = send(Target("chat_guid", "iMessage;-;+15555550170"), text="hi", db_path=world.path)
    assert spy.call()["argv"][3:] == ["buddy", "+15555550170", "iMessage", "hi", ""]
    assert result.chat_guid.endswith(";-;+15555550170")
    with pytest.raises(ChatNotFound):
        send(Target("chat_guid", "iMessage;+;chat000"), text="hi", db_path=world.path)


@ONE_SCHEMA
def test_shutdown_interrupts_a_send_in_flight(world: World, monkeypatch: pytest.MonkeyPatch,
                                              fresh_children: Registry) -> None:
    monkeypatch.setenv("IMSG_SIM_FAIL", "hang-after-send")  # Messages sent it, osascript hangs
    before = max_rowid(world)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(send, Target("chat_id", str(world.group)), text="hi",
                              db_path=world.path)
        deadline = time.monotonic() + 20
        while max_rowid(world) == before:
            assert time.monotonic() < deadline and not pending.done()
            time.sleep(0.02)
        assert fresh_children.terminate_all("imsg rpc is shutting down") == 1
        with pytest.raises(SendInterrupted, match="outcome is unknown") as caught:
            pending.result(timeout=20)
    assert caught.value.disposition == "still_in_flight" and caught.value.rpc_code == -32001


@ONE_SCHEMA
@pytest.mark.parametrize("timeout", [math.nan, math.inf, 0.0, -1.0, 1e300])
def test_timeouts_must_be_finite_and_positive(world: World, recorder: Recorder,
                                              timeout: float) -> None:
    with pytest.raises(InvalidInput, match="Invalid timeout"):
        send(Target("chat_id", str(world.group)), text="hi", db_path=world.path,
             timeout_s=timeout)
    assert not recorder.ran


@ONE_SCHEMA
@pytest.mark.parametrize("path", ["a\0b.jpg", "bad\ud800.jpg", "/dev/zero"])
def test_bad_file_paths_stop_before_messages(world: World, recorder: Recorder,
                                            path: str) -> None:
    with pytest.raises(InvalidInput):
        send(Target("chat_id", str(world.group)), file=path, db_path=world.path)
    assert not recorder.ran


def test_missing_database_fails_before_sending(tmp_path: Path, recorder: Recorder) -> None:
    with pytest.raises(DatabaseNotFound):
        send(parse_target(ALICE), text="hi", db_path=str(tmp_path / "none.db"))
    assert not recorder.ran


@ONE_SCHEMA
def test_concurrent_sends_from_threads(world: World) -> None:
    targets = [Target("chat_id", str(world.group)), Target("chat_id", str(world.alice)),
               parse_target("+15555550161"), parse_target(CAROL)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda t: send(t[1], text=f"parallel {t[0]}",
                                               db_path=world.path), enumerate(targets)))
    assert len({r.id for r in results}) == 4
    with ChatDB(world.path) as db:
        texts = {m.id: m.text for m, _ in db.messages_by_rowid([r.id for r in results])}
    assert [texts[r.id] for r in results] == [f"parallel {i}" for i in range(4)]


@ONE_SCHEMA
def test_sim_refuses_any_other_script(world: World) -> None:
    done = subprocess.run([os.environ["IMSG_OSASCRIPT"], "-l", "AppleScript", "-", "x"],
                          input=b'do shell script "touch imsg-pwned"', capture_output=True,
                          check=False)
    assert done.returncode == 2 and b"refusing a script" in done.stderr


@ONE_SCHEMA
def test_sim_database_is_a_real_sqlite_file(world: World) -> None:
    assert sqlite3.connect(world.path).execute("PRAGMA journal_mode").fetchone() == ("wal",)


@ONE_SCHEMA
def test_sim_reads_only_staged_files_like_messages(world: World, tmp_path: Path) -> None:
    outside = tmp_path / "desktop.jpg"
    outside.write_bytes(b"x")
    guid = world.db.conn.execute("SELECT guid FROM chat WHERE ROWID = ?",
                                 (world.group,)).fetchone()[0]
    with pytest.raises(SendError, match="error of type 25") as caught:
        applescript.send_to_chat(guid, text="", file=str(outside), timeout_s=10, what="x")
    assert caught.value.disposition == "may_have_completed"
    with pytest.raises(AttachmentError, match="-43"):
        applescript.send_to_chat("any;+;x", text="", file=str(tmp_path / "gone.jpg"),
                                 timeout_s=10, what="x")


@ONE_SCHEMA
@pytest.mark.parametrize(("args", "env", "message"), [
    (["-e", "x"], {}, b"expected: -l AppleScript -"),
    (["-l", "AppleScript", "-", "chat"], {}, b"takes 5 arguments, got 1"),
    (["-l", "AppleScript", "-", "chat", "g", "", "hi", ""], {"IMSG_SIM_FAIL": "bogus"},
     b"unknown IMSG_SIM_FAIL 'bogus'"),
    (["-l", "AppleScript", "-", "chat", "g", "", "hi", ""], {"IMSG_SIM_DB": ""},
     b"IMSG_SIM_DB must name"),
])
def test_sim_usage_errors(world: World, args: list[str], env: dict[str, str],
                          message: bytes) -> None:
    done = subprocess.run([os.environ["IMSG_OSASCRIPT"], *args], input=SEND_SCRIPT.encode(),
                          capture_output=True, env={**os.environ, **env}, check=False)
    assert done.returncode == 2 and message in done.stderr
