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
