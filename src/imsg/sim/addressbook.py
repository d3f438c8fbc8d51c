"""Write macOS AddressBook stores (``AddressBook-v22.abcddb``) the way Contacts lays them out.

A Mac keeps one Core Data SQLite store per contacts account under
``~/Library/Application Support/AddressBook/Sources/<source id>/AddressBook-v22.abcddb`` and one
more in the ``AddressBook`` directory itself (usually nearly empty). ``SimAddressBook`` writes
that tree so the read-only reader (``imsg.chatdb.contacts``) is tested on any OS::

    book = SimAddressBook.create(home)            # <home>/Library/Application Support/AddressBook
    book.add_contact(first="Jane", last="Appleseed", phones=["(555) 555-0123"])
    work = book.add_source()                      # a second account store
    book.add_contact(nickname="Bobby", emails=["Bob@Example.com"], source=work)

**Where the DDL comes from.** The tables below are the ones macOS 26 creates in a v22 store, as
published ``.schema`` captures of real files show them (column names, types and order as
SQLite reports them), with Core Data's entity numbers of that model (``Z_PRIMARYKEY``: 22
ABCDContact, 19 ABCDGroup, 25 CNCDContainer, 15 ABCDPhoneNumber, 11 ABCDEmailAddress…). Written
here: ``Z_PRIMARYKEY``, ``ZABCDRECORD`` (every column), the multi-value tables
``ZABCDPHONENUMBER``, ``ZABCDEMAILADDRESS``, ``ZABCDPOSTALADDRESS``, ``ZABCDURLADDRESS``, and
``ZABCDNOTE`` and ``Z_22PARENTGROUPS``. Omitted: the other multi-value tables (social
profiles, messaging addresses, related names, dates, likenesses, custom properties…), Core
Data's ``Z_METADATA``/``Z_MODELCACHE`` bookkeeping, and indexes (the captures have none).

Rows are written as Contacts writes them: a container record (``Z_ENT`` 25) per store, each
contact a ``ZABCDRECORD`` row with ``Z_ENT`` 22 in that container, phones and emails as rows
owned by it (``ZOWNER``/``Z22_OWNER``) with labels in Apple's ``_$!<Mobile>!$_`` form, and
``Z_PRIMARYKEY.Z_MAX`` kept current. The stores are in WAL mode like the real ones. Numbers
are stored exactly as given (Contacts keeps what the user typed), so tests can check that the
reader normalizes them.

Failure modes: creating a store where one exists raises ``FileExistsError``; an unknown
``source`` raises ``KeyError``.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Sequence
from contextlib import closing

ADDRESSBOOK_SUBDIR = os.path.join("Library", "Application Support", "AddressBook")
STORE_NAME = "AddressBook-v22.abcddb"
ROOT = ""  # the source id of the store in the AddressBook directory itself

CONTACT, CONTAINER = 22, 25
_RECORD, _PHONE, _EMAIL = 17, 15, 11
_ENTITIES = (  # (Z_ENT, Z_NAME, Z_SUPER) of the tables written here
    (11, "ABCDEmailAddress", 0),
    (14, "ABCDNote", 0),
    (15, "ABCDPhoneNumber", 0),
    (16, "ABCDPostalAddress", 0),
    (17, "ABCDRecord", 0),
    (18, "ABCDAbstractGroup", 17),
    (19, "ABCDGroup", 18),
    (22, "ABCDContact", 17),
    (25, "CNCDContainer", 17),
    (31, "ABCDURLAddress", 0),
)
_APPLE_EPOCH = 978307200  # 2001-01-01T00:00:00Z, Core Data's TIMESTAMP zero

_MULTI_VALUE_HEAD = (
    "Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, ZIOSLEGACYIDENTIFIER INTEGER, "
    "ZISPRIMARY INTEGER, ZISPRIVATE INTEGER, ZORDERINGINDEX INTEGER, ZOWNER INTEGER, "
    "Z22_OWNER INTEGER"
)
_RECORD_COLUMNS = """
    Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, ZCREATIONDATEYEAR INTEGER,
    ZDISPLAYFLAGS INTEGER, ZIOSLEGACYIDENTIFIER INTEGER, ZMODIFICATIONDATEYEAR INTEGER,
    ZSYNCSTATUS INTEGER, ZCONTAINER INTEGER, ZEXTERNALGROUPBEHAVIOR INTEGER,
    ZBIRTHDAYYEAR INTEGER, ZPREFERREDFORLINKNAME INTEGER, ZPREFERREDFORLINKPHOTO INTEGER,
    ZPRIVACYFLAGS INTEGER, ZCONTACTINDEX INTEGER, ZCONTAINER1 INTEGER,
    ZCONTAINERWHERECONTACTISME INTEGER, ZLUNARBIRTHDAYCOMPONENTS INTEGER, ZNOTE INTEGER,
    ZASSISTANTSYNCANCHOR INTEGER, ZSHARECOUNT INTEGER, ZSYNCCOUNT INTEGER, ZVERSION INTEGER,
    ZCONTAINER2 INTEGER, ZGUARDIANFLAGS INTEGER, ZISALL INTEGER, ZTYPE INTEGER, ZINFO INTEGER,
    ZME INTEGER, Z22_ME INTEGER, ZPROVIDERMETADATA INTEGER, ZCREATIONDATE TIMESTAMP,
    ZCREATIONDATEYEARLESS FLOAT, ZMODIFICATIONDATE TIMESTAMP, ZMODIFICATIONDATEYEARLESS FLOAT,
    ZBIRTHDAY TIMESTAMP, ZBIRTHDAYYEARLESS FLOAT, ZIMAGESYNCFAILEDTIME TIMESTAMP,
    ZWALLPAPERSYNCFAILEDTIME TIMESTAMP, ZLASTSYNCDATE TIMESTAMP, ZEXTERNALCOLLECTIONPATH VARCHAR,
    ZEXTERNALFILENAME VARCHAR, ZEXTERNALHASH VARCHAR, ZEXTERNALIMAGEURI VARCHAR,
    ZEXTERNALMODIFICATIONTAG VARCHAR, ZEXTERNALURI VARCHAR, ZEXTERNALUUID VARCHAR,
    ZUNIQUEID VARCHAR, ZNAME VARCHAR, ZNAMENORMALIZED VARCHAR, ZTMPREMOTELOCATION VARCHAR,
    ZCROPRECT VARCHAR, ZCROPRECTID VARCHAR, ZDEPARTMENT VARCHAR, ZDOWNTIMEWHITELIST VARCHAR,
    ZFIRSTNAME VARCHAR, ZIDENTITYUNIQUEID VARCHAR, ZIMAGEREFERENCE VARCHAR, ZIMAGETYPE VARCHAR,
    ZJOBTITLE VARCHAR, ZLASTNAME VARCHAR, ZLINKID VARCHAR, ZMAIDENNAME VARCHAR,
    ZMIDDLENAME VARCHAR, ZNICKNAME VARCHAR, ZORGANIZATION VARCHAR, ZPHONEMEDATA VARCHAR,
    ZPHONETICFIRSTNAME VARCHAR, ZPHONETICLASTNAME VARCHAR, ZPHONETICMIDDLENAME VARCHAR,
    ZPHONETICORGANIZATION VARCHAR, ZPREFERREDAPPLEPERSONAIDENTIFIER VARCHAR,
    ZPREFERREDLIKENESSSOURCE VARCHAR, ZSORTINGFIRSTNAME VARCHAR, ZSORTINGLASTNAME VARCHAR,
    ZSUFFIX VARCHAR, ZTITLE VARCHAR, ZTMPHOMEPAGE VARCHAR, ZWALLPAPERURI VARCHAR,
    ZASSISTANTVALIDITY VARCHAR, ZCREATEDVERSION VARCHAR, ZLASTDOTMACACCOUNT VARCHAR,
    ZLASTSAVEDVERSION VARCHAR, ZSYNCANCHOR VARCHAR, ZEXTERNALIDENTIFIER VARCHAR, ZNAME1 VARCHAR,
    ZPROVIDERIDENTIFIER VARCHAR, ZREMOTELOCATION VARCHAR, ZSERIALNUMBER VARCHAR,
    ZEXTERNALREPRESENTATION BLOB, ZMODIFIEDUNIQUEIDSDATA BLOB, ZSEARCHELEMENTDATA BLOB,
    ZAVATARRECIPEDATA BLOB, ZCROPRECTHASH BLOB, ZIMAGEDATA BLOB, ZIMAGEHASH BLOB,
    ZMEMOJIMETADATA BLOB, ZSENSITIVECONTENTCONFIGURATION BLOB, ZTHUMBNAILIMAGEDATA BLOB,
    ZWALLPAPER BLOB
"""
DDL = f"""
CREATE TABLE Z_PRIMARYKEY (Z_ENT INTEGER PRIMARY KEY, Z_NAME VARCHAR, Z_SUPER INTEGER,
    Z_MAX INTEGER);
CREATE TABLE ZABCDRECORD ({_RECORD_COLUMNS});
CREATE TABLE Z_22PARENTGROUPS (Z_22CONTACTS INTEGER, Z_19PARENTGROUPS1 INTEGER,
    PRIMARY KEY (Z_22CONTACTS, Z_19PARENTGROUPS1));
CREATE TABLE ZABCDNOTE (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
    ZCONTACT INTEGER, Z22_CONTACT INTEGER, ZTEXT VARCHAR, ZRICHTEXTDATA BLOB);
CREATE TABLE ZABCDPHONENUMBER ({_MULTI_VALUE_HEAD}, ZAREACODE VARCHAR, ZCOUNTRYCODE VARCHAR,
    ZEXTENSION VARCHAR, ZFULLNUMBER VARCHAR, ZLABEL VARCHAR, ZLASTFOURDIGITS VARCHAR,
    ZLOCALNUMBER VARCHAR, ZUNIQUEID VARCHAR);
CREATE TABLE ZABCDEMAILADDRESS ({_MULTI_VALUE_HEAD}, ZADDRESS VARCHAR,
    ZADDRESSNORMALIZED VARCHAR, ZLABEL VARCHAR, ZUNIQUEID VARCHAR);
CREATE TABLE ZABCDPOSTALADDRESS ({_MULTI_VALUE_HEAD}, ZCITY VARCHAR, ZCOUNTRYCODE VARCHAR,
    ZCOUNTRYNAME VARCHAR, ZLABEL VARCHAR, ZREGION VARCHAR, ZSAMA VARCHAR, ZSTATE VARCHAR,
    ZSTREET VARCHAR, ZSUBLOCALITY VARCHAR, ZUNIQUEID VARCHAR, ZZIPCODE VARCHAR,
    ZCUSTOMVALUESDICTIONARY BLOB);
CREATE TABLE ZABCDURLADDRESS ({_MULTI_VALUE_HEAD}, ZLABEL VARCHAR, ZUNIQUEID VARCHAR,
    ZURL VARCHAR);
"""
PHONE_LABEL = "_$!<Mobile>!$_"
EMAIL_LABEL = "_$!<Home>!$_"


def home_addressbook(home: str) -> str:
    """The AddressBook directory of the user whose home is ``home``."""
    return os.path.join(home, ADDRESSBOOK_SUBDIR)


def home_of_database(path: str) -> str:
    """The home of the user a chat.db belongs to: ``<home>`` for ``<home>/Library/Messages/
    chat.db`` (a simulated home), else the current user's ``$HOME``."""
    messages = os.path.dirname(os.path.abspath(path))
    library = os.path.dirname(messages)
    if os.path.basename(messages) == "Messages" and os.path.basename(library) == "Library":
        return os.path.dirname(library)
    return os.path.expanduser("~")


def create_store(path: str) -> None:
    """Create an empty v22 store at ``path`` (its directory is made), with its container row.

    Raises ``FileExistsError`` if ``path`` exists."""
    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(DDL)
        conn.executemany(
            "INSERT INTO Z_PRIMARYKEY (Z_ENT, Z_NAME, Z_SUPER, Z_MAX) VALUES (?, ?, ?, 0)",
            _ENTITIES,
        )
        with conn:
            _insert(conn, "ZABCDRECORD", _RECORD, {
                "Z_ENT": CONTAINER, "Z_OPT": 1, "ZTYPE": 0,
                "ZUNIQUEID": f"{_uid()}:ABContainer", "ZCREATIONDATE": _core_data_now(),
            })


class SimAddressBook:
    """An AddressBook directory with a root store and any number of source stores."""

    def __init__(self, directory: str) -> None:
        self.directory = os.path.abspath(directory)
        self.sources: dict[str, str] = {}  # source id -> store path, in creation order
        self.default_source = ROOT

    @classmethod
    def create(cls, home: str) -> SimAddressBook:
        """The AddressBook of the user whose home is ``home``: see ``create_at``."""
        return cls.create_at(home_addressbook(home))

    @classmethod
    def create_at(cls, directory: str) -> SimAddressBook:
        """A new root store in ``directory`` plus one source store, where contacts go unless
        told otherwise (as on a Mac, whose root store holds next to nothing).

        Raises ``FileExistsError`` if ``directory`` already has a root store."""
        book = cls(directory)
        create_store(os.path.join(book.directory, STORE_NAME))
        book.sources[ROOT] = os.path.join(book.directory, STORE_NAME)
        book.default_source = book.add_source()
        return book

    def add_source(self, source_id: str | None = None) -> str:
        """Create ``Sources/<source_id>/AddressBook-v22.abcddb`` (default id: a new UUID) and
        return the id. Raises ``FileExistsError`` if that store exists."""
        source_id = source_id or _uid()
        path = os.path.join(self.directory, "Sources", source_id, STORE_NAME)
        create_store(path)
        self.sources[source_id] = path
        return source_id

    def path(self, source: str | None = None) -> str:
        """The store file of ``source`` (default: the default source)."""
        return self.sources[self.default_source if source is None else source]

    def add_contact(self, *, first: str | None = None, last: str | None = None,
                    nickname: str | None = None, organization: str | None = None,
                    phones: Sequence[str] = (), emails: Sequence[str] = (),
                    source: str | None = None) -> int:
        """Add one contact to ``source`` (default: the default source; ``ROOT`` for the root
        store) and return its ``Z_PK``. Phones and emails are stored as given, the first of
        each marked primary. Raises ``KeyError`` for an unknown source."""
        path = self.path(source)
        now = _core_data_now()
        with closing(sqlite3.connect(path, isolation_level=None)) as conn, conn:
            conn.execute("BEGIN IMMEDIATE")
            container = conn.execute(
                "SELECT Z_PK FROM ZABCDRECORD WHERE Z_ENT = ? ORDER BY Z_PK LIMIT 1", (CONTAINER,)
            ).fetchone()
            owner = _insert(conn, "ZABCDRECORD", _RECORD, {
                "Z_ENT": CONTACT, "Z_OPT": 1, "ZCONTAINER1": container[0] if container else None,
                "ZDISPLAYFLAGS": 1 if organization and not (first or last) else 0,
                "ZUNIQUEID": f"{_uid()}:ABPerson", "ZFIRSTNAME": first, "ZLASTNAME": last,
                "ZNICKNAME": nickname, "ZORGANIZATION": organization,
                "ZSORTINGFIRSTNAME": _sorting(first, last, organization),
                "ZCREATIONDATE": now, "ZMODIFICATIONDATE": now,
            })
            for index, number in enumerate(phones):
                digits = "".join(ch for ch in number if ch.isdigit())
                _insert(conn, "ZABCDPHONENUMBER", _PHONE, {
                    "Z_ENT": _PHONE, "Z_OPT": 1, "ZISPRIMARY": int(index == 0),
                    "ZORDERINGINDEX": index, "ZOWNER": owner, "Z22_OWNER": CONTACT,
                    "ZFULLNUMBER": number, "ZLABEL": PHONE_LABEL,
                    "ZLASTFOURDIGITS": digits[-4:] or None, "ZUNIQUEID": _uid(),
                })
            for index, address in enumerate(emails):
                _insert(conn, "ZABCDEMAILADDRESS", _EMAIL, {
                    "Z_ENT": _EMAIL, "Z_OPT": 1, "ZISPRIMARY": int(index == 0),
                    "ZORDERINGINDEX": index, "ZOWNER": owner, "Z22_OWNER": CONTACT,
                    "ZADDRESS": address, "ZADDRESSNORMALIZED": address.strip().lower(),
                    "ZLABEL": EMAIL_LABEL, "ZUNIQUEID": _uid(),
                })
        return owner


def fill_demo_contacts(book: SimAddressBook) -> None:
    """Names for the handles of ``imsg sim init --demo`` (``imsg.sim.demo``), spread over two
    sources, numbers written the way people type them, plus contacts with no chat."""
    import phonenumbers

    from imsg.sim.demo import ALICE, BOB, CAROL

    def typed(number: str, style: int) -> str:
        return str(phonenumbers.format_number(phonenumbers.parse(number), style))

    national, international = (phonenumbers.PhoneNumberFormat.NATIONAL,
                               phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    book.add_contact(first="Alice", last="Appleseed", phones=[typed(ALICE, national)],
                     emails=["alice@example.com"])
    book.add_contact(first="Robert", last="Baker", nickname="Bob", emails=[BOB.upper()])
    book.add_contact(organization="Luigi's Trattoria", phones=["+1 555-555-0199"])
    other = book.add_source()
    book.add_contact(first="Carol", last="Chen", phones=[typed(CAROL, international)],
                     source=other)
    book.add_contact(first="Jane", last="Appleseed", phones=["555-555-0142"], source=other)


def _insert(conn: sqlite3.Connection, table: str, root_entity: int,
            values: dict[str, object]) -> int:
    """Insert a row with the next primary key of its entity tree and keep ``Z_MAX`` current."""
    (pk,) = conn.execute("SELECT Z_MAX + 1 FROM Z_PRIMARYKEY WHERE Z_ENT = ?",
                         (root_entity,)).fetchone()
    row = {"Z_PK": pk, **{k: v for k, v in values.items() if v is not None}}
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values()))
    conn.execute("UPDATE Z_PRIMARYKEY SET Z_MAX = ? WHERE Z_ENT = ?", (pk, root_entity))
    return int(pk)


def _sorting(first: str | None, last: str | None, organization: str | None) -> str | None:
    text = " ".join(part for part in (first, last) if part) or organization
    return text.lower() if text else None


def _core_data_now() -> float:
    return time.time() - _APPLE_EPOCH


def _uid() -> str:
    return str(uuid.uuid4()).upper()
