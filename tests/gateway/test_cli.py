"""``imsg gateway check|status|send`` and ``imsg pairing list|approve|deny``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from imsg.cli import main
from imsg.gateway.state import State
from tests.gateway.kit import FAST, make_fake, message, write_config


def imsg(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def fake_setup(tmp_path: Path) -> dict[str, Any]:
    fake = make_fake(tmp_path)
    fake.add(message(1, "old"))
    config = write_config(tmp_path / "bot.toml", {
        "cliPath": fake.cli, "dbPath": fake.db, "dmPolicy": "pairing",
        "allowFrom": ["+15550001111"], "textChunkLimit": 12, **FAST})
    return {"fake": fake, "config": str(config), "state": str(tmp_path / "state")}


def test_commands_are_registered_with_help() -> None:
    listing = imsg("--help").output
    assert "gateway" in listing and "pairing" in listing
    for args in (["gateway", "--help"], ["gateway", "run", "--help"],
                 ["gateway", "check", "--help"], ["gateway", "status", "--help"],
                 ["gateway", "send", "--help"], ["pairing", "--help"],
                 ["pairing", "list", "--help"], ["pairing", "approve", "--help"],
                 ["pairing", "deny", "--help"]):
        result = imsg(*args)
        assert result.exit_code == 0 and "Example:" in result.output, args


def test_check_lists_each_problem_with_its_key_path(tmp_path: Path) -> None:
    path = write_config(tmp_path / "bad.toml", {"dmPolicy": "open", "cliPath": "imsg;x",
                                                "typo": 1})
    result = imsg("gateway", "check", "--config", str(path))
    assert result.exit_code == 23
    assert result.output.splitlines() == [
        "imessage.cliPath: must be a plain executable path (no shell metacharacters, quotes "
        "or control characters); put arguments in a wrapper script",
        "imessage.typo: unknown key",
        'imessage.dmPolicy: open requires "*" in allowFrom',
        "warning: imessage.groupPolicy: defaults to allowlist and no groupAllowFrom/allowFrom "
        "entry is set: every group message will be dropped"]
    as_json = json.loads(imsg("gateway", "check", "--config", str(path), "--json").output)
    assert as_json["ok"] is False
    assert [p["path"] for p in as_json["problems"] if p["severity"] == "error"] == [
        "imessage.cliPath", "imessage.typo", "imessage.dmPolicy"]


def test_check_prints_the_effective_config(fake_setup: dict[str, Any]) -> None:
    result = imsg("gateway", "check", "--config", fake_setup["config"], "--json",
                  env={"IMSG_STATE_DIR": "/srv/bot-state"})
    assert result.exit_code == 0
    report = json.loads(result.output)
    account = report["accounts"][0]
    assert (report["ok"], report["default_account"]) == (True, "default")
    assert report["state_dir"] == "/srv/bot-state"
    assert (account["dmPolicy"], account["groupPolicy"], account["textChunkLimit"]) == \
        ("pairing", "allowlist", 12)
    text = imsg("gateway", "check", "--config", fake_setup["config"]).output
    assert text.splitlines()[1] == "[default]" and '  dmPolicy = "pairing"' in text


def test_status_reports_probe_cursor_pairing_and_last_error(
        fake_setup: dict[str, Any]) -> None:
    state = State(fake_setup["state"])
    state.set_cursor("default", 41)
    request, _ = state.request_pairing("default", "+15559998888", 3)
    state.record_error("default", "imsg rpc exited (code 1)")
    state.close()
    result = imsg("gateway", "status", "--config", fake_setup["config"], "--state-dir",
                  fake_setup["state"], "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["child"]["ok"] and report["child"]["probe"] == "initialize"
    assert report["cursor"] == 41 and report["last_error"] == "imsg rpc exited (code 1)"
    assert request is not None and report["pairing"][0]["code"] == request.code
    text = imsg("gateway", "status", "--config", fake_setup["config"], "--state-dir",
                fake_setup["state"]).output
    assert "child: ok (initialize, version fake, protocol 1, bridge not ready)" in text
    assert "cursor: 41" in text and request.code in text


def test_status_with_a_broken_child(tmp_path: Path) -> None:
    fake = make_fake(tmp_path, {"exit_on": "initialize"})
    config = write_config(tmp_path / "b.toml", {"cliPath": fake.cli, "dbPath": fake.db,
                                                "allowFrom": ["+1"], **FAST})
    report = json.loads(imsg("gateway", "status", "--config", str(config), "--state-dir",
                             str(tmp_path / "s"), "--json").output)
    assert report["child"] == {"ok": False, "error": "imsg rpc [default] exited (code 3)"}


def test_send_chunks_and_records_the_echo(fake_setup: dict[str, Any]) -> None:
    result = imsg("gateway", "send", "--config", fake_setup["config"], "--state-dir",
                  fake_setup["state"], "chat_id:3", "--text", "backup done, all fine", "--json")
    assert result.exit_code == 0, result.output
    assert [s["text"] for s in fake_setup["fake"].sends()] == ["backup done,", "all fine"]
    assert [json.loads(line)["ok"] for line in result.output.splitlines()] == [True, True]
    state = State(fake_setup["state"])
    assert [s.text for s in state.sends_after("default", 0)] == ["backup done,", "all fine"]


@pytest.mark.parametrize("args,code,text", [
    (["chat_id:abc", "--text", "x"], 2, "Invalid chat id"),
    (["chat_id:3"], 2, "Missing required option: --text or --file"),
    (["chat_id:3", "--text", "x", "--account", "ghost"], 23, "no account 'ghost'"),
])
def test_send_usage_errors(fake_setup: dict[str, Any], args: list[str], code: int,
                           text: str) -> None:
    result = imsg("gateway", "send", "--config", fake_setup["config"], "--state-dir",
                  fake_setup["state"], *args)
    assert result.exit_code == code and text in result.output
    assert fake_setup["fake"].sends() == []


def test_send_with_unknown_outcome_exits_16_and_is_not_retried(tmp_path: Path) -> None:
    fake = make_fake(tmp_path, {"send_error": {"code": -32001, "message":
                                               "Delivery outcome unknown",
                                               "data": {"disposition": "may_have_completed"}}})
    config = write_config(tmp_path / "b.toml", {"cliPath": fake.cli, "dbPath": fake.db,
                                                "allowFrom": ["+1"], **FAST})
    result = imsg("gateway", "send", "--config", str(config), "--state-dir",
                  str(tmp_path / "s"), "+15550001111", "--text", "alert")
    assert result.exit_code == 16 and "outcome unknown, not retried" in result.output
    assert len(fake.sends()) == 1


def test_pairing_list_approve_deny(fake_setup: dict[str, Any], tmp_path: Path) -> None:
    state_dir = fake_setup["state"]
    state = State(state_dir)
    first, _ = state.request_pairing("default", "+15559998888", 3)
    second, _ = state.request_pairing("default", "+15559997777", None)
    state.close()
    assert first is not None and second is not None
    listed = imsg("pairing", "list", "--state-dir", state_dir, "--json").output.splitlines()
    assert [json.loads(line)["code"] for line in listed] == [first.code, second.code]
    text = imsg("pairing", "list", "--state-dir", state_dir).output
    assert first.code in text and "+15559998888" in text
    approved = imsg("pairing", "approve", first.code.lower(), "--state-dir", state_dir)
    assert approved.exit_code == 0
    assert approved.output == "approved +15559998888 (account default)\n"
    denied = imsg("pairing", "deny", second.code, "--json", env={"IMSG_STATE_DIR": state_dir})
    assert json.loads(denied.output)["denied"] is True
    assert imsg("pairing", "list", "--state-dir", state_dir).output == \
        "no pending pairing requests\n"
    missing = imsg("pairing", "approve", "ZZZZZZZZ", "--state-dir", state_dir)
    assert missing.exit_code == 24
    assert "No pending pairing request found for code: ZZZZZZZZ" in missing.output


def test_pairing_approve_notify(fake_setup: dict[str, Any]) -> None:
    state = State(fake_setup["state"])
    request, _ = state.request_pairing("default", "+15559998888", 3)
    state.close()
    assert request is not None
    no_config = imsg("pairing", "approve", request.code, "--notify", "--state-dir",
                     fake_setup["state"])
    assert no_config.exit_code == 2 and "Missing required option: --config" in no_config.output
    result = imsg("pairing", "approve", request.code, "--notify", "--config",
                  fake_setup["config"], "--state-dir", fake_setup["state"])
    assert result.exit_code == 0 and "notified" in result.output
    assert fake_setup["fake"].sends()[0]["chat_id"] == 3
    assert "access approved" in " ".join(s["text"] for s in fake_setup["fake"].sends())
