"""Contact names from simulated AddressBook stores: matching, names, resolving, caching, and
every way the stores can be missing, foreign, broken or busy."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from imsg.chatdb import contacts
from imsg.chatdb.contacts import ContactBook, ContactCandidate, contact_book, default_region
from imsg.errors import AmbiguousContact, ContactNotFound, InvalidTarget
from imsg.sim.addressbook import ROOT, SimAddressBook, fill_demo_contacts


@pytest.fixture(autouse=True)
def default_addressbook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMSG_ADDRESSBOOK_DIR", raising=False)


@pytest.fixture
def book(tmp_path: Path) -> SimAddressBook:
    return SimAddressBook.create_at(str(tmp_path / "AddressBook"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reader(book: SimAddressBook, region: str = "US",
           clock: Callable[[], float] = time.monotonic) -> ContactBook:
    return ContactBook(book.directory, region=region, clock=clock)


def eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# --- matching ----------------------------------------------------------------------------------


def test_demo_handles_get_their_names_across_sources(book: SimAddressBook) -> None:
    fill_demo_contacts(book)
    names = reader(book).names_for(["+15555550123", "bob@example.com", "+15555550188",
                                    "+15555550199", "+15555550142", "+15555550000"])
    assert names == {"+15555550123": "Alice Appleseed", "bob@example.com": "Bob",
                     "+15555550188": "Carol Chen", "+15555550199": "Luigi's Trattoria",
                     "+15555550142": "Jane Appleseed"}


@pytest.mark.parametrize("handle", [
    "+15555550123", "iMessage;-;+15555550123", "iMessage;+;+15555550123", "SMS;-;+15555550123",
    "SMS;+;+15555550123", "any;-;+15555550123", "any;+;+15555550123", "tel:+15555550123",
    "(555) 555-0123", "1-555-555-0123", "5555550123", " +1 555 555 0123 ",
])
def test_phones_match_after_e164_normalization(book: SimAddressBook, handle: str) -> None:
    book.add_contact(first="Alice", last="Appleseed", phones=["555.555.0123"])
    assert reader(book).name_for(handle) == "Alice Appleseed"


@pytest.mark.parametrize("handle", ["jane@example.com", "JANE@example.COM",
                                    "iMessage;-;Jane@Example.com", "mailto:jane@example.com"])
def test_emails_match_case_insensitively(book: SimAddressBook, handle: str) -> None:
    book.add_contact(first="Jane", emails=[" Jane@Example.com "])
    assert reader(book).name_for(handle) == "Jane"


def test_numbers_without_a_country_code_are_read_in_the_region(book: SimAddressBook) -> None:
    book.add_contact(first="Olivia", phones=["07700 900123"])
    book.add_contact(first="Sam", phones=["(555) 555-0123"])
    uk, us = reader(book, region="GB"), reader(book, region="US")
    assert uk.name_for("+447700900123") == "Olivia"
    assert us.name_for("+447700900123") is None
    # The same national digits in another country are another number.
    assert us.name_for("+445555550123") is None
    assert us.name_for("+15555550123") == "Sam"


def test_non_breaking_and_odd_characters_in_stored_numbers(book: SimAddressBook) -> None:
    book.add_contact(first="Nb", phones=["+1\u00a0(555)\u00a0555\u20110177"])
    assert reader(book).name_for("+15555550177") == "Nb"


def test_short_codes_match_on_their_digits(book: SimAddressBook) -> None:
    book.add_contact(organization="Bank Alerts", phones=["72-166"])
    contacts_ = reader(book)
    assert contacts_.name_for("72166") == "Bank Alerts"
    assert contacts_.name_for("7216") is None


@pytest.mark.parametrize("handle", ["", "   ", "iMessage;-;", "+", "@", "urn:biz:5555550123",
                                    "chat123456789", "a@b"])
def test_odd_handles_match_nothing_and_never_raise(book: SimAddressBook, handle: str) -> None:
    book.add_contact(first="Sam", phones=["+15555550123"], emails=["a@b.c"])
    assert reader(book).names_for([handle]) == {}


def test_first_store_wins_for_a_shared_handle(book: SimAddressBook) -> None:
    book.add_source("B-SOURCE")
    book.add_source("A-SOURCE")
    book.add_contact(first="Root", phones=["+15555550123"], source=ROOT)
    book.add_contact(first="From B", phones=["+15555550123"], source="B-SOURCE")
    book.add_contact(first="From A", phones=["+1 555 555 0123"], source="A-SOURCE")
    # Sources in sorted order (the default source's id is a UUID, after "A-"/"B-"), root last.
    assert reader(book).name_for("+15555550123") == "From A"


# --- names -------------------------------------------------------------------------------------


def test_name_rules(book: SimAddressBook) -> None:
    book.add_contact(first="Robert", last="Baker", nickname="Bob", phones=["+15555550101"])
    book.add_contact(first="  Ann ", last=None, phones=["+15555550102"])
    book.add_contact(last="Lee", phones=["+15555550103"])
    book.add_contact(first="Mary", last="Major", organization="Acme", phones=["+15555550104"])
    book.add_contact(organization="Acme Plumbing", phones=["+15555550105"])
    book.add_contact(phones=["+15555550106"])  # no name at all
    names = reader(book).names_for([f"+1555555010{i}" for i in range(1, 7)])
    assert names == {"+15555550101": "Bob", "+15555550102": "Ann", "+15555550103": "Lee",
                     "+15555550104": "Mary Major", "+15555550105": "Acme Plumbing"}


def test_minimal_schemas_without_nickname_or_organization(tmp_path: Path) -> None:
    store = tmp_path / "AB" / "AddressBook-v22.abcddb"
    store.parent.mkdir()
    with sqlite3.connect(store) as conn:
        conn.executescript("""
            CREATE TABLE ZABCDRECORD (Z_PK INTEGER PRIMARY KEY, ZFIRSTNAME VARCHAR,
                                      ZLASTNAME VARCHAR);
            CREATE TABLE ZABCDPHONENUMBER (Z_PK INTEGER PRIMARY KEY, ZOWNER INTEGER,
                                           ZFULLNUMBER VARCHAR);
            INSERT INTO ZABCDRECORD VALUES (1, 'Grace', 'Hopper');
            INSERT INTO ZABCDPHONENUMBER VALUES (1, 1, '+1 555 555 0100');
        """)
    book = ContactBook(str(tmp_path / "AB"), region="US")
    assert book.name_for("+15555550100") == "Grace Hopper"
    assert book.available()


# --- resolving names ---------------------------------------------------------------------------


def test_resolve_matches_full_name_nickname_and_shown_name(book: SimAddressBook) -> None:
    fill_demo_contacts(book)
    contacts_ = reader(book)
    alice = [ContactCandidate("Alice Appleseed", ("+15555550123", "alice@example.com"))]
    assert contacts_.resolve("alice appleseed") == alice
    assert contacts_.resolve("  ALICE   Appleseed ") == alice
    bob = [ContactCandidate("Bob", ("bob@example.com",))]
    assert contacts_.resolve("bob") == bob
    assert contacts_.resolve("Robert Baker") == bob
    assert contacts_.resolve("luigi's trattoria") == [
        ContactCandidate("Luigi's Trattoria", ("+15555550199",))]
    assert contacts_.resolve("Alice") == []
    assert contacts_.resolve("") == []
    assert contacts_.resolve_one("Carol Chen").handles == ("+15555550188",)


def test_one_person_on_two_accounts_is_one_candidate(book: SimAddressBook) -> None:
    other = book.add_source()
    book.add_contact(first="Jane", last="Appleseed", phones=["(555) 555-0123"])
    book.add_contact(first="Jane", last="Appleseed", phones=["+1 555 555 0123"],
                     emails=["jane@example.com"], source=other)
    assert reader(book).resolve_one("jane appleseed") == ContactCandidate(
        "Jane Appleseed", ("+15555550123", "jane@example.com"))


def test_two_people_with_one_name_are_ambiguous(book: SimAddressBook) -> None:
    book.add_contact(first="Jane", last="Appleseed", phones=["+15555550123"])
    book.add_contact(first="Jane", last="Appleseed", emails=["jane@work.example"])
    book.add_contact(first="Jane", last="Appleseed")  # no handle: never a candidate
    with pytest.raises(AmbiguousContact) as caught:
        reader(book).resolve_one("Jane Appleseed")
    error = caught.value
    assert isinstance(error, InvalidTarget) and error.rpc_code == -32602 and error.exit_code == 2
    assert "Jane Appleseed (+15555550123); Jane Appleseed (jane@work.example)" in str(error)
    assert error.candidates == [("Jane Appleseed", ("+15555550123",)),
                                ("Jane Appleseed", ("jane@work.example",))]


def test_unknown_name_and_unavailable_contacts(book: SimAddressBook, tmp_path: Path) -> None:
    book.add_contact(first="Jane", phones=["+15555550123"])
    with pytest.raises(ContactNotFound, match=r"No contact named 'Nobody' \(give"):
        reader(book).resolve_one("Nobody")
    with pytest.raises(ContactNotFound, match=r"contacts are unavailable .*no AddressBook-v22"):
        ContactBook(str(tmp_path / "nowhere"), region="US").resolve_one("Jane")


def test_resolve_sees_changes_at_once(book: SimAddressBook) -> None:
    contacts_ = reader(book)
    assert contacts_.resolve("Zed") == []
    book.add_contact(first="Zed", phones=["+15555550999"])
    assert contacts_.resolve("zed") == [ContactCandidate("Zed", ("+15555550999",))]


# --- availability and failures -----------------------------------------------------------------


def test_no_directory_means_no_names(tmp_path: Path) -> None:
    contacts_ = ContactBook(str(tmp_path / "missing"), region="US")
    assert contacts_.names_for(["+15555550123"]) == {}
    assert not contacts_.available()
    status = contacts_.status()
    assert not status.available and status.stores == 0
    assert status.problems == (f"no AddressBook-v22.abcddb in {tmp_path / 'missing'}",)


def test_a_newer_store_version_makes_contacts_unavailable(book: SimAddressBook) -> None:
    book.add_contact(first="Jane", phones=["+15555550123"])
    Path(book.directory, "Sources", "NEW").mkdir()
    Path(book.directory, "Sources", "NEW", "AddressBook-v23.abcddb").write_bytes(b"")
    contacts_ = reader(book)
    assert contacts_.names_for(["+15555550123"]) == {}
    assert not contacts_.available()
    assert "AddressBook-v23.abcddb" in contacts_.status().problems[0]


def test_older_stores_beside_v22_are_ignored(book: SimAddressBook) -> None:
    book.add_contact(first="Jane", phones=["+15555550123"])
    Path(book.directory, "AddressBook-v21.abcddb").write_bytes(b"not read")
    assert reader(book).name_for("+15555550123") == "Jane"


@pytest.mark.parametrize("damage", ["not sqlite", "no tables"])
def test_a_broken_store_is_skipped_and_reported(book: SimAddressBook, damage: str) -> None:
    book.add_contact(first="Jane", phones=["+15555550123"])
    broken = Path(book.directory, "Sources", "BROKEN", "AddressBook-v22.abcddb")
    broken.parent.mkdir()
    if damage == "not sqlite":
        broken.write_bytes(b"this is not a database, just some bytes" * 200)
    else:
        sqlite3.connect(broken).close()
    contacts_ = reader(book)
    assert contacts_.name_for("+15555550123") == "Jane"
    status = contacts_.status()
    assert status.available and status.stores == 2 and status.contacts == 1
    assert len(status.problems) == 1 and status.problems[0].startswith(str(broken))


def test_only_broken_stores_mean_unavailable(tmp_path: Path) -> None:
    store = tmp_path / "AB" / "AddressBook-v22.abcddb"
    store.parent.mkdir()
    store.write_bytes(b"garbage" * 1000)
    contacts_ = ContactBook(str(tmp_path / "AB"), region="US")
    assert contacts_.names_for(["+15555550123"]) == {}
    assert not contacts_.available()
    with pytest.raises(ContactNotFound, match="contacts are unavailable"):
        contacts_.resolve_one("Jane")


def test_reading_never_writes_the_stores(book: SimAddressBook) -> None:
    fill_demo_contacts(book)
    before = {path: hashlib.sha256(Path(path).read_bytes()).hexdigest()
              for path in book.sources.values()}
    contacts_ = reader(book)
    contacts_.names_for(["+15555550123"])
    contacts_.resolve("Bob")
    contacts_.refresh()
    assert before == {path: hashlib.sha256(Path(path).read_bytes()).hexdigest()
                      for path in book.sources.values()}


def test_a_busy_store_keeps_the_last_good_names(book: SimAddressBook) -> None:
    path = book.path()
    book.add_contact(first="Jane", phones=["+15555550123"])
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")  # so a writer can lock readers out
    contacts_ = reader(book)
    assert contacts_.name_for("+15555550123") == "Jane"
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        writer.execute("UPDATE ZABCDRECORD SET ZFIRSTNAME = 'Janet' WHERE ZFIRSTNAME = 'Jane'")
        contacts_.refresh()
        assert contacts_.name_for("+15555550123") == "Jane"
        assert any("locked" in problem for problem in contacts_.status().problems)
        writer.execute("COMMIT")
    finally:
        writer.close()
    contacts_.refresh()
    assert contacts_.name_for("+15555550123") == "Janet"
    assert contacts_.status().problems == ()


# --- batching and caching ----------------------------------------------------------------------


def test_one_read_per_store_however_many_lookups(book: SimAddressBook,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fill_demo_contacts(book)
    reads: list[str] = []
    real = contacts._read_store

    def counting(path: str) -> tuple[object, ...]:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(contacts, "_read_store", counting)
    contacts_ = reader(book)
    handles = [f"+1555555{n:04d}" for n in range(300)] + ["bob@example.com"]
    assert len(contacts_.names_for(handles)) == 5
    assert len(contacts_.names_for(handles)) == 5
    assert sorted(reads) == sorted(book.sources.values())


def test_changes_are_picked_up_in_the_background(book: SimAddressBook) -> None:
    clock = Clock()
    contacts_ = reader(book, clock=clock)
    assert contacts_.names_for(["+15555550123"]) == {}
    book.add_contact(first="New", phones=["+15555550123"])
    # Within the check interval the catalog is not even looked at again.
    assert contacts_.names_for(["+15555550123"]) == {}

    def seen() -> bool:
        clock.now += contacts.CHECK_INTERVAL_S
        return contacts_.names_for(["+15555550123"]) == {"+15555550123": "New"}

    assert eventually(seen)


def test_the_ttl_rereads_what_the_file_signature_cannot_see(book: SimAddressBook) -> None:
    path = book.path()
    book.add_contact(first="Alice", phones=["+15555550123"])
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    clock = Clock()
    contacts_ = reader(book, clock=clock)
    assert contacts_.name_for("+15555550123") == "Alice"
    stat = os.stat(path)
    with sqlite3.connect(path, isolation_level=None) as conn:  # same size, old mtime
        conn.execute("UPDATE ZABCDRECORD SET ZFIRSTNAME = 'Alicf' WHERE ZFIRSTNAME = 'Alice'")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(path).st_size == stat.st_size
    clock.now += contacts.CHECK_INTERVAL_S
    contacts_.name_for("+15555550123")
    assert contacts_._background is not None
    contacts_._background.join(10)
    assert contacts_.name_for("+15555550123") == "Alice"

    def reread() -> bool:
        clock.now += contacts.TTL_S
        return contacts_.name_for("+15555550123") == "Alicf"

    assert eventually(reread)


def test_wait_false_never_blocks_on_the_first_load(book: SimAddressBook) -> None:
    book.add_contact(first="Jane", phones=["+15555550123"])
    contacts_ = reader(book)
    assert contacts_.names_for(["+15555550123"], wait=False) == {}
    assert eventually(lambda: contacts_.name_for("+15555550123", wait=False) == "Jane")
    assert contacts_.available(wait=False)


def test_status_never_loads_in_the_callers_thread(book: SimAddressBook) -> None:
    book.add_contact(first="Jane", phones=["+15555550123"])
    contacts_ = reader(book)
    first = contacts_.status()
    assert first.problems == ("loading",) or first.available
    assert eventually(lambda: contacts_.status().available)
    assert contacts_.status().contacts == 1


def test_process_wide_books_and_the_directory_override(book: SimAddressBook,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    book.add_contact(first="Jane", phones=["+15555550123"])
    monkeypatch.setenv("IMSG_ADDRESSBOOK_DIR", book.directory)
    shared = contact_book(region="US")
    assert shared is contact_book(region="us")
    assert shared is contact_book(book.directory, "US")
    assert shared.directory == book.directory
    assert shared.name_for("+15555550123") == "Jane"
    assert contact_book(region="GB") is not shared


@pytest.mark.parametrize(("lang", "region"), [("en_GB.UTF-8", "GB"), ("de_DE", "DE"),
                                              ("C.UTF-8", "US"), ("", "US"), ("xx_QQ", "US")])
def test_default_region_follows_the_locale(monkeypatch: pytest.MonkeyPatch, lang: str,
                                           region: str) -> None:
    for name in ("LC_ALL", "LC_CTYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", lang)
    assert default_region() == region
