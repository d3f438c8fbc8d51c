"""Contact names from the macOS AddressBook stores: read-only, batched, cached per process.

Where it reads: ``$IMSG_ADDRESSBOOK_DIR`` if set, else ``~/Library/Application
Support/AddressBook``; in it ``Sources/<each source, sorted>/AddressBook-v<N>.abcddb`` and then
the directory's own ``AddressBook-v<N>.abcddb``. The newest ``N`` found must be 22 (the Core
Data format this reads); otherwise contacts are unavailable. Each store is opened ``mode=ro``
with ``PRAGMA query_only`` and a 0.25 s busy timeout, and read with three queries (records,
phones, emails), never one per message. Reading needs Full Disk Access, as chat.db does.

The API (handles are as chat.db spells them: ``+15555550123``, ``jane@example.com``, or with
a chat-guid prefix ``iMessage;-;``/``iMessage;+;``/``SMS;-;``/``SMS;+;``/``any;-;``/``any;+;``
or a ``tel:``/``mailto:`` scheme)::

    book = contact_book()                       # the process-wide book for this directory
    book.names_for(handles)                     # {handle: name} for the handles that match
    book.name_for(handle)                       # a name or None
    book.resolve("jane appleseed")              # [ContactCandidate(name, handles)], 0..n
    book.resolve_one("Jane Appleseed")          # one candidate, or a typed error
    book.available()                            # whether any store could be read
    book.status()                               # ContactsStatus for status/doctor output

**Names**: the nickname if set, else "first last" trimmed, else the organization (company
cards). **Matching**: an email matches case-insensitively. A phone matches when both numbers
normalize to the same E.164 number (``phonenumbers``; a number typed without a country code
is read in ``region``); when either side is not a valid number (short codes) the digits must
be equal. A handle known to several contacts gets the first one's name (sources in sorted
order, then the root store; records in ``Z_PK`` order). **Resolving** a name compares it
case-insensitively, spaces collapsed, with each contact's full name, nickname and shown name;
contacts with the same name whose handles overlap (one person on two accounts) merge into one
candidate; a contact with neither phone nor email is never a candidate.

**Caching**: the first look-up loads the catalog; later look-ups never wait for a reload. At
most once a second a look-up checks (in a background thread) whether a store file, its WAL or
the set of stores changed, and reloads the changed stores; every 30 s it rereads all of them.
``resolve``/``resolve_one`` wait for that check, as a name-addressed send needs a current
catalog. ``wait=False`` on any look-up never blocks, not even on the first load (it returns
nothing while that load runs in the background).

**Failure modes** (never raised to callers; ``available`` and ``status`` report them): no
directory or no store → unavailable; a store of another version (newest is not v22) →
unavailable; a store that cannot be opened or read (permissions, not SQLite, tables missing)
is skipped and reported in ``status().problems``, and the others are still used (contacts are
unavailable only when no store could be read); a store locked past the busy timeout keeps its
last good rows and is retried on the next check. Only ``resolve_one`` raises:
``ContactNotFound`` and ``AmbiguousContact`` (both ``InvalidTarget``: -32602, exit 2).
"""

from __future__ import annotations

import locale
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

from imsg.errors import AmbiguousContact, ContactNotFound
from imsg.send.targets import normalize_phone

DEFAULT_DIR = "~/Library/Application Support/AddressBook"
SUPPORTED_VERSION = 22
BUSY_TIMEOUT_S = 0.25
CHECK_INTERVAL_S = 1.0
TTL_S = 30.0
DEFAULT_REGION = "US"

_STORE = re.compile(r"AddressBook-v(\d+)\.abcddb")
_HANDLE_PREFIXES = ("imessage;-;", "imessage;+;", "sms;-;", "sms;+;", "any;-;", "any;+;",
                    "tel:", "mailto:")
_PHONE_LIKE = re.compile(r"\+?[0-9 ().\-]+")
_NON_DIGITS = re.compile(r"[^0-9]+")
_TAIL = 7  # phones are indexed by their last digits; E.164 equality decides
_MEMO_LIMIT = 50_000

Clock = Callable[[], float]


def addressbook_dir() -> str:
    """``$IMSG_ADDRESSBOOK_DIR`` if set, else the current user's AddressBook directory."""
    return os.path.abspath(os.path.expanduser(os.environ.get("IMSG_ADDRESSBOOK_DIR")
                                              or DEFAULT_DIR))


def default_region() -> str:
    """The region of the user's locale (``LC_ALL``/``LC_CTYPE``/``LANG``, e.g. ``en_GB`` → GB),
    used to read numbers saved without a country code; ``US`` when there is none."""
    import phonenumbers

    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = os.environ.get(name)
        if value:
            territory = locale.normalize(value).partition(".")[0].partition("_")[2].upper()
            return territory if territory in phonenumbers.SUPPORTED_REGIONS else DEFAULT_REGION
    return DEFAULT_REGION


@dataclass(frozen=True, slots=True)
class ContactCandidate:
    """A contact a name resolved to: its shown name and its handles, phones first (E.164 when
    valid) then emails (lower-cased), in the order the card lists them."""

    name: str
    handles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ContactsStatus:
    """What the catalog holds now: for ``status``/``doctor`` output, never blocking."""

    available: bool
    directory: str
    stores: int  # stores read successfully
    contacts: int  # contacts with a name and at least one phone or email
    problems: tuple[str, ...]  # one line per store that could not be used, or why none


@dataclass(frozen=True, slots=True)
class _Person:
    name: str
    keys: frozenset[str]  # folded full name, nickname and shown name, for resolve
    phones: tuple[str, ...]  # as stored
    emails: tuple[str, ...]  # lower-cased


# (path, mtime_ns, size) of a store file and of its WAL; None marks a store to read again
_FileSig = tuple[str, int, int, int, int] | None


@dataclass(frozen=True, slots=True)
class _Part:
    signature: _FileSig
    people: tuple[_Person, ...]


@dataclass
class _Catalog:
    people: list[_Person]
    available: bool
    signature: tuple[_FileSig, ...]
    loaded_at: float
    stores: int
    problems: tuple[str, ...]
    by_email: dict[str, int] = field(default_factory=dict)
    by_tail: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    e164: dict[str, str | None] = field(default_factory=dict)  # stored number -> E.164
    memo: dict[str, str | None] = field(default_factory=dict)  # handle -> name

    def __post_init__(self) -> None:
        for index, person in enumerate(self.people):
            for email in person.emails:
                self.by_email.setdefault(email, index)
            for number in person.phones:
                digits = _digits(number)
                if digits:
                    self.by_tail.setdefault(digits[-_TAIL:], []).append((number, index))


class ContactBook:
    """The contacts of one AddressBook directory. Thread-safe; share it (``contact_book``)."""

    def __init__(self, directory: str | None = None, *, region: str | None = None,
                 ttl_s: float = TTL_S, clock: Clock = time.monotonic) -> None:
        self.directory = os.path.abspath(directory) if directory else addressbook_dir()
        self._region = region.upper() if region else None
        self.ttl_s = ttl_s
        self._clock = clock
        self._catalog: _Catalog | None = None
        self._parts: dict[str, _Part] = {}
        self._load_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._checked_at = clock()
        self._background: threading.Thread | None = None

    @property
    def region(self) -> str:
        """The region numbers without a country code are read in: given, else the locale's
        (worked out on first use, which loads libphonenumber's metadata: a process that never
        compares a phone number never pays for it)."""
        if self._region is None:
            self._region = default_region()
        return self._region

    # --- look-ups ------------------------------------------------------------------------------

    def names_for(self, handles: Iterable[str], *, wait: bool = True) -> dict[str, str]:
        """``{handle: name}`` for every handle with a contact (others are left out)."""
        catalog = self._current(wait)
        if catalog is None or not catalog.people:
            return {}
        names = {}
        for handle in handles:
            name = self._lookup(catalog, handle)
            if name is not None:
                names[handle] = name
        return names

    def name_for(self, handle: str, *, wait: bool = True) -> str | None:
        """The contact name of one handle, or None."""
        return self.names_for((handle,), wait=wait).get(handle)

    def resolve(self, name: str) -> list[ContactCandidate]:
        """Every contact whose full name, nickname or shown name is ``name`` (ignoring case and
        extra spaces), after making sure the catalog is current."""
        key = _fold(name)
        catalog = self._fresh()
        if not key or catalog is None:
            return []
        merged: list[tuple[str, list[str]]] = []
        for person in catalog.people:
            if key not in person.keys:
                continue
            handles = self._handles(catalog, person)
            for shown, known in merged:
                if _fold(shown) == _fold(person.name) and not set(known).isdisjoint(handles):
                    known.extend(h for h in handles if h not in known)
                    break
            else:
                merged.append((person.name, handles))
        return [ContactCandidate(shown, tuple(handles)) for shown, handles in merged]

    def resolve_one(self, name: str) -> ContactCandidate:
        """The one contact called ``name``. Raises ``ContactNotFound`` (none, or no readable
        AddressBook) or ``AmbiguousContact`` (several; the message lists them)."""
        candidates = self.resolve(name)
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise AmbiguousContact(name, [(c.name, c.handles) for c in candidates])
        status = self.status()
        raise ContactNotFound(name, None if status.available else _why_unavailable(status))

    def available(self, *, wait: bool = True) -> bool:
        """Whether at least one store could be read (False while a ``wait=False`` first load
        runs)."""
        catalog = self._current(wait)
        return bool(catalog and catalog.available)

    def status(self) -> ContactsStatus:
        """The current catalog's state; never waits (starts the first load if none ran)."""
        catalog = self._current(wait=False)
        if catalog is None:
            return ContactsStatus(False, self.directory, 0, 0, ("loading",))
        return ContactsStatus(catalog.available, self.directory, catalog.stores,
                              len(catalog.people), catalog.problems)

    def refresh(self, *, force: bool = True) -> None:
        """Reload now, in this thread: every store with ``force``, else the changed ones."""
        with self._load_lock:
            self._load(force=force)

    # --- catalog upkeep ------------------------------------------------------------------------

    def _current(self, wait: bool) -> _Catalog | None:
        catalog = self._catalog
        if catalog is None:
            if not wait:
                self._start_background()
                return None
            with self._load_lock:
                return self._catalog or self._load(force=False)
        now = self._clock()
        if now - self._checked_at >= CHECK_INTERVAL_S:
            self._start_background()
        return catalog

    def _fresh(self) -> _Catalog | None:
        with self._load_lock:
            return self._check()

    def _start_background(self) -> None:
        with self._state_lock:
            self._checked_at = self._clock()
            if self._background is not None and self._background.is_alive():
                return
            self._background = threading.Thread(target=self._background_check,
                                                name="imsg-contacts", daemon=True)
            self._background.start()

    def _background_check(self) -> None:
        with self._load_lock:
            self._check()

    def _check(self) -> _Catalog | None:
        """Reload (holding the load lock) if the catalog is missing, old or out of date."""
        catalog = self._catalog
        if catalog is None or self._clock() - catalog.loaded_at >= self.ttl_s:
            return self._load(force=catalog is not None)
        stores, _ = _discover(self.directory)
        if tuple(_signature(path) for path in stores) != catalog.signature:
            return self._load(force=False)
        return catalog

    def _load(self, *, force: bool) -> _Catalog:
        stores, problem = _discover(self.directory)
        problems = [problem] if problem else []
        parts: dict[str, _Part] = {}
        signature: list[_FileSig] = []
        for path in stores:
            sig = _signature(path)
            old = self._parts.get(path)
            if old is not None and not force and old.signature == sig and sig is not None:
                parts[path] = old
                signature.append(sig)
                continue
            try:
                parts[path] = _Part(sig, _read_store(path))
                signature.append(sig)
            except _StoreBusy:
                if old is not None:
                    parts[path] = old
                kept = "kept the last rows read" if old is not None else "nothing read yet"
                problems.append(f"{path}: locked ({kept}; retried at the next check)")
                signature.append(None)
            except _StoreUnreadable as exc:
                problems.append(f"{path}: {exc}")
                signature.append(sig)
        self._parts = parts
        people = [person for part in parts.values() for person in part.people]
        catalog = _Catalog(people, available=bool(parts), signature=tuple(signature),
                           loaded_at=self._clock(), stores=len(parts),
                           problems=tuple(problems))
        self._catalog = catalog
        return catalog

    # --- matching ------------------------------------------------------------------------------

    def _lookup(self, catalog: _Catalog, handle: str) -> str | None:
        memo = catalog.memo
        if handle in memo:
            return memo[handle]
        value = _strip_prefix(handle.strip())
        index: int | None = None
        if "@" in value:
            index = catalog.by_email.get(value.lower())
        elif _PHONE_LIKE.fullmatch(value):
            index = self._phone_index(catalog, value)
        name = catalog.people[index].name if index is not None else None
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[handle] = name
        return name

    def _phone_index(self, catalog: _Catalog, value: str) -> int | None:
        digits = _digits(value)
        if not digits:
            return None
        wanted = normalize_phone(value, self.region)
        for number, index in catalog.by_tail.get(digits[-_TAIL:], ()):
            stored = self._e164(catalog, number)
            if (stored == wanted) if stored and wanted else _digits(number) == digits:
                return index
        return None

    def _e164(self, catalog: _Catalog, number: str) -> str | None:
        if number not in catalog.e164:
            catalog.e164[number] = normalize_phone(_plain_number(number), self.region)
        return catalog.e164[number]

    def _handles(self, catalog: _Catalog, person: _Person) -> list[str]:
        phones = [self._e164(catalog, number) or _digits(number) for number in person.phones]
        return list(dict.fromkeys([p for p in phones if p] + list(person.emails)))


_books: dict[tuple[str, str | None], ContactBook] = {}
_books_lock = threading.Lock()


def contact_book(directory: str | None = None, region: str | None = None) -> ContactBook:
    """The process-wide book for ``directory`` (default ``addressbook_dir()``) and ``region``
    (default: the locale's, worked out when first needed): one catalog shared by every
    caller."""
    path = os.path.abspath(directory) if directory else addressbook_dir()
    code = region.upper() if region else None
    with _books_lock:
        book = _books.get((path, code))
        if book is None:
            book = _books[(path, code)] = ContactBook(path, region=code)
        return book


# --- reading the stores ------------------------------------------------------------------------


class _StoreBusy(Exception):
    pass


class _StoreUnreadable(Exception):
    pass


def _discover(directory: str) -> tuple[list[str], str | None]:
    """The v22 stores to read, in order, or none and the reason."""
    found: list[tuple[int, str]] = []
    sources = os.path.join(directory, "Sources")
    try:
        source_dirs = sorted(os.listdir(sources))
    except OSError:
        source_dirs = []
    for folder in [os.path.join(sources, name) for name in source_dirs] + [directory]:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            match = _STORE.fullmatch(name)
            if match:
                found.append((int(match.group(1)), os.path.join(folder, name)))
    if not found:
        return [], f"no AddressBook-v{SUPPORTED_VERSION}.abcddb in {directory}"
    newest = max(version for version, _ in found)
    if newest != SUPPORTED_VERSION:
        return [], (f"AddressBook-v{newest}.abcddb in {directory} is a newer format than the "
                    f"v{SUPPORTED_VERSION} imsg reads")
    return [path for version, path in found if version == SUPPORTED_VERSION], None


def _signature(path: str) -> _FileSig:
    try:
        st = os.stat(path)
    except OSError:
        return None
    try:
        wal = os.stat(path + "-wal")
    except OSError:
        wal = None
    # An empty WAL is no WAL: opening a store read-only may create one, which must not look
    # like a change.
    wal_sig = (wal.st_mtime_ns, wal.st_size) if wal and wal.st_size else (0, 0)
    return (path, st.st_mtime_ns, st.st_size, *wal_sig)


def _read_store(path: str) -> tuple[_Person, ...]:
    try:
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S,
                               isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise _StoreUnreadable(str(exc)) from None
    try:
        conn.execute("PRAGMA query_only = 1")
        return _people(conn)
    except sqlite3.Error as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise _StoreBusy(text) from None
        raise _StoreUnreadable(text) from None
    finally:
        conn.close()


def _people(conn: sqlite3.Connection) -> tuple[_Person, ...]:
    record = _columns(conn, "ZABCDRECORD")
    nickname = "ZNICKNAME" if "ZNICKNAME" in record else "NULL"
    organization = "ZORGANIZATION" if "ZORGANIZATION" in record else "NULL"
    rows = conn.execute(
        f"SELECT Z_PK, {nickname}, ZFIRSTNAME, ZLASTNAME, {organization} FROM ZABCDRECORD"
        " ORDER BY Z_PK"
    ).fetchall()
    phones = _values(conn, "ZABCDPHONENUMBER", "ZFULLNUMBER")
    emails = _values(conn, "ZABCDEMAILADDRESS", "ZADDRESS")
    people = []
    for pk, nick, first, last, org in rows:
        numbers = phones.get(pk, ())
        addresses = tuple(dict.fromkeys(e.lower() for e in emails.get(pk, ())))
        if not (numbers or addresses):
            continue
        name, keys = _names(nick, first, last, org)
        if name:
            people.append(_Person(name, keys, tuple(numbers), addresses))
    return tuple(people)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]).upper() for row in conn.execute(f"PRAGMA table_info({table})")}


def _values(conn: sqlite3.Connection, table: str, column: str) -> dict[int, list[str]]:
    """``{owner Z_PK: [values]}`` of one multi-value table, in the card's order."""
    present = _columns(conn, table)
    if not present:
        return {}
    order = "ZORDERINGINDEX, Z_PK" if "ZORDERINGINDEX" in present else "Z_PK"
    values: dict[int, list[str]] = {}
    for owner, value in conn.execute(
        f"SELECT ZOWNER, {column} FROM {table} WHERE ZOWNER IS NOT NULL AND {column} IS NOT NULL"
        f" ORDER BY ZOWNER, {order}"
    ):
        if isinstance(value, str) and value.strip():
            values.setdefault(owner, []).append(value.strip())
    return values


def _names(nickname: object, first: object, last: object,
           organization: object) -> tuple[str, frozenset[str]]:
    """The shown name and the folded names ``resolve`` matches."""
    nick = _text(nickname)
    full = " ".join(part for part in (_text(first), _text(last)) if part)
    shown = nick or full or _text(organization)
    return shown, frozenset(key.casefold() for key in (shown, full, nick) if key)


def _text(value: object) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _strip_prefix(value: str) -> str:
    lowered = value.lower()
    for prefix in _HANDLE_PREFIXES:
        if lowered.startswith(prefix):
            return value[len(prefix):].strip()
    return value


def _digits(value: str) -> str:
    return _NON_DIGITS.sub("", value)


def _plain_number(number: str) -> str:
    """A stored number as ``+digits`` or ``digits``: Contacts keeps whatever was typed, non-
    breaking hyphens and all, which the phone grammar would refuse."""
    return ("+" if number.lstrip().startswith("+") else "") + _digits(number)


def _why_unavailable(status: ContactsStatus) -> str:
    detail = "; ".join(status.problems) or "nothing readable"
    return f"contacts are unavailable ({detail})"
