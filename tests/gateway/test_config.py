"""Configuration: strict validation with key paths, defaults, accounts, OpenClaw JSON5 files;
handle normalization and allowlists; outbound target parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imsg.errors import ConfigInvalid, InvalidTarget
from imsg.gateway.config import KEYS, load_config
from imsg.gateway.delivery import send_params
from imsg.gateway.handles import AllowList, entry_problem, normalize_handle
from tests.gateway.kit import account, write_config

README = Path(__file__).parents[2] / "README.md"


def problems(tmp_path: Path, section: dict[str, Any], **kw: Any) -> list[str]:
    path = write_config(tmp_path / "c.toml", section)
    try:
        load_config(str(path), **kw)
    except ConfigInvalid as err:
        return err.lines
    return []


@pytest.mark.parametrize("section,expected", [
    ({"bogus": 1}, "imessage.bogus: unknown key"),
    ({"dmPolicy": "sometimes"}, "imessage.dmPolicy: must be one of pairing, allowlist, open, "
                                "disabled"),
    ({"textChunkLimit": "4000"}, "imessage.textChunkLimit: must be an integer"),
    ({"textChunkLimit": 0}, "imessage.textChunkLimit: must be at least 1"),
    ({"includeAttachments": "yes"}, "imessage.includeAttachments: must be true or false"),
    ({"allowFrom": "+1555"}, "imessage.allowFrom: must be a list of strings or numbers"),
    ({"dmPolicy": "open"}, 'imessage.dmPolicy: open requires "*" in allowFrom'),
    ({"dmPolicy": "allowlist", "allowFrom": []},
     "imessage.dmPolicy: allowlist requires at least one allowFrom"),
    ({"groupPolicy": "allowlist", "allowFrom": []},
     "imessage.groupPolicy: allowlist requires at least one groupAllowFrom"),
    ({"cliPath": "imsg; rm -rf /"}, "imessage.cliPath: must be a plain executable path"),
    ({"cliPath": "imsg\x00"}, "imessage.cliPath: must be a plain executable path"),
    ({"remoteHost": "-oProxyCommand=x"}, "imessage.remoteHost: must be host or user@host"),
    ({"remoteHost": "a@b@c"}, "imessage.remoteHost: must be host or user@host"),
    ({"attachmentRoots": ["Library/Messages"]},
     "imessage.attachmentRoots[0]: must be an absolute path pattern"),
    ({"remoteAttachmentRoots": ["/Users/../etc"]},
     "imessage.remoteAttachmentRoots[0]: must not contain .."),
    ({"allowFrom": ["chat_id:abc"]}, "imessage.allowFrom[0]: Invalid chat_id: chat_id:abc"),
    ({"allowFrom": ["chat_identifier:"]},
     "imessage.allowFrom[0]: Invalid chat_identifier entry"),
    ({"mentionPatterns": ["(unclosed"]}, "imessage.mentionPatterns[0]: not a valid regex"),
    ({"groups": {"iMessage;+;chat123": {}}}, 'imessage.groups."iMessage;+;chat123": not a '
                                             "chat id (it looks like a chat GUID"),
    ({"groups": {"5": {"requireMention": "no"}}},
     "imessage.groups.5.requireMention: must be true or false"),
    ({"groups": {"5": {"mention": True}}}, "imessage.groups.5.mention: unknown key"),
    ({"handler": {"command": "python3 bot.py"}},
     "imessage.handler.command: use a list of arguments"),
    ({"handler": {"command": ["a"], "webhook": "http://x"}},
     "imessage.handler: set exactly one of command, webhook, python"),
    ({"handler": {"webhook": "ftp://x"}}, "imessage.handler.webhook: must be an http"),
    ({"handler": {"python": "no function"}}, "imessage.handler.python: must be module:function"),
    ({"region": "XX"}, "imessage.region: Invalid region"),
    ({"accounts": {"work": {"dmPolicy": "open"}}},
     'imessage.accounts.work.dmPolicy: open requires "*" in allowFrom'),
    ({"accounts": {"work": {"nope": 1}}}, "imessage.accounts.work.nope: unknown key"),
    ({"defaultAccount": "ghost", "accounts": {"a": {}}},
     "imessage.defaultAccount: no account 'ghost'"),
])
def test_problem_lines_name_the_key_path(tmp_path: Path, section: dict[str, Any],
                                         expected: str) -> None:
    found = problems(tmp_path, {"allowFrom": ["+15550001111"], **section})
    assert any(line.startswith(expected) for line in found), found


def test_handler_required_only_to_run(tmp_path: Path) -> None:
    assert problems(tmp_path, {"allowFrom": ["+1555"]}) == []
    assert problems(tmp_path, {"allowFrom": ["+1555"]}, require_handler=True) == [
        "imessage.handler: no handler: set command, webhook or python"]


def test_defaults_when_the_section_exists(tmp_path: Path) -> None:
    config = account(tmp_path, allowFrom=["+15550001111"])
    assert (config.dm_policy, config.group_policy, config.cli_path) == \
        ("pairing", "allowlist", "imsg")
    assert config.text_chunk_limit == 4000 and config.media_max_bytes == 16 * 1024 * 1024
    assert config.group_allow_from == ("+15550001111",)  # falls back to allowFrom
    assert config.argv() == ["imsg", "rpc"]


def test_open_with_wildcard_and_cli_path_with_spaces_accepted(tmp_path: Path) -> None:
    config = account(tmp_path, dmPolicy="open", allowFrom=["*"],
                     cliPath="/Applications/Imsg Tools/imsg", dbPath="/tmp/x/chat.db")
    assert config.argv() == ["/Applications/Imsg Tools/imsg", "rpc", "--db", "/tmp/x/chat.db"]


def test_defaulted_group_allowlist_with_no_entries_is_a_warning(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", {"dmPolicy": "pairing"})
    config = load_config(str(path))
    assert [str(p) for p in config.problems] == [
        "warning: imessage.groupPolicy: defaults to allowlist and no groupAllowFrom/allowFrom "
        "entry is set: every group message will be dropped"]


def test_accounts_merge_over_the_base_and_default_account(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", {
        "allowFrom": ["+15550001111"], "textChunkLimit": 100, "defaultAccount": "work",
        "accounts": {"work": {"cliPath": "/opt/imsg-work"},
                     "home": {"textChunkLimit": 50, "enabled": False}}})
    config = load_config(str(path))
    assert [a.id for a in config.accounts] == ["home", "work"]
    assert config.account(None).id == "work"
    work, home = config.account("work"), config.account("home")
    assert (work.cli_path, work.text_chunk_limit) == ("/opt/imsg-work", 100)
    assert (home.text_chunk_limit, home.enabled) == (50, False)
    assert [a.id for a in config.enabled_accounts] == ["work"]
    with pytest.raises(ConfigInvalid, match="no account 'ghost'"):
        config.account("ghost")


def test_channel_enabled_false_disables_every_account(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", {"enabled": False, "accounts": {"a": {}}})
    assert load_config(str(path)).enabled_accounts == ()


def test_openclaw_json5_file_is_read_with_its_globals(tmp_path: Path) -> None:
    path = tmp_path / "openclaw.json5"
    path.write_text("""{
      // an OpenClaw config: other sections are not ours
      gateway: { port: 18789 },
      agents: { list: [{ id: "main", groupChat: { mentionPatterns: ["@claw"] } }] },
      messages: { responsePrefix: "🦞", groupChat: { historyLimit: 20 } },
      channels: { imessage: {
        cliPath: "imsg", dmPolicy: "pairing", allowFrom: ["+15550001111"],
        blockStreaming: true, groups: { "*": { requireMention: true, tools: {} } },
      } },
    }""")
    config = load_config(str(path))
    acct = config.account(None)
    assert [p.pattern for p in acct.mention_patterns] == ["@claw"]
    assert (acct.response_prefix, acct.history_limit) == ("🦞", 20)
    notes = [str(p) for p in config.problems if p.severity == "note"]
    assert notes == ["note: channels.imessage.blockStreaming: not used by imsg gateway (ignored)",
                     'note: channels.imessage.groups.*.tools: not used by imsg gateway '
                     "(ignored)"]


@pytest.mark.parametrize("content,error", [
    ("[imessage\n", "not valid TOML"),
    ("[other]\nx = 1\n", r"no \[imessage\] table"),
])
def test_unreadable_files(tmp_path: Path, content: str, error: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(ConfigInvalid, match=error):
        load_config(str(path))
    with pytest.raises(ConfigInvalid, match="cannot read"):
        load_config(str(tmp_path / "missing.toml"))


def test_remote_host_detected_from_an_ssh_wrapper(tmp_path: Path) -> None:
    wrapper = tmp_path / "imsg-remote"
    wrapper.write_text('#!/bin/sh\n# runs imsg on the Mac mini\n'
                       'exec ssh -T -o ConnectTimeout=5 bot@mac-mini.local imsg "$@"\n')
    assert account(tmp_path, cliPath=str(wrapper)).remote_host == "bot@mac-mini.local"
    wrapper.write_text('#!/bin/sh\nexec ssh -p 2222 macmini /usr/local/bin/imsg "$@"\n')
    assert account(tmp_path, cliPath=str(wrapper)).remote_host == "macmini"
    wrapper.write_text('#!/bin/sh\nexec ssh "evil host;rm" imsg "$@"\n')
    assert account(tmp_path, cliPath=str(wrapper)).remote_host is None
    assert account(tmp_path, cliPath=str(wrapper), remoteHost="m1").remote_host == "m1"


def test_every_key_is_in_the_readme_table() -> None:
    text = README.read_text()
    section = text[text.index("## Gateway"):]
    missing = [key for key in KEYS if f"| `{key}`" not in section]
    assert not missing, missing


# --- handles and allowlists -----------------------------------------------------------------

@pytest.mark.parametrize("raw,normalized", [
    (" +1 (555) 222-3333 ", "+15552223333"),
    ("5552223333", "+15552223333"),
    ("Foo@Example.COM", "foo@example.com"),
    ("sms:+15552223333", "+15552223333"),
    ("imessage:sms:auto:" * 50 + "+15552223333", "+15552223333"),
    ("CHAT:42", "chat_id:42"),
    ("imessage:CHAT_GUID:abc", "chat_guid:abc"),
    ("ChatIdent:Foo", "chat_identifier:Foo"),
    ("tel:+44 20 7946 0958", "+442079460958"),
    ("12345", "+12345"),
    ("Bob Smith", "BobSmith"),
])
def test_normalize_handle(raw: str, normalized: str) -> None:
    assert normalize_handle(raw) == normalized


def test_allowlist_matching() -> None:
    allow = AllowList.compile(["+1 555 222 3333", "chat_id:7", "chat_guid:G", "chat:x",
                               "chat_identifier:chat9", "a@b.com"])
    assert allow.allows("+15552223333")
    assert allow.allows("a@b.com")
    assert allow.allows("+1999", chat_id=7)
    assert allow.allows("+1999", chat_guid="G")
    assert allow.allows("+1999", chat_identifier="chat9")
    assert not allow.allows("+1999", chat_id=8)
    assert not AllowList.compile([]).allows("+15552223333")
    assert AllowList.compile(["*"]).allows("anyone")
    assert not AllowList.compile(["*"]).allows("anyone", explicit=True)


@pytest.mark.parametrize("entry,problem", [
    ("chat_id:abc", "Invalid chat_id: chat_id:abc"),
    ("chat_id:0", "Invalid chat_id: chat_id:0"),
    ("chat_identifier:", "Invalid chat_identifier entry: chat_identifier:"),
    ("guid:", "Invalid chat_guid entry: guid:"),
    ("+15550001111", None),
    ("chat_id:12", None),
])
def test_allow_entry_validation(entry: str, problem: str | None) -> None:
    assert entry_problem(entry) == problem


# --- outbound target params ---------------------------------------------------------------

@pytest.mark.parametrize("target,params,scope", [
    ("chat_id:123", {"chat_id": 123}, "chat_id:123"),
    ("chat_guid:iMessage;+;chat1", {"chat_guid": "iMessage;+;chat1"},
     "chat_guid:iMessage;+;chat1"),
    ("chat_identifier:chat1", {"chat_identifier": "chat1"}, "chat_identifier:chat1"),
    ("sms:+15551234567", {"to": "+15551234567", "service": "sms", "region": "US"},
     "imessage:+15551234567"),
    ("Foo@Bar.com", {"to": "foo@bar.com", "region": "US"}, "imessage:foo@bar.com"),
    ("(555) 123-4567", {"to": "+15551234567", "region": "US"}, "imessage:+15551234567"),
])
def test_send_params_for_targets(tmp_path: Path, target: str, params: dict[str, Any],
                                 scope: str) -> None:
    assert send_params(target, account(tmp_path, allowFrom=["+1"])) == (params, scope)


@pytest.mark.parametrize("target", ["", "chat_id:abc", "chat_id:12abc", "just a name"])
def test_bad_targets_rejected(tmp_path: Path, target: str) -> None:
    with pytest.raises(InvalidTarget):
        send_params(target, account(tmp_path, allowFrom=["+1"]))
