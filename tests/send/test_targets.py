"""The target grammar: every accepted form, normalization, and a clear error for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imsg.errors import AmbiguousContact, ContactNotFound, InvalidInput, InvalidTarget
from imsg.send.targets import (
    ACCEPTED_FORMS,
    Target,
    direct_guid_target,
    parse_target,
    target_from_fields,
)
from imsg.sim.addressbook import SimAddressBook


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


@pytest.mark.parametrize("text", [f"chat_id:{2**63}", f"chat_id:{10**40}", "chat_id:１２"])
def test_chat_ids_beyond_sqlite_integers_are_invalid(text: str) -> None:
    with pytest.raises(InvalidTarget, match="Invalid chat id"):
        parse_target(text)
    assert parse_target(f"chat_id:{2**63 - 1}").value == str(2**63 - 1)
    with pytest.raises(InvalidTarget, match="Invalid chat id"):
        target_from_fields(chat_id=2**64)


@pytest.mark.parametrize(("guid", "expected"), [
    ("iMessage;-;+15555550123", Target("handle", "+15555550123", "imessage")),
    ("SMS;-;(555) 555-0123", Target("handle", "+15555550123", "sms")),
    ("any;-;Jane@Example.com", Target("handle", "jane@example.com", "auto")),
    ("any;+;chat123", None), ("iMessage;-;chat123", None), ("weird", None),
    ("Other;-;+15555550123", None),
])
def test_direct_guids_name_their_handle(guid: str, expected: Target | None) -> None:
    assert direct_guid_target(guid) == expected


@pytest.fixture
def addressbook(isolated_home: Path) -> SimAddressBook:
    book = SimAddressBook.create(str(isolated_home))
    book.add_contact(first="Jane", last="Appleseed", phones=["(555) 555-0123"],
                     emails=["jane@example.com"])
    book.add_contact(first="Mail", last="Only", emails=["Mail@Example.com"])
    book.add_contact(first="Sam", last="Twin", phones=["+15555550111"])
    book.add_contact(first="Sam", last="Twin", emails=["sam@work.example"])
    return book


def test_a_contact_name_resolves_to_its_first_phone_else_email(
        addressbook: SimAddressBook) -> None:
    assert target_from_fields(to="Jane Appleseed") == Target("handle", "+15555550123")
    assert target_from_fields(to="  jane   APPLESEED ", service="sms") == Target(
        "handle", "+15555550123", "sms")
    assert target_from_fields(to="Mail Only") == Target("handle", "mail@example.com")


def test_an_ambiguous_name_lists_the_candidates(addressbook: SimAddressBook) -> None:
    with pytest.raises(AmbiguousContact) as caught:
        target_from_fields(to="Sam Twin")
    assert "Sam Twin (+15555550111); Sam Twin (sam@work.example)" in str(caught.value)
    assert caught.value.exit_code == 2


def test_an_unknown_name_is_a_clear_error(addressbook: SimAddressBook) -> None:
    with pytest.raises(ContactNotFound, match=r"No contact named 'John Smith' \(give"):
        target_from_fields(to="John Smith")
    with pytest.raises(InvalidTarget, match="Invalid phone number"):
        target_from_fields(to="555")  # not a name: the grammar's own error stands
    with pytest.raises(InvalidTarget, match="Invalid target"):
        target_from_fields(to="imessage:Jane Appleseed")


def test_names_without_an_addressbook_say_why(isolated_home: Path) -> None:
    with pytest.raises(ContactNotFound, match="contacts are unavailable"):
        target_from_fields(to="Jane Appleseed")
