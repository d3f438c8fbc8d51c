"""The target grammar: every accepted form, normalization, and a clear error for the rest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imsg.errors import InvalidInput, InvalidTarget
from imsg.send.targets import ACCEPTED_FORMS, Target, parse_target, target_from_fields


@pytest.mark.parametrize(("text", "expected"), [
    ("chat_id:42", Target("chat_id", "42")),
    ("chat_id: 007", Target("chat_id", "7")),
    ("CHAT_ID:3", Target("chat_id", "3")),
    ("chat_guid:any;+;chat123456", Target("chat_guid", "any;+;chat123456")),
    ("chat_identifier:chat123456", Target("chat_identifier", "chat123456")),
    ("chat_identifier:+15555550123", Target("chat_identifier", "+15555550123")),
    ("+1 (555) 555-0123", Target("handle", "+15555550123")),
    ("555.555.0123", Target("handle", "+15555550123")),
    ("tel:+1-555-555-0123", Target("handle", "+15555550123")),
    ("+44 20 7946 0958", Target("handle", "+442079460958")),
    ("Bob@Example.COM", Target("handle", "bob@example.com")),
    ("imessage:bob@example.com", Target("handle", "bob@example.com", "imessage")),
    ("sms:5555550123", Target("handle", "+15555550123", "sms")),
    ("SMS:5555550123", Target("handle", "+15555550123", "sms")),
    ("auto:+15555550123", Target("handle", "+15555550123", "auto")),
])
def test_accepted_forms(text: str, expected: Target) -> None:
    assert parse_target(text) == expected


def test_region_reads_national_numbers() -> None:
    assert parse_target("020 7946 0958", region="GB").value == "+442079460958"
    assert parse_target("020 7946 0958", region="gb").value == "+442079460958"


def test_service_applies_to_handles_and_prefix_must_agree() -> None:
    assert parse_target("+15555550123", service="sms").service == "sms"
    assert parse_target("auto:+15555550123", service="sms").service == "sms"
    assert parse_target("sms:+15555550123", service="sms").service == "sms"
    with pytest.raises(InvalidTarget, match="pins sms but the service is imessage"):
        parse_target("sms:+15555550123", service="imessage")


@pytest.mark.parametrize("text", [
    "John Smith", "alice", "", "   ", "mailto:a@b.com", "a@b", "iMessage;-;+15555550123",
    "imessage:", "imessage:John",
])
def test_rejected_targets_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(InvalidTarget) as err:
        parse_target(text)
    assert ACCEPTED_FORMS in str(err.value) or "Empty" in str(err.value)


@pytest.mark.parametrize("text", ["123", "+1555", "tel:abc", "tel:+1 555"])
def test_impossible_phone_numbers(text: str) -> None:
    with pytest.raises(InvalidTarget, match="Invalid phone number"):
        parse_target(text)


@pytest.mark.parametrize("text", ["chat_id:0", "chat_id:-3", "chat_id:abc", "chat_id:",
                                  "chat_guid:", "chat_identifier:  "])
def test_bad_chat_targets(text: str) -> None:
    with pytest.raises(InvalidTarget):
        parse_target(text)


def test_bad_service_and_region() -> None:
    with pytest.raises(InvalidInput, match="Invalid service: iMessage"):
        parse_target("+15555550123", service="iMessage")
    with pytest.raises(InvalidInput, match="Invalid region"):
        parse_target("+15555550123", region="XX")


@given(st.text(alphabet=st.characters(blacklist_categories=("Nd",), blacklist_characters="@:")))
def test_a_value_without_digits_is_never_a_phone(text: str) -> None:
    with pytest.raises(InvalidTarget):
        parse_target(text)


def test_exactly_one_field() -> None:
    assert target_from_fields(chat_id=5) == Target("chat_id", "5")
    assert target_from_fields(chat_guid="any;+;chat1") == Target("chat_guid", "any;+;chat1")
    assert target_from_fields(chat_identifier="chat1") == Target("chat_identifier", "chat1")
    assert target_from_fields(to="sms:5555550123") == Target("handle", "+15555550123", "sms")
    with pytest.raises(InvalidTarget, match=r"exactly one target.*\(got none\)"):
        target_from_fields()
    with pytest.raises(InvalidTarget, match=r"\(got to and chat_id\)"):
        target_from_fields(to="+15555550123", chat_id=5)
    with pytest.raises(InvalidInput, match="Invalid service"):
        target_from_fields(chat_id=5, service="bogus")
