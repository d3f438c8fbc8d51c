"""The decision function as a table: every case of the reference's monitor and inbound tests
(v-jan, v-apr) and each failure family it records, one named row each."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from imsg.gateway.config import AccountConfig, load_config
from imsg.gateway.decide import Decision, Dispatch, Drop, Pair, Snapshot, decide
from imsg.gateway.envelope import HistoryEntry
from imsg.gateway.inbound import parse_message
from tests.gateway.kit import ME, message, write_config

NOW = 1_800_000_000.0
ISO_NOW = "2027-01-15T08:00:00.000Z"
OWNER = "+15550001111"
OTHER = "+15550002222"
STRANGER = "+15559998888"

_configs: dict[str, AccountConfig] = {}


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("decide")


def cfg(config_dir: Path, keys: dict[str, Any]) -> AccountConfig:
    key = json.dumps(keys, sort_keys=True)
    if key not in _configs:
        path = write_config(config_dir / f"c{len(_configs)}.toml", keys)
        _configs[key] = load_config(str(path)).account(None)
    return _configs[key]


GROUP = {"groupPolicy": "allowlist", "groupAllowFrom": [OWNER, OTHER],
         "mentionPatterns": [r"@clawd\b"]}


def dm(rowid: int = 10, text: str = "hello", sender: str = OWNER, **kw: Any) -> dict[str, Any]:
    return message(rowid, text, sender=sender, created_at=ISO_NOW, **kw)


def grp(rowid: int = 10, text: str = "@clawd hi", sender: str = OWNER, chat_id: int = 99,
        **kw: Any) -> dict[str, Any]:
    return message(rowid, text, sender=sender, chat_id=chat_id, is_group=True,
                   chat_name="Test Group", participants=[OWNER, OTHER, STRANGER],
                   created_at=ISO_NOW, **kw)


def self_chat(rowid: int = 10, text: str = "note to self", **kw: Any) -> dict[str, Any]:
    return message(rowid, text, sender=ME, chat_identifier=ME, created_at=ISO_NOW, **kw)


Prepare = Callable[[Snapshot], None]


@dataclass
class Case:
    name: str
    msg: dict[str, Any]
    expect: str  # "dispatch", "pair", or "drop:<reason fragment>"
    config: dict[str, Any] = field(default_factory=lambda: {"dmPolicy": "open",
                                                             "allowFrom": ["*"]})
    approved: frozenset[str] = frozenset()
    prepare: Prepare | None = None
    check: Callable[[Decision], None] | None = None


def sent(scope: str, text: str = "", ids: tuple[object, ...] = (), at: float = NOW - 1,
         file_name: str = "") -> Prepare:
    def prepare(snap: Snapshot) -> None:
        snap.echo.remember(scope, text=text, ids=ids, file_name=file_name, now=at)
    return prepare


def body_contains(*parts: str) -> Callable[[Decision], None]:
    def check(decision: Decision) -> None:
        assert isinstance(decision, Dispatch)
        for part in parts:
            assert part in decision.envelope.body, (part, decision.envelope.body)
    return check


def no_quote(decision: Decision) -> None:
    assert isinstance(decision, Dispatch) and decision.envelope.quote is None
    assert "[Replying to" not in decision.envelope.body


def envelope_has(**fields: Any) -> Callable[[Decision], None]:
    def check(decision: Decision) -> None:
        assert isinstance(decision, Dispatch)
        data = decision.envelope.to_json()
        for key, value in fields.items():
            assert data[key] == value, (key, data[key])
    return check


CASES = [
    # --- v-jan: monitor, groups and mentions ---------------------------------------------
    Case("group_without_mention_is_not_dispatched", grp(text="hi all"), "drop:no mention",
         GROUP),
    Case("group_wildcard_require_mention_false_dispatches", grp(text="hi all"), "dispatch",
         {**GROUP, "groups": {"*": {"requireMention": False}}}),
    Case("require_mention_without_patterns_dispatches", grp(text="hi all"), "dispatch",
         {**GROUP, "mentionPatterns": []}),
    Case("groups_without_wildcard_block_unlisted_chats", grp(), "drop:not in groups registry",
         {**GROUP, "groups": {"7": {"requireMention": False}}}),
    Case("configured_chat_id_with_is_group_false_is_a_group",
         message(10, "@clawd hi", sender=OWNER, chat_id=2, created_at=ISO_NOW), "dispatch",
         {**GROUP, "groups": {"2": {}}},
         check=envelope_has(chat_type="group", session="imessage:group:2",
                            reply_to="chat_id:2")),
    Case("mentioned_group_message_dispatches_with_sender_in_body", grp(sender=OTHER),
         "dispatch", GROUP,
         check=lambda d: (body_contains("+15550002222:")(d),
                          envelope_has(chat_type="group", reply_to="chat_id:99")(d))),
    Case("group_policy_allowlist_is_honored", grp(sender=STRANGER),
         "drop:not in group allowlist", GROUP),
    Case("group_policy_disabled_blocks", grp(), "drop:group policy disabled",
         {**GROUP, "groupPolicy": "disabled"}),
    Case("group_body_has_label_and_sender", grp(), "dispatch", GROUP,
         check=body_contains("Test Group id:99", "+15550001111: @clawd hi")),
    Case("reply_context_becomes_quote_and_reply_block",
         dm(reply_to_text="original", reply_to_sender=STRANGER, thread_originator_guid="9001"),
         "dispatch",
         check=lambda d: (body_contains("[Replying to +15559998888 id:9001]", "original",
                                        "[/Replying]")(d),
                          envelope_has(quote={"id": "9001", "text": "original",
                                              "sender": STRANGER})(d))),
    Case("dm_reply_target_is_the_chat_not_the_handle", dm(chat_id=5), "dispatch",
         check=envelope_has(reply_to="chat_id:5", session=f"imessage:{OWNER}",
                            chat_type="direct")),
    Case("dm_without_chat_replies_to_the_handle", dm(chat_id=None), "dispatch",
         check=envelope_has(reply_to=f"imessage:{OWNER}")),
    Case("pairing_with_empty_allow_from_challenges", dm(sender=STRANGER), "pair",
         {"dmPolicy": "pairing"}),
    # --- v-apr: gating ---------------------------------------------------------------------
    Case("destination_caller_id_is_preserved_in_the_raw_message", dm(), "dispatch",
         check=envelope_has(message=dm())),
    Case("group_quote_from_outsider_hidden_under_allowlist_visibility",
         grp(reply_to_text="secret", reply_to_sender=STRANGER, thread_originator_guid="Q1"),
         "dispatch", {**GROUP, "contextVisibility": "allowlist"}, check=no_quote),
    Case("group_quote_from_outsider_kept_under_allowlist_quote",
         grp(reply_to_text="secret", reply_to_sender=STRANGER, thread_originator_guid="Q1"),
         "dispatch", {**GROUP, "contextVisibility": "allowlist_quote"},
         check=body_contains("[Replying to +15559998888 id:Q1]")),
    Case("pairing_store_senders_do_not_get_group_access_admitted_chat",
         grp(sender=STRANGER, chat_id=101), "dispatch",
         {**GROUP, "groupAllowFrom": ["chat_id:101"]}, approved=frozenset({STRANGER})),
    Case("pairing_store_senders_do_not_get_group_access_other_chat",
         grp(sender=STRANGER, chat_id=202), "drop:not in group allowlist",
         {**GROUP, "groupAllowFrom": ["chat_id:101"]}, approved=frozenset({STRANGER})),
    Case("dm_commands_not_authorized_by_open_policy_alone", dm(text="/reset"), "dispatch",
         check=envelope_has(command_authorized=False)),
    Case("dm_commands_authorized_for_pairing_store_senders", dm(text="/reset", sender=OTHER),
         "dispatch", {"dmPolicy": "pairing"}, approved=frozenset({OTHER}),
         check=envelope_has(command_authorized=True)),
    Case("unauthorized_group_command_dropped", grp(text="/reset", sender=STRANGER),
         "drop:control command", {**GROUP, "groupPolicy": "open"}),
    Case("authorized_group_command_bypasses_mention", grp(text="/status"), "dispatch", GROUP,
         check=envelope_has(was_mentioned=True, command_authorized=True)),
    Case("group_without_chat_id_dropped", grp(chat_id=None) | {"chat_id": None},
         "drop:without chat_id", GROUP),
    # --- v-apr: echo and self-chat (self-chat-dedupe and inbound-processing) -------------
    Case("echo_detected_by_outbound_guid", dm(text="something else", guid="SENT-1"),
         "drop:echo", prepare=sent("chat_id:1", "reply", ("SENT-1",))),
    Case("echo_detected_by_outbound_rowid", dm(rowid=77, text="x"), "drop:echo",
         prepare=sent("chat_id:1", "reply", (77,))),
    Case("guid_and_rowid_never_collide", dm(rowid=5, guid="G-5", text="new"), "dispatch",
         prepare=sent("chat_id:1", "old", ("5x", "G-6"))),
    Case("text_fallback_when_outbound_id_was_junk", dm(text="sure thing"), "drop:echo",
         prepare=sent("chat_id:1", "sure thing", ("ok", "unknown"))),
    Case("echo_twin_with_other_guid_dropped_by_text", dm(text="Done!", guid="TWIN"),
         "drop:echo", prepare=sent("chat_id:1", "Done!", ("SENT-9",))),
    Case("text_echo_after_4s_is_delivered", dm(text="sure thing"), "dispatch",
         prepare=sent("chat_id:1", "sure thing", at=NOW - 4.5)),
    Case("text_echo_at_4s_is_dropped", dm(text="sure thing"), "drop:echo",
         prepare=sent("chat_id:1", "sure thing", at=NOW - 4.0)),
    Case("id_echo_after_60s_is_delivered", dm(guid="SENT-1", text="x"), "dispatch",
         prepare=sent("chat_id:1", "", ("SENT-1",), at=NOW - 61)),
    Case("id_echo_within_60s_is_dropped", dm(guid="SENT-1", text="x"), "drop:echo",
         prepare=sent("chat_id:1", "", ("SENT-1",), at=NOW - 59)),
    Case("echo_cache_is_per_conversation", dm(text="sure thing", chat_id=2), "dispatch",
         prepare=sent("chat_id:1", "sure thing")),
    Case("user_repeating_a_chunk_after_its_echo_is_heard", dm(text="part two"), "dispatch",
         prepare=lambda snap: (snap.echo.remember("chat_id:1", text="part one", now=NOW - 1),
                               snap.echo.remember("chat_id:1", text="part two", now=NOW - 1),
                               snap.echo.absorb(["chat_id:1"], ids=(), text="part two",
                                                now=NOW - 0.5))),
    Case("real_user_self_chat_message_processed", self_chat(is_from_me=True), "dispatch",
         {"dmPolicy": "allowlist", "allowFrom": [ME]}),
    Case("from_me_with_blank_destination_and_sender_equal_identifier_dropped",
         dm(is_from_me=True, destination_caller_id=None, chat_identifier=OWNER),
         "drop:from me"),
    Case("ordinary_dm_where_sender_equals_identifier_is_not_self_chat",
         dm(chat_identifier=OWNER), "dispatch"),
    Case("dm_from_me_dropped_even_with_participant_list",
         dm(is_from_me=True, participants=[OWNER, OTHER]), "drop:from me"),
    Case("agent_echo_in_self_chat_dropped_by_text", self_chat(text="answer", is_from_me=True),
         "drop:agent echo in self-chat", {"dmPolicy": "allowlist", "allowFrom": [ME]},
         prepare=sent("chat_id:1", "answer")),
    Case("reflected_self_chat_mirror_dropped_after_from_me_copy",
         self_chat(is_from_me=False), "drop:self-chat echo",
         {"dmPolicy": "allowlist", "allowFrom": [ME]},
         prepare=lambda snap: snap.self_chat.remember(
             snap.self_chat.key(f"default:imessage:{ME}", ISO_NOW, "note to self"), NOW - 1)),
    Case("same_text_different_created_at_not_dropped", self_chat(is_from_me=False),
         "dispatch", {"dmPolicy": "allowlist", "allowFrom": [ME]},
         prepare=lambda snap: snap.self_chat.remember(
             snap.self_chat.key(f"default:imessage:{ME}", "2027-01-15T07:59:59.000Z",
                                "note to self"), NOW - 1)),
    Case("self_chat_cache_scoped_to_group_thread_spares_other_participants",
         grp(sender=OTHER, text="@clawd same words"), "dispatch", GROUP,
         prepare=lambda snap: snap.self_chat.remember(
             snap.self_chat.key(f"default:chat_id:99:imessage:{OWNER}", ISO_NOW,
                                "@clawd same words"), NOW - 1)),
    Case("attachment_only_echo_dropped_by_file_name",
         dm(text="\ufffc", attachments=[{"original_path": "/x/reply.png",
                                         "mime_type": "image/png", "missing": False,
                                         "transfer_name": "reply.png"}]),
         "drop:echo", {"dmPolicy": "open", "allowFrom": ["*"], "includeAttachments": True,
                       "attachmentRoots": ["/x"]},
         prepare=sent("chat_id:1", file_name="reply.png")),
    Case("own_image_does_not_drop_a_real_user_image",
         dm(text="\ufffc", attachments=[{"original_path": "/x/IMG_0001.jpeg",
                                         "mime_type": "image/jpeg", "missing": False,
                                         "transfer_name": "IMG_0001.jpeg"}]),
         "dispatch", {"dmPolicy": "open", "allowFrom": ["*"], "includeAttachments": True,
                      "attachmentRoots": ["/x"]},
         prepare=sent("chat_id:1", file_name="reply.png"),
         check=envelope_has(text="<media:image>")),
    Case("numeric_id_matches_guid_scope_mix", dm(rowid=42, guid="ZZ"), "drop:echo",
         prepare=sent("imessage:+15550001111", "", (42,))),
    Case("mixed_guid_and_text_only_scopes", dm(text="hey there", chat_id=None), "drop:echo",
         prepare=sent("imessage:+15550001111", "hey there")),
    # --- guards in the decision -----------------------------------------------------------
    Case("reflection_marker_outside_code_dropped", dm(text="<thinking>plan</thinking> ok"),
         "drop:reflected assistant content"),
    Case("reflection_marker_inside_code_kept", dm(text="see `<thinking>` tags"), "dispatch"),
    Case("loop_breaker_trips_after_five_echoes", dm(text="new words"), "drop:loop breaker",
         prepare=lambda snap: [snap.loop.record(f"dm:{OWNER}", NOW - i) for i in range(5)]),
    Case("loop_breaker_is_per_conversation", dm(text="new words", sender=OTHER), "dispatch",
         prepare=lambda snap: [snap.loop.record(f"dm:{OWNER}", NOW - i) for i in range(5)]),
    Case("system_rows_are_not_user_text", dm(is_reaction=True), "drop:system event"),
    Case("missing_sender_dropped", dm(sender=""), "drop:missing sender"),
    Case("empty_body_dropped", dm(text="  "), "drop:empty body"),
    Case("attachment_only_without_include_attachments_dropped",
         dm(text="\ufffc", attachments=[{"original_path": "/x/a.jpg", "mime_type":
                                         "image/jpeg"}]), "drop:empty body"),
    Case("attachment_outside_roots_not_passed", dm(text="look", attachments=[
        {"original_path": "/etc/passwd", "mime_type": "text/plain"}]), "dispatch",
         {"dmPolicy": "open", "allowFrom": ["*"], "includeAttachments": True},
         check=envelope_has(media=[])),
    # --- DM policies ------------------------------------------------------------------------
    Case("dm_policy_disabled_drops", dm(), "drop:dm policy disabled", {"dmPolicy": "disabled"}),
    Case("dm_allowlist_drops_unknown_sender", dm(sender=STRANGER), "drop:not in allowFrom",
         {"dmPolicy": "allowlist", "allowFrom": [OWNER]}),
    Case("dm_allowlist_ignores_pairing_store", dm(sender=STRANGER), "drop:not in allowFrom",
         {"dmPolicy": "allowlist", "allowFrom": [OWNER]}, approved=frozenset({STRANGER})),
    Case("dm_pairing_store_admits_approved_sender", dm(sender=STRANGER), "dispatch",
         {"dmPolicy": "pairing"}, approved=frozenset({STRANGER})),
    Case("dm_allow_by_chat_id_entry", dm(sender=STRANGER, chat_id=12), "dispatch",
         {"dmPolicy": "allowlist", "allowFrom": ["chat_id:12"]}),
    Case("dm_allow_with_formatted_phone_entry", dm(sender="+15550001111"), "dispatch",
         {"dmPolicy": "allowlist", "allowFrom": ["sms:+1 (555) 000-1111"]}),
    Case("empty_allow_from_denies", dm(), "drop:not in allowFrom",
         {"dmPolicy": "allowlist", "allowFrom": ["chat_id:999"]}),
    # --- the reference's failure families (§8) -------------------------------------------
    Case("f1_bot_never_answers_its_own_outgoing_row", dm(is_from_me=True, text="my reply"),
         "drop:from me"),
    Case("f1_sender_equal_identifier_in_dm_is_not_mistaken_for_self_chat",
         dm(is_from_me=True, chat_identifier=OWNER, destination_caller_id=ME),
         "drop:from me"),
    Case("f2_group_dropped_by_registry_warns_once_at_default_level", grp(),
         "drop:not in groups registry", {**GROUP, "groups": {"7": {}}},
         check=lambda d: None if d.effects.warn and d.effects.warn[0] == "registry:99"
         else pytest.fail("no warning")),
    Case("f2_sender_allowlist_alone_decides_without_groups", grp(), "dispatch", GROUP),
    Case("f2_empty_group_allowlist_warns_once", grp(), "drop:group allowlist is empty",
         {"dmPolicy": "open", "allowFrom": ["*"], "groupAllowFrom": []},
         check=lambda d: None if d.effects.warn else pytest.fail("no warning")),
    Case("f2_two_person_group_reported_as_dm_handled_as_group",
         message(10, "@clawd hi", sender=OWNER, chat_id=55, is_group=False,
                 participants=[OWNER, OTHER], created_at=ISO_NOW), "dispatch",
         {**GROUP, "groups": {"55": {}}}, check=envelope_has(chat_type="group")),
    Case("f8_pairing_never_offered_to_ourselves_after_sender_repair",
         dm(sender=ME, chat_identifier=STRANGER, participants=[STRANGER]), "pair",
         {"dmPolicy": "pairing"},
         check=lambda d: None if isinstance(d, Pair) and d.sender == STRANGER
         else pytest.fail(str(d))),
    Case("f8_sender_equal_to_ourselves_with_no_repair_is_dropped",
         dm(sender=ME, chat_identifier=None, participants=[ME]), "drop:sender is ourselves",
         {"dmPolicy": "pairing"}),
    Case("f8_true_self_chat_never_challenged", self_chat(is_from_me=True), "drop:not in allow",
         {"dmPolicy": "pairing"}),
    Case("f10_control_character_prefix_stripped", dm(text="\n\x05hello"), "dispatch",
         check=envelope_has(text="hello")),
    Case("group_history_is_attached_and_filtered", grp(), "dispatch",
         {**GROUP, "contextVisibility": "allowlist"},
         prepare=lambda snap: setattr(snap, "history", lambda chat: [
             HistoryEntry(OTHER, "earlier", ISO_NOW, 8),
             HistoryEntry(STRANGER, "outsider", ISO_NOW, 9)]),
         check=lambda d: (body_contains("[Chat messages since your last reply - for context]",
                                        "earlier [id:8]",
                                        "[Current message - respond to this]")(d),
                          None if "outsider" not in d.envelope.body  # type: ignore[union-attr]
                          else pytest.fail("outsider history kept"))),
    Case("mention_gated_message_becomes_history", grp(text="no tag"), "drop:no mention",
         GROUP, check=lambda d: None if d.effects.history and
         d.effects.history.body == "no tag" else pytest.fail("no history")),
    Case("history_limit_zero_keeps_nothing", grp(text="no tag"), "drop:no mention",
         {**GROUP, "historyLimit": 0},
         check=lambda d: None if d.effects.history is None else pytest.fail("kept")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decision(case: Case, config_dir: Path) -> None:
    account = cfg(config_dir, case.config)
    snap = Snapshot(approved=case.approved)
    if case.prepare is not None:
        case.prepare(snap)
    decision = decide(parse_message(case.msg), account, snap, NOW)
    if case.expect == "dispatch":
        assert isinstance(decision, Dispatch), decision
    elif case.expect == "pair":
        assert isinstance(decision, Pair), decision
    else:
        fragment = case.expect.removeprefix("drop:")
        assert isinstance(decision, Drop), decision
        assert fragment in decision.reason, decision.reason
    if case.check is not None:
        case.check(decision)


def test_case_names_are_unique() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))


def test_decide_is_pure(config_dir: Path) -> None:
    """Deciding twice gives the same answer: nothing is remembered by ``decide`` itself."""
    account = cfg(config_dir, GROUP)
    snap = Snapshot()
    msg = parse_message(grp(text="no tag"))
    first, second = decide(msg, account, snap, NOW), decide(msg, account, snap, NOW)
    assert first == second
    assert snap.history(99) == ()
