"""The simulated AddressBook: Apple's v22 tables, Contacts' layout and row habits, the CLI."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from imsg.cli import main
from imsg.sim.addressbook import (
    CONTACT,
    CONTAINER,
    ROOT,
    STORE_NAME,
    SimAddressBook,
    home_addressbook,
    home_of_database,
)


@pytest.fixture(autouse=True)
def default_addressbook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMSG_ADDRESSBOOK_DIR", raising=False)


def rows(path: str, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def test_layout_is_a_root_store_and_source_stores(tmp_path: Path) -> None:
    book = SimAddressBook.create(str(tmp_path))
    second = book.add_source("SECOND")
    directory = tmp_path / "Library" / "Application Support" / "AddressBook"
    assert book.directory == str(directory)
    assert book.path(ROOT) == str(directory / STORE_NAME)
    assert book.path(second) == str(directory / "Sources" / "SECOND" / STORE_NAME)
    assert os.path.dirname(os.path.dirname(book.path())) == str(directory / "Sources")
    for path in book.sources.values():
        assert rows(path, "PRAGMA journal_mode") == [("wal",)]
        assert rows(path, "SELECT Z_ENT FROM ZABCDRECORD") == [(CONTAINER,)]


def test_contact_rows_are_shaped_like_contacts_writes_them(tmp_path: Path) -> None:
    book = SimAddressBook.create(str(tmp_path))
    pk = book.add_contact(first="Jane", last="Appleseed", nickname="JJ",
                          phones=["(555) 555-0123", "+44 7700 900123"],
                          emails=["Jane@Example.com"])
    path = book.path()
    assert rows(path, "SELECT Z_ENT, ZFIRSTNAME, ZLASTNAME, ZNICKNAME, ZCONTAINER1, ZDISPLAYFLAGS"
                      f" FROM ZABCDRECORD WHERE Z_PK = {pk}") == [
        (CONTACT, "Jane", "Appleseed", "JJ", 1, 0)]
    assert rows(path, "SELECT ZOWNER, Z22_OWNER, ZFULLNUMBER, ZLASTFOURDIGITS, ZISPRIMARY,"
                      " ZORDERINGINDEX, ZLABEL FROM ZABCDPHONENUMBER ORDER BY Z_PK") == [
        (pk, CONTACT, "(555) 555-0123", "0123", 1, 0, "_$!<Mobile>!$_"),
        (pk, CONTACT, "+44 7700 900123", "0123", 0, 1, "_$!<Mobile>!$_")]
    assert rows(path, "SELECT ZOWNER, ZADDRESS, ZADDRESSNORMALIZED FROM ZABCDEMAILADDRESS") == [
        (pk, "Jane@Example.com", "jane@example.com")]
    # Core Data's key table tracks the highest key of each entity tree.
    assert rows(path, "SELECT Z_ENT, Z_MAX FROM Z_PRIMARYKEY WHERE Z_ENT IN (11, 15, 17)"
                      " ORDER BY Z_ENT") == [(11, 1), (15, 2), (17, pk)]


def test_company_cards_and_the_root_store(tmp_path: Path) -> None:
    book = SimAddressBook.create(str(tmp_path))
    pk = book.add_contact(organization="Acme", phones=["+15555550100"], source=ROOT)
    assert rows(book.path(ROOT), f"SELECT ZORGANIZATION, ZDISPLAYFLAGS FROM ZABCDRECORD"
                                 f" WHERE Z_PK = {pk}") == [("Acme", 1)]


def test_tables_carry_apples_column_names(tmp_path: Path) -> None:
    book = SimAddressBook.create(str(tmp_path))
    columns = {table: {r[1] for r in rows(book.path(), f"PRAGMA table_info({table})")}
               for table in ("ZABCDRECORD", "ZABCDPHONENUMBER", "ZABCDEMAILADDRESS")}
    assert {"Z_PK", "Z_ENT", "Z_OPT", "ZNICKNAME", "ZFIRSTNAME", "ZLASTNAME", "ZORGANIZATION",
            "ZUNIQUEID", "ZCONTAINER1"} <= columns["ZABCDRECORD"]
    assert {"ZOWNER", "Z22_OWNER", "ZFULLNUMBER", "ZLASTFOURDIGITS"} <= columns[
        "ZABCDPHONENUMBER"]
    assert {"ZOWNER", "ZADDRESS", "ZADDRESSNORMALIZED"} <= columns["ZABCDEMAILADDRESS"]


def test_refuses_to_overwrite_and_unknown_sources(tmp_path: Path) -> None:
    book = SimAddressBook.create(str(tmp_path))
    with pytest.raises(FileExistsError):
        SimAddressBook.create(str(tmp_path))
    with pytest.raises(KeyError):
        book.add_contact(first="X", source="nope")


def test_home_of_database(tmp_path: Path, isolated_home: Path) -> None:
    fake_home = tmp_path / "someone"
    assert home_of_database(str(fake_home / "Library" / "Messages" / "chat.db")) == str(fake_home)
    assert home_of_database(str(tmp_path / "chat.db")) == str(isolated_home)


def test_sim_init_contacts_into_a_directory(tmp_path: Path) -> None:
    from imsg.chatdb.contacts import ContactBook

    db, directory = tmp_path / "chat.db", tmp_path / "AB"
    result = CliRunner().invoke(main, ["sim", "init", str(db), "--demo", "--contacts",
                                       str(directory)])
    assert result.exit_code == 0, result.output
    assert (directory / STORE_NAME).is_file()
    names = ContactBook(str(directory)).names_for(["+15555550123", "bob@example.com",
                                                   "+15555550188"])
    assert names == {"+15555550123": "Alice Appleseed", "bob@example.com": "Bob",
                     "+15555550188": "Carol Chen"}
    again = CliRunner().invoke(main, ["sim", "init", str(tmp_path / "other.db"), "--contacts",
                                      str(directory)])
    assert again.exit_code != 0 and "already has an address book" in again.output
    assert not (tmp_path / "other.db").exists()


def test_sim_init_contacts_into_the_home_of_the_database(tmp_path: Path,
                                                         isolated_home: Path) -> None:
    from imsg.chatdb.contacts import ContactBook

    home = tmp_path / "user"
    db = home / "Library" / "Messages" / "chat.db"
    db.parent.mkdir(parents=True)
    assert CliRunner().invoke(main, ["sim", "init", str(db), "--contacts"]).exit_code == 0
    assert ContactBook(home_addressbook(str(home))).name_for("+15555550188") == "Carol Chen"
    # Elsewhere it goes to $HOME, which is where the reader looks by default.
    assert CliRunner().invoke(main, ["sim", "init", str(tmp_path / "x.db"),
                                     "--contacts"]).exit_code == 0
    assert ContactBook().name_for("+15555550123") == "Alice Appleseed"
    assert ContactBook().directory == home_addressbook(str(isolated_home))
