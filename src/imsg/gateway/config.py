"""The gateway's configuration: read, validated strictly, resolved per account.

Two file formats, same keys:

- TOML: the ``[imessage]`` table (``[channels.imessage]`` is accepted too);
- JSON5 (``.json5``/``.json``, an OpenClaw config): ``channels.imessage``; OpenClaw's global
  ``messages.groupChat.mentionPatterns``/``historyLimit``, ``messages.responsePrefix`` and
  ``messages.inbound.debounceMs`` fill in what the section leaves unset, and the rest of the
  file (OpenClaw's own sections) is not ours to judge.

``accounts`` maps ids to sections merged key by key over the base (an account's ``handler``
or ``groups`` replaces the base's whole). Without ``accounts`` there is one account,
``default``. Validation collects every problem with its key path (``imessage.accounts.work.
dmPolicy: …``): unknown keys, wrong types, ``dmPolicy = "open"`` without ``"*"``, an
``allowlist`` policy with an empty list, unsafe ``cliPath``/``remoteHost``, relative
attachment roots, chat GUIDs used as ``groups`` keys, bad regexes, malformed allowlist
entries. Keys of the OpenClaw channel that this gateway does not use are accepted and listed
as ``note`` problems, so an OpenClaw file loads. ``load_config`` raises ``ConfigInvalid``
when any problem is an ``error``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from imsg.errors import ConfigInvalid
from imsg.gateway.handles import AllowList, entry_problem
from imsg.gateway.remote import (
    DEFAULT_ATTACHMENT_ROOT,
    detect_remote_host,
    root_problem,
    unsafe_cli_path,
    unsafe_remote_host,
)

Severity = Literal["error", "warning", "note"]
DmPolicy = Literal["pairing", "allowlist", "open", "disabled"]
GroupPolicy = Literal["open", "allowlist", "disabled"]
DEFAULT_ACCOUNT = "default"


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        label = "" if self.severity == "error" else f"{self.severity}: "
        return f"{label}{self.path}: {self.message}"


# --- the key table ----------------------------------------------------------------------------

Check = Callable[[Any], str | None]  # value → problem text, or None


@dataclass(frozen=True)
class Key:
    type: str
    default: Any
    meaning: str
    check: Check
    shown: str | None = None  # the default as the README states it, when not the value


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _str(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a string"


def _int(minimum: int) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be an integer"
        return None if value >= minimum else f"must be at least {minimum}"
    return check


def _enum(*values: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in values else "must be one of " + ", ".join(values)
    return check


def _string_list(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "must be a list of strings"
    return None


def _allow_list(value: Any) -> str | None:
    if not isinstance(value, list) or not all(
            isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))
            for v in value):
        return "must be a list of strings or numbers"
    return None


def _table(value: Any) -> str | None:
    return None if isinstance(value, dict) else "must be a table"


KEYS: dict[str, Key] = {
    "enabled": Key("bool", True, "false disables the account (or, at the top, all)", _bool),
    "name": Key("string", None, "display name of the account", _str),
    "cliPath": Key("string", "imsg",
                   "the imsg to spawn as `<cliPath> rpc`; may be an SSH wrapper script", _str),
    "dbPath": Key("string", None, "passed as `--db` (a path on the Mac that runs imsg)", _str),
    "remoteHost": Key("string", None, "`host` or `user@host` to fetch attachments from with scp",
                      _str, "detected from an SSH wrapper"),
    "service": Key("string", "auto", "send service for handle targets: imessage, sms, auto",
                   _enum("imessage", "sms", "auto")),
    "region": Key("string", "US", "country for phone numbers without a country code", _str),
    "dmPolicy": Key("string", "pairing", "direct messages: pairing, allowlist, open, disabled",
                    _enum("pairing", "allowlist", "open", "disabled")),
    "allowFrom": Key("list", [], "who may write in direct chats (handles, chat_id:N, \"*\")",
                     _allow_list),
    "groupPolicy": Key("string", "allowlist", "group chats: open, allowlist, disabled",
                       _enum("open", "allowlist", "disabled")),
    "groupAllowFrom": Key("list", None, "who may trigger the bot in groups (senders or "
                          "chat_id:N)", _allow_list, "allowFrom"),
    "groups": Key("table", {}, "per-group settings keyed by chat id or \"*\"; listing any "
                  "makes it a registry that other groups fail", _table),
    "mentionPatterns": Key("list", [], "regexes (case-insensitive) that count as mentioning "
                           "the bot in groups", _string_list),
    "historyLimit": Key("integer", 50, "unanswered group messages passed along with the next "
                        "dispatch (0: none)", _int(0)),
    "includeAttachments": Key("bool", False, "pass attachments to the handler (`media`)",
                              _bool),
    "attachmentRoots": Key("list", [], "more absolute path patterns attachments may come "
                           f"from (always: {DEFAULT_ATTACHMENT_ROOT})", _string_list),
    "remoteAttachmentRoots": Key("list", [], "the same, on the remote Mac", _string_list),
    "mediaMaxMb": Key("integer", 16, "largest file a reply may send, in MiB", _int(1)),
    "textChunkLimit": Key("integer", 4000, "longest text of one outgoing message", _int(1)),
    "chunkMode": Key("string", "length", "how long replies are cut: length, newline",
                     _enum("length", "newline")),
    "responsePrefix": Key("string", "", "text put before every reply", _str),
    "contextVisibility": Key("string", "all", "quotes and history from senders outside the "
                             "group allowlist: all, allowlist, allowlist_quote",
                             _enum("all", "allowlist", "allowlist_quote")),
    "pairingReply": Key("bool", True, "false: pairing codes are only logged and listed, "
                        "strangers get no answer", _bool),
    "sendReadReceipts": Key("bool", True, "mark chats read on dispatch (needs the bridge)",
                            _bool),
    "debounceMs": Key("integer", 0, "join a sender's quick successive texts (0: off)", _int(0)),
    "maxConcurrent": Key("integer", 8, "conversations handled at the same time", _int(1)),
    "probeTimeoutMs": Key("integer", 10_000, "timeout of the child's probe, subscribe and "
                          "health checks", _int(1)),
    "sendTimeoutMs": Key("integer", 150_000, "timeout of one send", _int(1)),
    "healthIntervalMs": Key("integer", 30_000, "how often the child is asked for `status`",
                            _int(1)),
    "restartInitialMs": Key("integer", 500, "first restart delay after the child fails "
                            "(doubling)", _int(1)),
    "restartMaxMs": Key("integer", 300_000, "longest restart delay", _int(1)),
    "replayMaxRows": Key("integer", 500, "most rows handled after downtime (the newest; older "
                         "ones are skipped and reported)", _int(0)),
    "replayMaxAgeMinutes": Key("integer", 120, "rows older than this are not handled after "
                               "downtime", _int(1)),
    "staleAfterMinutes": Key("integer", 15, "a live row this much older than its arrival is "
                             "an iCloud backlog and is not handled", _int(1)),
    "shutdownGraceMs": Key("integer", 30_000, "how long a stop waits for running handlers",
                           _int(0)),
    "handler": Key("table", None, "how messages reach the agent: command, webhook or python",
                   _table),
}
TOP_ONLY = {"accounts": "map of account id → the keys above",
            "defaultAccount": "the account `gateway send` uses without --account"}
GROUP_KEYS = {"requireMention": _bool}
HANDLER_KEYS: dict[str, Check] = {
    "command": _string_list, "webhook": _str, "python": _str, "timeoutMs": _int(1),
    "headers": _table,
}
# OpenClaw channel keys that have no meaning here: accepted (the file loads) and noted.
IGNORED = frozenset({
    "blockStreaming", "blockStreamingCoalesce", "markdown", "configWrites", "capabilities",
    "heartbeat", "healthMonitor", "defaultTo", "sendTransport", "reactionNotifications",
    "actions", "catchup", "dmHistoryLimit", "dms", "coalesceSameSenderDms",
})
IGNORED_GROUP_KEYS = frozenset({"tools", "toolsBySender", "systemPrompt"})
_PYTHON_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


# --- resolved configuration --------------------------------------------------------------------

@dataclass(frozen=True)
class HandlerConfig:
    kind: Literal["command", "webhook", "python"]
    command: tuple[str, ...] = ()
    webhook: str = ""
    python: str = ""
    timeout_s: float = 120.0
    headers: tuple[tuple[str, str], ...] = ()
    base_dir: str = "."


@dataclass(frozen=True)
class GroupConfig:
    require_mention: bool | None = None


@dataclass(frozen=True)
class AccountConfig:
    """One account, every key resolved (defaults applied, paths expanded)."""

    id: str
    name: str = ""
    enabled: bool = True
    cli_path: str = "imsg"
    db_path: str | None = None
    remote_host: str | None = None
    service: str = "auto"
    region: str = "US"
    dm_policy: DmPolicy = "pairing"
    allow_from: tuple[str, ...] = ()
    group_policy: GroupPolicy = "allowlist"
    group_allow_from: tuple[str, ...] = ()
    groups: Mapping[str, GroupConfig] = field(default_factory=dict)
    mention_patterns: tuple[re.Pattern[str], ...] = ()
    history_limit: int = 50
    include_attachments: bool = False
    attachment_roots: tuple[str, ...] = (DEFAULT_ATTACHMENT_ROOT,)
    remote_attachment_roots: tuple[str, ...] = (DEFAULT_ATTACHMENT_ROOT,)
    media_max_bytes: int = 16 * 1024 * 1024
    text_chunk_limit: int = 4000
    chunk_mode: Literal["length", "newline"] = "length"
    response_prefix: str = ""
    context_visibility: Literal["all", "allowlist", "allowlist_quote"] = "all"
    pairing_reply: bool = True
    send_read_receipts: bool = True
    debounce_s: float = 0.0
    max_concurrent: int = 8
    probe_timeout_s: float = 10.0
    send_timeout_s: float = 150.0
    health_interval_s: float = 30.0
    restart_initial_s: float = 0.5
    restart_max_s: float = 300.0
    replay_max_rows: int = 500
    replay_max_age_s: float = 7200.0
    stale_after_s: float = 900.0
    shutdown_grace_s: float = 30.0
    handler: HandlerConfig | None = None
    allow: AllowList = field(default_factory=AllowList)
    group_allow: AllowList = field(default_factory=AllowList)

    @property
    def registry(self) -> bool:
        """Whether ``groups`` lists chats, making it a gate for groups."""
        return bool(self.groups)

    def argv(self) -> list[str]:
        """The child's command line: ``<cliPath> rpc [--db dbPath]`` (no shell)."""
        return [self.cli_path, "rpc", *(["--db", self.db_path] if self.db_path else [])]

    def describe(self) -> dict[str, Any]:
        """The effective configuration, for ``imsg gateway check``."""
        handler = None
        if self.handler is not None:
            handler = {"kind": self.handler.kind, "timeoutMs": int(self.handler.timeout_s * 1000),
                       "target": (list(self.handler.command) or self.handler.webhook
                                  or self.handler.python)}
        return {
            "account": self.id, "name": self.name, "enabled": self.enabled,
            "cliPath": self.cli_path, "dbPath": self.db_path, "remoteHost": self.remote_host,
            "service": self.service, "region": self.region, "dmPolicy": self.dm_policy,
            "allowFrom": list(self.allow_from), "groupPolicy": self.group_policy,
            "groupAllowFrom": list(self.group_allow_from),
            "groups": {k: ({} if g.require_mention is None
                           else {"requireMention": g.require_mention})
                       for k, g in self.groups.items()},
            "mentionPatterns": [p.pattern for p in self.mention_patterns],
            "historyLimit": self.history_limit, "includeAttachments": self.include_attachments,
            "attachmentRoots": list(self.attachment_roots),
            "remoteAttachmentRoots": list(self.remote_attachment_roots),
            "mediaMaxMb": self.media_max_bytes // (1024 * 1024),
            "textChunkLimit": self.text_chunk_limit, "chunkMode": self.chunk_mode,
            "responsePrefix": self.response_prefix,
            "contextVisibility": self.context_visibility, "pairingReply": self.pairing_reply,
            "sendReadReceipts": self.send_read_receipts,
            "debounceMs": int(self.debounce_s * 1000), "maxConcurrent": self.max_concurrent,
            "probeTimeoutMs": int(self.probe_timeout_s * 1000),
            "sendTimeoutMs": int(self.send_timeout_s * 1000),
            "healthIntervalMs": int(self.health_interval_s * 1000),
            "restartInitialMs": int(self.restart_initial_s * 1000),
            "restartMaxMs": int(self.restart_max_s * 1000),
            "replayMaxRows": self.replay_max_rows,
            "replayMaxAgeMinutes": int(self.replay_max_age_s // 60),
            "staleAfterMinutes": int(self.stale_after_s // 60),
            "shutdownGraceMs": int(self.shutdown_grace_s * 1000),
            "handler": handler,
        }


@dataclass(frozen=True)
class GatewayConfig:
    path: str
    accounts: tuple[AccountConfig, ...]
    default_account: str
    problems: tuple[Problem, ...] = ()

    def account(self, account_id: str | None) -> AccountConfig:
        """The named account (default: ``defaultAccount``); raises ConfigInvalid."""
        wanted = account_id or self.default_account
        for account in self.accounts:
            if account.id == wanted:
                return account
        known = ", ".join(a.id for a in self.accounts)
        raise ConfigInvalid([f"no account {wanted!r} in {self.path} (accounts: {known})"])

    @property
    def enabled_accounts(self) -> tuple[AccountConfig, ...]:
        return tuple(a for a in self.accounts if a.enabled)


# --- reading -------------------------------------------------------------------------------------

def read_section(path: str) -> tuple[dict[str, Any], str, list[Problem]]:
    """The raw channel section, its key-path prefix and problems of the file itself."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigInvalid([f"{path}: cannot read ({exc.strerror or exc})"]) from None
    if path.endswith((".json5", ".json")):
        import json5

        try:
            doc = json5.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigInvalid([f"{path}: not valid JSON5 ({exc})"]) from None
        if not isinstance(doc, dict):
            raise ConfigInvalid([f"{path}: the top level must be an object"])
        channels = doc.get("channels")
        section = channels.get("imessage") if isinstance(channels, dict) else None
        if not isinstance(section, dict):
            raise ConfigInvalid([f"{path}: no channels.imessage section"])
        return _with_openclaw_globals(dict(section), doc), "channels.imessage", []
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigInvalid([f"{path}: not valid TOML ({exc})"]) from None
    problems = []
    table: Any = doc.get("imessage")
    prefix = "imessage"
    channels = doc.get("channels")
    if table is None and isinstance(channels, dict) and "imessage" in channels:
        table, prefix = channels["imessage"], "channels.imessage"
    for key in doc:
        if key not in ("imessage", "channels"):
            problems.append(Problem(key, "unknown top-level table (the gateway reads "
                                         "[imessage])"))
    if not isinstance(table, dict):
        raise ConfigInvalid([f"{path}: no [imessage] table"])
    return table, prefix, problems


def _table_at(doc: Any, *path: str) -> dict[str, Any]:
    """The table at ``path`` in ``doc``, or {} when any step is missing or not a table."""
    for key in path:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc if isinstance(doc, dict) else {}


def _with_openclaw_globals(section: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """Fill unset keys from OpenClaw's global ``messages``/``agents`` settings."""
    group_chat = _table_at(doc, "messages", "groupChat")
    inbound = _table_at(doc, "messages", "inbound")
    patterns = group_chat.get("mentionPatterns")
    agents = _table_at(doc, "agents").get("list")
    for agent in agents if isinstance(agents, list) else []:
        chat = _table_at(agent, "groupChat")
        if chat.get("mentionPatterns"):
            patterns = chat["mentionPatterns"]
            break
    fallbacks = {
        "mentionPatterns": patterns,
        "historyLimit": group_chat.get("historyLimit"),
        "responsePrefix": _table_at(doc, "messages").get("responsePrefix"),
        "debounceMs": _table_at(inbound, "byChannel").get("imessage",
                                                          inbound.get("debounceMs")),
    }
    for key, value in fallbacks.items():
        if value is not None and key not in section:
            section[key] = value
    return section


def _check_section(section: dict[str, Any], prefix: str, *, top: bool) -> list[Problem]:
    problems: list[Problem] = []
    for key, value in section.items():
        path = f"{prefix}.{key}"
        if top and key in TOP_ONLY:
            if key == "accounts" and not (isinstance(value, dict) and all(
                    isinstance(v, dict) for v in value.values())):
                problems.append(Problem(path, "must be a table of account tables"))
            elif key == "defaultAccount" and not isinstance(value, str):
                problems.append(Problem(path, "must be a string"))
            continue
        if key in IGNORED:
            problems.append(Problem(path, "not used by imsg gateway (ignored)", "note"))
            continue
        spec = KEYS.get(key)
        if spec is None:
            problems.append(Problem(path, "unknown key"))
            continue
        if value is None:
            problems.append(Problem(path, "must not be null"))
            continue
        text = spec.check(value)
        if text:
            problems.append(Problem(path, text))
            continue
        problems.extend(_check_value(key, value, path))
    return problems


def _check_value(key: str, value: Any, path: str) -> list[Problem]:
    problems: list[Problem] = []
    if key in ("allowFrom", "groupAllowFrom"):
        for index, entry in enumerate(value):
            text = entry_problem(str(entry))
            if text:
                problems.append(Problem(f"{path}[{index}]", text))
    elif key == "mentionPatterns":
        for index, pattern in enumerate(value):
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(Problem(f"{path}[{index}]", f"not a valid regex ({exc})"))
    elif key in ("attachmentRoots", "remoteAttachmentRoots"):
        for index, root in enumerate(value):
            text = root_problem(root)
            if text:
                problems.append(Problem(f"{path}[{index}]", text))
    elif key == "cliPath":
        text = unsafe_cli_path(value)
        if text:
            problems.append(Problem(path, text))
    elif key == "remoteHost":
        text = unsafe_remote_host(value)
        if text:
            problems.append(Problem(path, text))
    elif key == "groups":
        problems.extend(_check_groups(value, path))
    elif key == "handler":
        problems.extend(_check_handler(value, path))
    elif key == "region":
        from imsg.errors import InvalidInput
        from imsg.send.targets import check_region

        try:
            check_region(value)
        except InvalidInput as exc:
            problems.append(Problem(path, exc.message))
    return problems


def _check_groups(groups: dict[str, Any], path: str) -> list[Problem]:
    problems: list[Problem] = []
    for chat, entry in groups.items():
        where = f"{path}.{chat}" if re.fullmatch(r"[\w*]+", chat) else f'{path}."{chat}"'
        if chat != "*" and not (chat.isdigit() and int(chat) > 0):
            hint = (" (it looks like a chat GUID, which never matches: use the chat id from "
                    "`imsg chats`)" if ";" in chat or chat.startswith("chat") else
                    " (use a chat id from `imsg chats`, or \"*\")")
            problems.append(Problem(where, "not a chat id" + hint))
        if not isinstance(entry, dict):
            problems.append(Problem(where, "must be a table"))
            continue
        for key, value in entry.items():
            if key in IGNORED_GROUP_KEYS:
                problems.append(Problem(f"{where}.{key}", "not used by imsg gateway (ignored)",
                                        "note"))
            elif key not in GROUP_KEYS:
                problems.append(Problem(f"{where}.{key}", "unknown key"))
            elif (text := GROUP_KEYS[key](value)) is not None:
                problems.append(Problem(f"{where}.{key}", text))
    return problems


def _check_handler(handler: dict[str, Any], path: str) -> list[Problem]:
    problems: list[Problem] = []
    for key, value in handler.items():
        check = HANDLER_KEYS.get(key)
        if key == "command" and isinstance(value, str):
            continue  # reported below, with the fix
        if check is None:
            problems.append(Problem(f"{path}.{key}", "unknown key"))
        elif (text := check(value)) is not None:
            problems.append(Problem(f"{path}.{key}", text))
    kinds = [k for k in ("command", "webhook", "python") if k in handler]
    if len(kinds) != 1:
        problems.append(Problem(path, "set exactly one of command, webhook, python"))
    if isinstance(handler.get("command"), list) and not handler["command"]:
        problems.append(Problem(f"{path}.command", "must not be empty"))
    if isinstance(handler.get("command"), str):
        problems.append(Problem(f"{path}.command", "use a list of arguments (no shell runs it)"))
    webhook = handler.get("webhook")
    if isinstance(webhook, str) and not re.match(r"https?://[^\s/]+", webhook):
        problems.append(Problem(f"{path}.webhook", "must be an http:// or https:// URL"))
    target = handler.get("python")
    if isinstance(target, str) and not _PYTHON_TARGET.fullmatch(target):
        problems.append(Problem(f"{path}.python", "must be module:function"))
    headers = handler.get("headers")
    if isinstance(headers, dict) and not all(isinstance(v, str) for v in headers.values()):
        problems.append(Problem(f"{path}.headers", "values must be strings"))
    return problems


def _merged_problems(merged: dict[str, Any], where: Callable[[str], str],
                     require_handler: bool) -> list[Problem]:
    problems: list[Problem] = []
    allow = [str(v).strip() for v in merged.get("allowFrom", [])]
    dm_policy = merged.get("dmPolicy", "pairing")
    if dm_policy == "open" and "*" not in allow:
        problems.append(Problem(where("dmPolicy"), 'open requires "*" in allowFrom'))
    if dm_policy == "allowlist" and not any(allow):
        problems.append(Problem(where("dmPolicy"), "allowlist requires at least one allowFrom "
                                                   "entry"))
    group_policy = merged.get("groupPolicy", "allowlist")
    group_allow = merged.get("groupAllowFrom")
    effective = [str(v).strip() for v in (group_allow if group_allow is not None else allow)]
    if group_policy == "allowlist" and not any(effective):
        if "groupPolicy" in merged:
            problems.append(Problem(where("groupPolicy"), "allowlist requires at least one "
                                    "groupAllowFrom (or allowFrom) entry"))
        else:
            problems.append(Problem(where("groupPolicy"), "defaults to allowlist and no "
                                    "groupAllowFrom/allowFrom entry is set: every group "
                                    "message will be dropped", "warning"))
    if group_policy == "open":
        problems.append(Problem(where("groupPolicy"), "open: anyone in any group chat can "
                                "trigger the bot", "warning"))
    if require_handler and "handler" not in merged:
        problems.append(Problem(where("handler"), "no handler: set command, webhook or python"))
    return problems


def load_config(path: str, *, require_handler: bool = False) -> GatewayConfig:
    """Read, validate and resolve ``path``. Raises ConfigInvalid listing every error."""
    section, prefix, problems = read_section(path)
    problems += _check_section(section, prefix, top=True)
    accounts_raw = section.get("accounts")
    accounts_raw = accounts_raw if isinstance(accounts_raw, dict) else {}
    for account_id, raw in accounts_raw.items():
        if isinstance(raw, dict):
            problems += _check_section(raw, f"{prefix}.accounts.{account_id}", top=False)
    base = {k: v for k, v in section.items() if k not in TOP_ONLY}
    ids = sorted(accounts_raw) or [DEFAULT_ACCOUNT]
    channel_enabled = section.get("enabled", True) is not False
    base_dir = os.path.dirname(os.path.abspath(path))
    merged_by_id: list[tuple[str, dict[str, Any], bool]] = []
    for account_id in ids:
        own = accounts_raw.get(account_id, {}) if accounts_raw else {}
        own = own if isinstance(own, dict) else {}
        merged = {**base, **own}

        def where(key: str, own: dict[str, Any] = own, account_id: str = account_id) -> str:
            if key in own:
                return f"{prefix}.accounts.{account_id}.{key}"
            return f"{prefix}.{key}"

        enabled = channel_enabled and merged.get("enabled", True) is not False
        if enabled:
            problems += _merged_problems(merged, where, require_handler)
        merged_by_id.append((account_id, merged, enabled))
    default = section.get("defaultAccount")
    if isinstance(default, str) and default not in ids:
        problems.append(Problem(f"{prefix}.defaultAccount", f"no account {default!r}"))
    default_id = default if isinstance(default, str) and default in ids else (
        DEFAULT_ACCOUNT if DEFAULT_ACCOUNT in ids else ids[0])
    errors = [str(p) for p in problems if p.severity == "error"]
    if errors:
        raise ConfigInvalid(errors, problems=tuple(problems))
    resolved = tuple(_resolve(account_id, merged, enabled, base_dir)
                     for account_id, merged, enabled in merged_by_id)
    return GatewayConfig(os.path.abspath(path), resolved, default_id, tuple(problems))


def _resolve(account_id: str, raw: dict[str, Any], enabled: bool,
             base_dir: str) -> AccountConfig:
    """An AccountConfig from a validated merged section."""
    def get(key: str) -> Any:
        value = raw.get(key)
        return KEYS[key].default if value is None else value

    region = get("region")
    allow_from = tuple(str(v).strip() for v in get("allowFrom"))
    group_raw = raw.get("groupAllowFrom")
    group_allow_from = (tuple(str(v).strip() for v in group_raw) if group_raw is not None
                        else allow_from)
    groups = {str(chat): GroupConfig(entry.get("requireMention"))
              for chat, entry in (get("groups") or {}).items() if isinstance(entry, dict)}
    cli_path = os.path.expanduser(str(get("cliPath")).strip() or "imsg")
    remote_host = raw.get("remoteHost") or detect_remote_host(cli_path)
    handler_raw = raw.get("handler")
    handler = None
    if isinstance(handler_raw, dict):
        kind = next((k for k in ("command", "webhook", "python") if k in handler_raw), None)
        if kind is not None:
            handler = HandlerConfig(
                kind=kind,  # type: ignore[arg-type]
                command=tuple(handler_raw.get("command") or ()),
                webhook=str(handler_raw.get("webhook") or ""),
                python=str(handler_raw.get("python") or ""),
                timeout_s=int(handler_raw.get("timeoutMs", 120_000)) / 1000,
                headers=tuple(sorted((str(k), str(v)) for k, v in
                                     (handler_raw.get("headers") or {}).items())),
                base_dir=base_dir)
    db_path = raw.get("dbPath")
    return AccountConfig(
        id=account_id,
        name=str(raw.get("name") or ""),
        enabled=enabled,
        cli_path=cli_path,
        db_path=os.path.expanduser(db_path) if db_path and not remote_host else db_path,
        remote_host=remote_host,
        service=get("service"),
        region=region,
        dm_policy=get("dmPolicy"),
        allow_from=allow_from,
        group_policy=get("groupPolicy"),
        group_allow_from=group_allow_from,
        groups=groups,
        mention_patterns=tuple(re.compile(p, re.IGNORECASE) for p in get("mentionPatterns")),
        history_limit=get("historyLimit"),
        include_attachments=get("includeAttachments"),
        attachment_roots=(DEFAULT_ATTACHMENT_ROOT, *get("attachmentRoots")),
        remote_attachment_roots=(DEFAULT_ATTACHMENT_ROOT, *get("remoteAttachmentRoots"),
                                 *get("attachmentRoots")),
        media_max_bytes=get("mediaMaxMb") * 1024 * 1024,
        text_chunk_limit=get("textChunkLimit"),
        chunk_mode=get("chunkMode"),
        response_prefix=get("responsePrefix"),
        context_visibility=get("contextVisibility"),
        pairing_reply=get("pairingReply"),
        send_read_receipts=get("sendReadReceipts"),
        debounce_s=get("debounceMs") / 1000,
        max_concurrent=get("maxConcurrent"),
        probe_timeout_s=get("probeTimeoutMs") / 1000,
        send_timeout_s=get("sendTimeoutMs") / 1000,
        health_interval_s=get("healthIntervalMs") / 1000,
        restart_initial_s=get("restartInitialMs") / 1000,
        restart_max_s=max(get("restartMaxMs"), get("restartInitialMs")) / 1000,
        replay_max_rows=get("replayMaxRows"),
        replay_max_age_s=get("replayMaxAgeMinutes") * 60.0,
        stale_after_s=get("staleAfterMinutes") * 60.0,
        shutdown_grace_s=get("shutdownGraceMs") / 1000,
        handler=handler,
        allow=AllowList.compile(allow_from, region),
        group_allow=AllowList.compile(group_allow_from, region),
    )
