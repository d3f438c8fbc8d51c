"""What gateways and scripts written for the Swift ``imsg`` 0.15 rely on, pinned: OpenClaw's
probe sequence end to end, the runtime flags, the error texts they match, the result keys they
read. Each test names the reference item it holds us to; the wire schemas themselves are
checked in ``test_rpc_contract.py``. Deliberate differences are listed in the README
("Differences from the Swift imsg") and are pinned here as what they are."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from imsg.cli import COMMANDS, main
from imsg.sim.addressbook import SimAddressBook, fill_demo_contacts
from imsg.sim.demo import ALICE
from tests.bridge.conftest import World, make_world
from tests.rpc.harness import SIM_OSASCRIPT, Rpc, demo_db

BIN = Path(sys.executable).parent
IMSG = [str(BIN / "imsg")] if (BIN / "imsg").exists() else [sys.executable, "-m", "imsg"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("parity")


@pytest.fixture(scope="module")
def env(home: Path) -> dict[str, str]:
    """A demo chat.db with an AddressBook, the simulated osascript, and no bridge (an empty
    container, SIP unknown): what a Mac without the helper dylib looks like."""
    db = demo_db(home / "chat.db")
    contacts = str(home / "AddressBook")
    fill_demo_contacts(SimAddressBook.create_at(contacts))
    (home / "container").mkdir()
    return {**os.environ, "HOME": str(home), "IMSG_DB": db, "IMSG_SIM_DB": db,
            "IMSG_OSASCRIPT": SIM_OSASCRIPT, "IMSG_ADDRESSBOOK_DIR": contacts,
            "IMSG_BRIDGE_CONTAINER": str(home / "container"),
            "IMSG_CSRUTIL": str(home / "no-csrutil"), "IMSG_BRIDGE_DYLIB": ""}


def run(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*IMSG, *args], capture_output=True, text=True, timeout=60,
                          env={**env, **extra})


def cli(env: dict[str, str], *args: str, **extra: str) -> Any:
    """The command in this process (fast); stdout and stderr kept apart."""
    return CliRunner().invoke(main, list(args), prog_name="imsg", env={**env, **extra},
                              catch_exceptions=False)


def last_json(stdout: str) -> dict[str, Any]:
    """What OpenClaw parses: the last stdout line that is a JSON object."""
    found = None
    for line in stdout.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found = value
    assert found is not None, stdout
    return found


# --- §5.1 global behaviour ------------------------------------------------------------------

def test_no_arguments_is_help_on_stdout_and_exit_0(env: dict[str, str]) -> None:
    done = cli(env)
    assert done.exit_code == 0 and done.stdout.startswith("Usage: imsg") and not done.stderr


def test_unknown_command_names_itself_and_fails(env: dict[str, str]) -> None:
    """OpenClaw's probe and send-attachment fallback look for "unknown command"."""
    done = cli(env, "bogus")
    assert done.exit_code != 0 and not done.stdout
    assert done.stderr.startswith("imsg: Unknown command: bogus")
    assert "unknown command" in done.stderr.lower() and "chats" in done.stderr


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_anywhere_before_a_double_dash(env: dict[str, str], flag: str) -> None:
    for args in ([flag], ["chats", flag], ["send", "--to", ALICE, flag], ["rpc", flag]):
        done = cli(env, *args)
        assert done.exit_code == 0 and re.fullmatch(r"\S+\n", done.stdout), (args, done.stdout)
    # a value that looks like the flag is still a value
    assert cli(env, "search", "--query", flag, "--json").exit_code == 0


def test_imsg_version_is_one_value_everywhere(env: dict[str, str]) -> None:
    """--version, `status --json`, RPC status.version and capabilities.engine.version agree,
    also when IMSG_VERSION overrides the version."""
    for extra in ({}, {"IMSG_VERSION": "9.8.7"}):
        printed = cli(env, "--version", **extra).stdout.strip()
        status = last_json(cli(env, "status", "--json", **extra).stdout)
        server = Rpc("--db", env["IMSG_DB"], env={**env, **extra})
        try:
            snapshot = server.call("status")["result"]
        finally:
            server.finish()
        assert printed == status["version"] == snapshot["version"]
        assert status["capabilities"]["engine"]["version"] == printed
        assert snapshot["capabilities"]["engine"]["version"] == printed
        if extra:
            assert printed == "9.8.7"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_runtime_flags_are_accepted_by_every_command(env: dict[str, str], name: str) -> None:
    done = cli(env, name, "--json", "-j", "--json-output", "--jsonOutput", "-v", "--verbose",
               "--log-level", "debug", "--help")
    assert done.exit_code == 0, done.stderr


# --- §5.7 completions: the markers scripts and tests look for --------------------------------

@pytest.mark.parametrize(("shell", "marker"), [
    ("bash", "complete -F _imsg imsg"), ("zsh", "#compdef imsg"), ("fish", "complete -c imsg"),
    ("llm", "# imsg CLI Reference")])
def test_completion_markers(env: dict[str, str], shell: str, marker: str) -> None:
    done = cli(env, "completions", shell)
    assert done.exit_code == 0 and marker in done.stdout
    if shell in ("zsh", "llm"):
        assert done.stdout.startswith(marker)


# --- §5.9 bridge commands' flags and outputs (on the simulated helper) ------------------------

@pytest.fixture
def bridge(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[World, dict[str, str]]]:
    world = make_world(tmp_path)
    world.start()
    try:
        yield world, {**env, "IMSG_DB": world.db_path,
                      "IMSG_BRIDGE_CONTAINER": str(world.container.root)}
    finally:
        world.stop()


def events(world: World) -> list[str]:
    lines = world.container.events.read_text("utf-8").splitlines()
    return [json.loads(line)["event"] for line in lines]


def test_typing_takes_stop_with_a_value_and_reports_a_status(
        bridge: tuple[World, dict[str, str]]) -> None:
    """Swift's `typing --stop true|false` and its `{"status": …}` outputs."""
    world, env = bridge
    started = cli(env, "typing", "--to", ALICE, "--json")
    assert last_json(started.stdout)["status"] == "started"
    stopped = cli(env, "typing", "--to", ALICE, "--stop", "true", "--json")
    assert stopped.exit_code == 0, stopped.stderr
    assert last_json(stopped.stdout)["status"] == "stopped"
    assert cli(env, "typing", "--to", ALICE, "--stop", "--json").exit_code == 0
    again = last_json(cli(env, "typing", "--to", ALICE, "--stop", "false", "--json").stdout)
    assert again["status"] == "started" and again["typing"] is True
    timed = last_json(cli(env, "typing", "--to", ALICE, "--duration", "0.01s",
                          "--json").stdout)
    assert (timed["status"], timed["duration_s"]) == ("completed", "0.01")
    assert events(world)[:3] == ["started-typing", "stopped-typing", "stopped-typing"]


def test_read_reports_marked_as_read(bridge: tuple[World, dict[str, str]]) -> None:
    _, env = bridge
    done = last_json(cli(env, "read", "--to", ALICE, "--json").stdout)
    assert done["success"] is True and done["marked_as_read"] is True
    assert done["handle"] == f"iMessage;-;{ALICE}"
    assert cli(env, "read", "--handle", ALICE).stdout == f"marked as read: iMessage;-;{ALICE}\n"


def test_chat_mark_takes_exactly_one_of_read_and_unread(
        bridge: tuple[World, dict[str, str]]) -> None:
    world, env = bridge
    both = cli(env, "chat-mark", "--chat", world.alice_guid, "--read", "--unread")
    assert both.exit_code == 2 and "Invalid value for option: --unread" in both.stderr
    neither = cli(env, "chat-mark", "--chat", world.alice_guid)
    assert neither.exit_code == 2 and "Missing required option" in neither.stderr
    assert cli(env, "chat-mark", "--chat", world.alice_guid, "--unread").stdout == \
        "chat-mark: unread\n"


def test_whois_takes_an_explicit_type(bridge: tuple[World, dict[str, str]]) -> None:
    _, env = bridge
    done = last_json(cli(env, "whois", "--address", "bob@example.com", "--type", "email",
                         "--json").stdout)
    assert done["alias_type"] == "email" and done["destination"] == "mailto:bob@example.com"


# --- §7 OpenClaw's probe, end to end, as it runs it ------------------------------------------

STATUS_KEYS = ["version", "basic_features", "advanced_features", "typing_indicators",
               "read_receipts", "sip", "message", "bridge_version", "v2_ready", "selectors",
               "rpc_methods", "capabilities"]


def test_openclaw_probe_sequence(env: dict[str, str]) -> None:
    """rpc --help, status --json (the last JSON line), send-rich --help, then a fresh
    `imsg rpc --json --db P` answering chats.list {limit: 1}."""
    helped = run(env, "rpc", "--help")
    assert helped.returncode == 0 and "unknown command" not in helped.stdout.lower()

    status = run(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    report = last_json(status.stdout)
    assert list(report) == STATUS_KEYS  # no helper: no helper_version, no mismatch
    assert report["basic_features"] is True and report["sip"] in ("enabled", "disabled",
                                                                     "unknown")
    assert report["advanced_features"] is report["v2_ready"] is False  # privateApi: off
    assert report["typing_indicators"] is report["read_receipts"] is False
    assert report["bridge_version"] == 0 and report["selectors"] == {}
    assert isinstance(report["message"], str) and report["message"]
    methods = report["rpc_methods"]
    assert {"chats.list", "messages.history", "watch.subscribe", "watch.unsubscribe",
            "send", "typing", "read", "tapback"} <= set(methods)
    assert "send.tracked" not in methods  # only with clientMessageGuidReservation
    assert report["capabilities"] == {"engine": {"version": report["version"],
                                                 "commit": "unknown", "built_at": "unknown"},
                                      "features": {}}

    rich = run(env, "send-rich", "--help")
    assert rich.returncode == 0 and re.search(r"(^|\s)--file\b", rich.stdout)

    server = Rpc("--json", "--db", env["IMSG_DB"], env=env)  # OpenClaw's argv
    try:
        answer = server.call("chats.list", {"limit": 1})
        assert len(answer["result"]["chats"]) == 1
    finally:
        code, rest = server.finish()
    assert code == 0 and rest == []


def test_send_attachment_as_openclaw_runs_it(env: dict[str, str], home: Path) -> None:
    """`imsg group --chat-id N --json` for the guid, then `send-attachment --chat GUID --file F
    --transport auto --json`: the last JSON line carries success and the message's id."""
    guid = last_json(run(env, "group", "--chat-id", "1", "--json").stdout)["guid"]
    photo = home / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    done = run(env, "send-attachment", "--chat", guid, "--file", str(photo), "--transport",
               "auto", "--json")
    assert done.returncode == 0, done.stderr
    sent = last_json(done.stdout)
    assert sent["success"] is True and sent["transport"] == "applescript"
    assert isinstance(sent["id"], int) and sent["guid"] == sent["message_id"]
    assert sent["chat_guid"] == guid
    missing = run(env, "send-attachment", "--chat", guid, "--file", str(home / "none.jpg"),
                  "--transport", "auto", "--json")
    assert missing.returncode != 0 and last_json(missing.stdout)["success"] is False


def test_cli_send_json_carries_the_ids(env: dict[str, str]) -> None:
    """§4.6: `{"status":"sent"}` plus `id`, `guid`, `message_id` when observed."""
    done = cli(env, "send", "--to", ALICE, "--text", "parity", "--json")
    assert done.exit_code == 0, done.stderr
    sent = last_json(done.stdout)
    assert sent["status"] == "sent" and isinstance(sent["id"], int)
    assert sent["guid"] == sent["message_id"] and sent["guid"]
    assert cli(env, "send", "--to", ALICE, "--text", "parity").stdout == "sent\n"


# --- §5.1 usage errors: Swift's words, on stderr, imsg's exit codes -----------------------------

@pytest.mark.parametrize(("args", "text", "code"), [
    (["send", "--text", "hi"], "Missing required option: --to", 2),
    (["send", "--to", ALICE], "Missing required option: --text or file", 2),
    (["send", "--to", ALICE, "--text", "hi", "--service", "carrier"],
     "Invalid service: carrier", 2),
    (["send", "--to", ALICE, "--chat-id", "1", "--text", "hi"],
     "Invalid value for option: --to", 2),
    (["history", "--chat-id", "1", "--start", "bad-date"], "Invalid ISO8601 date: bad-date", 2),
    (["history", "--chat-id", "99"], "Chat not found: 99", 3),
    (["group", "--chat-id", "99"], "Chat not found: 99", 3),
    (["history", "--chat-id", "0"], "Invalid value for option: --chat-id", 2),
    (["chats", "--limit", "abc"], "Invalid value for option: --limit", 2),
    (["watch", "--debounce", "2x"], "Invalid value for option: --debounce", 2),
    (["react", "--chat-id", "1", "--reaction", "wave"], "Invalid reaction: 'wave'", 2),
    (["completions", "tcsh"], "Unknown shell: tcsh", 2),
])
def test_usage_errors(env: dict[str, str], args: list[str], text: str, code: int) -> None:
    done = cli(env, *args)
    assert done.exit_code == code and not done.stdout
    assert done.stderr.startswith(f"imsg: {text}") and done.stderr.count("\n") == 1


def test_compound_durations_and_space_separated_participants(env: dict[str, str]) -> None:
    from imsg.cli.options import duration_seconds

    assert duration_seconds("2s500ms") == 2.5 and duration_seconds("1m30s") == 90.0
    assert duration_seconds("0.5") == 0.5 and duration_seconds("2x") is None
    done = cli(env, "history", "--chat-id", "3", "--participants", "bob@example.com",
               "+15550000000,+15550000001", "--json")
    assert done.exit_code == 0, done.stderr
    senders = {json.loads(line)["sender"] for line in done.stdout.splitlines()}
    assert senders == {"bob@example.com"}


def test_group_events_have_empty_text(env: dict[str, str]) -> None:
    """A gateway that drops empty bodies never hands an agent Messages' system sentence."""
    lines = cli(env, "history", "--chat-id", "3", "--json").stdout.splitlines()
    events = [m for m in map(json.loads, lines) if "group_event" in m]
    assert events and all(m["text"] == "" and m["group_event"]["description"] for m in events)


# --- §1 protocol v1 ----------------------------------------------------------------------------

class Calls:
    """One `imsg rpc` child and an id counter."""

    def __init__(self, server: Rpc) -> None:
        self.server = server
        self.next_id = 0

    def answer(self, method: str, params: Any = None) -> dict[str, Any]:
        """The reply to one request (notifications that come first are passed over)."""
        self.next_id += 1
        reply: dict[str, Any] = self.server.call(method, params, rid=self.next_id)
        while "id" not in reply:
            reply = self.server.recv()
        assert reply["id"] == self.next_id, reply
        return reply

    def result(self, method: str, params: Any = None) -> Any:
        reply = self.answer(method, params)
        assert "result" in reply, reply
        return reply["result"]

    def error(self, method: str, params: Any = None) -> dict[str, Any]:
        reply = self.answer(method, params)
        assert "error" in reply, reply
        return reply["error"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def rpc(env: dict[str, str]) -> Iterator[Calls]:
    server = Rpc("--json", "--db", env["IMSG_DB"], env=env)
    yield Calls(server)
    server.kill()


def test_framing_errors(rpc: Calls) -> None:
    """§1.2: every framing failure is answered (with the id when it could be read); a
    notification that passes framing never is."""
    cases: list[tuple[bytes, Any, int, str]] = [
        (b"\xff\xfe\n", None, -32700, "invalid utf8"),
        (b"3\n", None, -32600, "request must be an object"),
        (b'{"jsonrpc":"2.0","id":true,"method":"status"}\n', None, -32600,
         "id must be a string, number, or null"),
        (b'{"id":"a","method":"status"}\n', "a", -32600, "jsonrpc must be exactly 2.0"),
        (b'{"jsonrpc":"2.0","id":2,"method":""}\n', 2, -32600, "method is required"),
        (b'{"jsonrpc":"2.0","id":3,"method":"status","params":[]}\n', 3, -32602,
         "params must be an object when present"),
        (b'{"jsonrpc":"2.0","id":4,"method":"nope"}\n', 4, -32601, "nope"),
    ]
    for line, rid, code, data in cases:
        rpc.server.write(line)
        reply = rpc.server.recv()
        assert reply["id"] == rid and reply["error"]["code"] == code
        assert reply["error"]["data"] == data
    rpc.server.write(b"{bad json\n")
    assert rpc.server.recv()["error"]["message"] == "Parse error"
    rpc.server.write(b'{"jsonrpc":"2.0","method":"nope"}\n'
                     b'{"jsonrpc":"2.0","method":"chats.list","params":{"bogus":1}}\n')
    assert rpc.result("status")["protocol_version"] == 1  # nothing came before it
    null_id = rpc.server.call("nope", {}, rid=None)
    assert null_id["id"] is None and null_id["error"]["code"] == -32601


@pytest.mark.parametrize(("method", "params", "data"), [
    ("chats.list", {"bogus": 1, "aaa": 2}, "unknown chats.list param: aaa"),
    ("chats.list", {"chatId": 1}, "unknown chats.list param: chatId"),
    ("chats.list", {"unread_only": True, "unreadOnly": False},
     "use only one of unread_only, unreadOnly"),
    ("chats.list", {"limit": None}, "limit must not be null"),
    ("chats.list", {"limit": "1"}, "limit must be an integer"),
    ("chats.list", {"limit": 1.0}, "limit must be an integer"),
    ("chats.list", {"limit": True}, "limit must be an integer"),
    ("chats.list", {"limit": 2**63}, "limit must be an integer"),
    ("chats.list", {"limit": 0}, "limit must be a positive integer"),
    ("chats.list", {"unreadOnly": "true"}, "unread_only must be a boolean"),
    ("messages.history", {}, "chat_id is required"),
    ("messages.history", {"chat_id": 0}, "chat_id must be a positive integer"),
    ("messages.history", {"chat_id": 1, "participants": "a,b"},
     "participants must be an array of strings"),
    ("messages.history", {"chat_id": 99}, "Chat not found: 99"),
    ("messages.after", {}, "since_rowid must be an integer"),
    ("messages.after", {"since_rowid": 0, "limit": 501},
     "limit must be an integer between 1 and 500"),
    ("watch.subscribe", {"debounce_ms": -1}, "debounce_ms must be a non-negative integer"),
    ("watch.subscribe", {"debounceMs": 1, "debounce_ms": 1},
     "use only one of debounce_ms, debounceMs"),
    ("watch.subscribe", {"bufferLimit": 4097}, "buffer_limit must be an integer between 1 and "
                                               "4096"),
    ("watch.unsubscribe", {}, "subscription is required"),
    ("initialize", {"protocol_version": 2},
     "unsupported protocol_version 2; supported version is 1"),
    ("status", {"verbose": True}, "unknown status param: verbose"),
    ("message.send_status", {"guid": " "}, "guid is required"),
    ("messages.stats", {"chat_id": 99}, "Chat not found: 99"),
    ("send", {"to": ALICE}, "text or file is required"),
    ("send", {"to": ALICE, "chat_id": 1, "text": "x"},
     "use to or exactly one chat selector; not both"),
    ("send", {"chat_id": 1, "chat_guid": "g", "text": "x"},
     "exactly one of chat_id, chat_identifier, or chat_guid is required"),
    ("send", {"chat_id": -1, "text": "x"}, "chat_id must be a positive integer"),
    ("send", {"chat_identifier": "", "text": "x"}, "chat_identifier must be a non-empty string"),
    ("send", {"chat_guid": "", "text": "x"}, "chat_guid must be a non-empty string"),
    ("send", {"to": "", "text": "x"}, "to must be a non-empty string"),
    ("send", {"to": ALICE, "text": "x", "reply_to": "G"},
     "reply_to requires bridge transport; AppleScript fallback cannot send threaded replies"),
    ("send", {"to": ALICE, "text": "x", "replyTo": "G", "message_guid": "G"},
     "use only one of replyTo, message_guid"),
    ("send", {"to": ALICE, "text": "x", "attempt_id": "x"},
     "attempt_id is only supported by send.tracked"),
    ("send", {"to": "+15550000000", "text": "x", "transport": "bridge"},
     "bridge transport requires an existing chat target"),
    ("send", {"to": ALICE, "text": "x", "allowSMSFallback": 1},
     "allow_sms_fallback must be a boolean"),
    ("send", {"to": ALICE, "text": "x", "formatting": "bold"},
     "text_formatting must be an array of objects"),
    ("tapback", {"chat_guid": "g", "reaction": "like"}, "message_id or message_guid is required"),
])
def test_invalid_params(rpc: Calls, method: str, params: dict[str, Any], data: str) -> None:
    """§1.3, §4.1: -32602 with the Swift tool's text, before anything is read or sent."""
    error = rpc.error(method, params)
    assert (error["code"], error["message"], error["data"]) == (-32602, "Invalid params", data)


def test_invalid_service_and_transport_begin_with_swifts_words(rpc: Calls) -> None:
    for key, text in (("service", "invalid service"), ("transport", "invalid transport")):
        error = rpc.error("send", {"to": ALICE, "text": "x", key: "IMESSAGE"})
        assert error["code"] == -32602 and error["data"].startswith(text)
    error = rpc.error("messages.history", {"chat_id": 1, "start": "bad"})
    assert error["code"] == -32602 and error["data"].startswith("Invalid ISO8601 date: bad")


def test_handles_check_without_a_helper_is_internal_error(rpc: Calls) -> None:
    """§8 #5, reproduced: -32603, not -32003."""
    error = rpc.error("handles.check", {"address": ALICE})
    assert error == {"code": -32603, "message": "Internal error",
                     "data": "handles.check requires bridge transport (Messages.app must be "
                             "injected)"}


def test_bridge_methods_without_a_helper(rpc: Calls) -> None:
    """§6.10: a mutation fails before dispatch (retry-safe, nothing published); the event
    stream is -32003."""
    error = rpc.error("send.rich", {"chat_guid": f"iMessage;-;{ALICE}", "text": "x"})
    assert (error["code"], error["message"]) == (-32603, "Delivery failed before dispatch")
    assert error["data"] == {
        "retry_safe": True, "disposition": "not_started", "transport": "bridge_v2",
        "operation": "send-message",
        "detail": "The bridge ready lock is absent. Run imsg launch explicitly before retrying."}
    events = rpc.error("bridge.events.subscribe", {})
    assert (events["code"], events["message"]) == (-32003, "Bridge events unavailable")
    assert events["data"]["retryable"] is True and events["data"]["detail"]


def test_status_and_initialize(rpc: Calls) -> None:
    """§1.7: Swift's keys (plus imsg's own `server`), protocol 1, the DB features, and without
    a helper only the methods that run without one."""
    snapshot = rpc.result("status")
    assert list(snapshot) == ["version", "protocol_version", "database", "bridge", "contacts",
                              "methods", "supported_methods", "capabilities", "server"]
    assert snapshot["protocol_version"] == 1
    assert snapshot["database"]["ready"] is True and set(snapshot["database"]["features"]) == {
        "unread_state", "scheduled_messages", "reactions", "reply_context", "routing_metadata",
        "balloon_payloads"}
    assert snapshot["bridge"] == {
        "ready": False,
        "error": "The bridge is not started. Run imsg launch explicitly before using bridge "
                 "methods."}
    supported = snapshot["supported_methods"]
    assert supported[:4] == ["initialize", "status", "watch.unsubscribe", "chats.list"]
    assert snapshot["methods"] == [m for m in supported if m in snapshot["methods"]]
    assert {"messages.after", "messages.search", "message.send_status", "send"} <= set(
        snapshot["methods"])
    assert not {"send.rich", "tapback", "typing", "read", "send.tracked"} & set(
        snapshot["methods"])
    assert rpc.result("initialize", {"protocol_version": 1}).keys() == snapshot.keys()
    assert rpc.result("initialize").keys() == snapshot.keys()


def test_chats_list_items_are_the_full_chat(rpc: Calls) -> None:
    """§2.1/§3.1: `display_name` keeps a stored empty title, `name` falls back, and
    `unread_count`, `account_*`, `contact_name` are there."""
    chats = {c["id"]: c for c in rpc.result("chats.list", {"limit": 1000})["chats"]}
    alice = chats[1]
    assert (alice["name"], alice["display_name"]) == (ALICE, "")
    assert alice["contact_name"] == "Alice Appleseed" and alice["unread_count"] == 0
    assert {"account_id", "account_login", "last_addressed_handle", "guid"} <= set(alice)
    assert "contact_name" not in chats[3] and chats[3]["is_group"] is True
    assert rpc.result("chats.list", {"unreadOnly": True}) == {"chats": []}
    group = rpc.result("chats.get", {"chat_id": 1})
    assert "chats" not in group and group["name"] == "" and group["guid"] == alice["guid"]


def test_send_result_keys(rpc: Calls) -> None:
    """§4.2 step 6, §7.3: the id is readable as message_id, id or guid; `service` in
    Messages' spelling."""
    sent = rpc.result("send", {"to": ALICE, "text": "parity rpc", "reply_to": ""})
    assert sent["ok"] is True and sent["transport"] == "applescript"
    assert isinstance(sent["id"], int) and sent["guid"] == sent["message_id"]
    assert (sent["chat_guid"], sent["service"]) == (f"iMessage;-;{ALICE}", "iMessage")
    sms = rpc.result("send", {"to": "+15550001111", "text": "over sms", "service": "sms"})
    assert sms["service"] == "SMS" and sms["chat_guid"].startswith("SMS;-;")
    state = rpc.result("message.send_status", {"guid": sent["guid"]})
    assert state["ok"] is True and state["send_state"] in ("sent", "delivered")
    unknown = rpc.result("message.send_status", {"guid": "no-such-guid"})
    assert (unknown["send_state"], unknown["service"], unknown["status_fields"]) == (
        "pending", None, None)


def test_paging_and_watch_shapes(rpc: Calls) -> None:
    """§2.4/§2.5: `{messages, next_rowid, has_more}`; `{subscription, buffer_limit}`; live
    messages carry `cursor`, history never does."""
    page = rpc.result("messages.after", {"since_rowid": 0, "limit": 2})
    assert list(page) == ["messages", "next_rowid", "has_more"]
    assert len(page["messages"]) == 2 and page["has_more"] is True
    assert all("cursor" not in m for m in page["messages"])
    sub = rpc.result("watch.subscribe", {"since_rowid": page["next_rowid"], "bufferLimit": 8,
                                         "debounce_ms": 0})
    assert list(sub) == ["subscription", "buffer_limit"] and sub["buffer_limit"] == 8
    note = rpc.server.recv()
    assert note["method"] == "message" and note["params"]["subscription"] == sub["subscription"]
    assert isinstance(note["params"]["message"]["cursor"], int)
    assert rpc.result("watch.unsubscribe", {"subscription": sub["subscription"]}) == {"ok": True}
    assert rpc.result("watch.unsubscribe", {"subscription": 999}) == {"ok": True}


def test_delivery_failures_carry_the_delivery_object(env: dict[str, str]) -> None:
    """§1.4: before dispatch -32603 (retry-safe), after it -32001; `data` is the object."""
    for failure, code, message, disposition in (
            ("not-running", -32603, "Delivery failed before dispatch", "not_started"),
            ("send-error", -32001, "Delivery outcome unknown", "may_have_completed")):
        server = Rpc("--db", env["IMSG_DB"], env={**env, "IMSG_SIM_FAIL": failure})
        try:
            error = Calls(server).error("send", {"chat_id": 3, "text": "x"})
        finally:
            server.kill()
        assert (error["code"], error["message"]) == (code, message)
        data = error["data"]
        assert list(data) == ["retry_safe", "disposition", "transport", "operation", "detail"]
        assert data["retry_safe"] is (disposition == "not_started")
        assert (data["disposition"], data["transport"]) == (disposition, "applescript")


def test_subscription_cap(env: dict[str, str]) -> None:
    """§1.5: 64 subscriptions per connection; the 65th is -32000."""
    server = Rpc("--db", env["IMSG_DB"], env=env)
    calls = Calls(server)
    try:
        ids = [calls.result("watch.subscribe")["subscription"] for _ in range(64)]
        assert ids == list(range(1, 65))
        assert calls.error("watch.subscribe") == {"code": -32000, "message": "Server busy",
                                                  "data": "subscription limit exceeded"}
    finally:
        code, _ = server.finish()
    assert code == 0


def test_database_unavailable(env: dict[str, str], home: Path) -> None:
    """§1.6: the server starts; status says why; DB methods answer -32002 with
    `{path, detail, retryable}`; bad params are still -32602 first."""
    missing = str(home / "missing" / "chat.db")
    server = Rpc("--json", "--db", missing, env=env)
    calls = Calls(server)
    try:
        snapshot = calls.result("status")
        assert snapshot["database"] == {
            "path": missing, "ready": False,
            "error": "The configured Messages database does not exist. Create or copy chat.db "
                     "at this path, then retry."}
        assert snapshot["methods"] == ["initialize", "status", "watch.unsubscribe"]
        for method, params in (("chats.list", {}), ("messages.after", {"since_rowid": 0}),
                               ("watch.subscribe", {})):
            error = calls.error(method, params)
            assert (error["code"], error["message"]) == (-32002, "Database unavailable")
            assert {"path": missing, "retryable": True}.items() <= error["data"].items()
            assert error["data"]["detail"] == snapshot["database"]["error"]
        assert calls.error("chats.list", {"bogus": 1})["code"] == -32602
    finally:
        code, _ = server.finish()
    assert code == 0
