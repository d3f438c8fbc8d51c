"""Codec for ``message.attributedBody``: an ``NSAttributedString`` archived by ``NSArchiver``.

The archive is a NeXT "typedstream" (little-endian, streamer version 4, system version 1000)::

    04 0b "streamtyped" 81 e8 03        header
    <type string> <value per type>...   typed value groups

Integers are one signed byte (-110..127), or ``81`` + int16 LE, or ``82`` + int32 LE; the
head bytes ``80``-``91`` are tags (``83`` float follows, ``84`` new literal, ``85`` nil,
``86`` end of object). Type strings and class names go into a shared-string table, objects,
classes and C strings into an object table; an integer where a literal could start is a
back-reference, entry ``n + 110`` (so head ``92`` is entry 0).

An ``NSAttributedString`` object holds its ``NSString`` (one ``+`` field: length and UTF-8
bytes), then per attribute run an ``iI`` group (1-based dictionary index, run length in
UTF-16 units) followed, when the index is new, by the ``NSDictionary`` of attributes.

Some macOS 26 bodies are instead plain UTF-16LE text behind a ``FF FE`` byte-order mark.

``body_text`` is on the hot path of every message, so it first tries a fast path: the
archives Messages writes start with one of a few constant prefixes (header, root class chain,
string class chain, ``+`` type), which makes the text length sit at a fixed offset.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple, NoReturn, TypeAlias

__all__ = [
    "AttributeRun",
    "AttributedString",
    "TypedStreamError",
    "body_text",
    "encode_attributed_string",
    "parse_attributed_string",
]

MAX_DEPTH = 64
"""Deepest nesting of objects/arrays/structs (and longest class chain) the reader accepts."""
MAX_REFERENCES = 100_000
"""Most entries the reader allows in either reference table."""

_HEADER = b"\x04\x0bstreamtyped\x81\xe8\x03"
_UTF16_BOM = b"\xff\xfe"
_TAG_INT16 = 0x81
_TAG_INT32 = 0x82
_TAG_FLOAT = 0x83
_TAG_NEW = 0x84
_TAG_NIL = 0x85
_TAG_END = 0x86
_REF_BIAS = 110  # reference numbers start right after the tags: head 0x92 (-110) is entry 0
_PART_KEY = "__kIMMessagePartAttributeName"

_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")

# Class chains as NSArchiver writes them: (name, class version), most derived first.
_Chain: TypeAlias = tuple[tuple[bytes, int], ...]
_NSOBJECT: _Chain = ((b"NSObject", 0),)
_NSSTRING: _Chain = ((b"NSString", 1), *_NSOBJECT)
_NSMUTABLESTRING: _Chain = ((b"NSMutableString", 1), *_NSSTRING)
_NSATTRIBUTEDSTRING: _Chain = ((b"NSAttributedString", 0), *_NSOBJECT)
_NSMUTABLEATTRIBUTEDSTRING: _Chain = ((b"NSMutableAttributedString", 0), *_NSATTRIBUTEDSTRING)
_NSDICTIONARY: _Chain = ((b"NSDictionary", 0), *_NSOBJECT)
_NSARRAY: _Chain = ((b"NSArray", 0), *_NSOBJECT)
_NSNUMBER: _Chain = ((b"NSNumber", 0), (b"NSValue", 0), *_NSOBJECT)
_NSDATA: _Chain = ((b"NSData", 0), *_NSOBJECT)

_ATTRIBUTED_CLASSES = frozenset({b"NSAttributedString", b"NSMutableAttributedString"})
_STRING_CLASSES = frozenset({b"NSString", b"NSMutableString"})
_DICTIONARY_CLASSES = frozenset({b"NSDictionary", b"NSMutableDictionary"})
_ARRAY_CLASSES = frozenset({b"NSArray", b"NSMutableArray"})
_DATA_CLASSES = frozenset({b"NSData", b"NSMutableData"})
_INTEGER_CTYPES = frozenset({b"c", b"C", b"s", b"S", b"i", b"I", b"l", b"L", b"q", b"Q"})

# Object-table entry kinds; a reference must name an entry of the kind its position expects.
_OBJECT, _CLASS, _CSTRING, _PENDING = range(4)
_KIND_NAMES = ("an object", "a class", "a C string", "an object still being decoded")


class TypedStreamError(ValueError):
    """Malformed, truncated, unsupported or hostile typedstream; the message gives the offset."""


@dataclass(frozen=True, slots=True)
class AttributeRun:
    """Attributes of ``text[start:start + length]`` (code points, converted from UTF-16)."""

    start: int
    length: int
    attributes: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class AttributedString:
    """Text and its attribute runs, in order, contiguous and covering the whole text."""

    text: str
    runs: tuple[AttributeRun, ...]


# ---------------------------------------------------------------------------------------------
# Reader


class _Array(NamedTuple):
    length: int
    element: _Encoding


class _Struct(NamedTuple):
    fields: tuple[_Encoding, ...]


# A parsed type encoding: a primitive's ASCII code, an array or a struct.
_Encoding: TypeAlias = "int | _Array | _Struct"
_PRIMITIVE_CODES = frozenset(b"cCsSiIlLqQfdB+*@#:%")
_SIGNED_CODES = frozenset(b"silq")
_UNSIGNED_CODES = frozenset(b"SILQ")


def _parse_type(spec: bytes, pos: int, depth: int) -> tuple[_Encoding, int]:
    """One encoding at ``spec[pos:]``; ValueError/IndexError when invalid or unsupported."""
    if depth > MAX_DEPTH:
        raise ValueError("type encoding nested too deeply")
    code = spec[pos]
    if code in _PRIMITIVE_CODES:
        return code, pos + 1
    if code == 0x5B:  # [count element]
        digits_end = pos + 1
        while 0x30 <= spec[digits_end] <= 0x39:
            digits_end += 1
        if not 1 <= digits_end - pos - 1 <= 9:  # 9 digits: any count beyond cannot fit the data
            raise ValueError("bad array count")
        element, end = _parse_type(spec, digits_end, depth + 1)
        if spec[end] != 0x5D:
            raise ValueError("unterminated array")
        return _Array(int(spec[pos + 1 : digits_end]), element), end + 1
    if code == 0x7B:  # {name=fields} or {fields}
        end = pos + 1
        while spec[end] not in b"={}":
            end += 1
        end = end + 1 if spec[end] == 0x3D else pos + 1
        fields = []
        while spec[end] != 0x7D:
            field, end = _parse_type(spec, end, depth + 1)
            fields.append(field)
        return _Struct(tuple(fields)), end + 1
    raise ValueError(f"unsupported type code {chr(code)!r}")


def _parse_types(spec: bytes) -> tuple[_Encoding, ...] | None:
    """Split a type string into encodings; None if any is invalid."""
    encodings = []
    pos = 0
    try:
        while pos < len(spec):
            encoding, pos = _parse_type(spec, pos, 0)
            encodings.append(encoding)
    except (ValueError, IndexError):
        return None
    return tuple(encodings)


# Messages reuses a handful of short type strings; long ones are hostile and not worth memory.
_parse_short_types = lru_cache(maxsize=256)(_parse_types)


class _Reader:
    """Recursive-descent typedstream reader.

    Every read is bounds-checked against the remaining bytes, so truncation raises instead of
    reading short. Work is linear in the input: each value read spends one unit of a budget of
    ``2 * len(data) + 64`` (every real value costs at least one byte, so only hostile input -
    e.g. arrays of empty arrays, or a long type string referenced many times - exhausts it);
    nesting is capped at ``MAX_DEPTH`` and the reference tables at ``MAX_REFERENCES``.
    """

    __slots__ = ("budget", "data", "depth", "pos", "strings", "table")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.strings: list[bytes] = []
        self.table: list[tuple[int, object]] = []
        self.depth = 0
        self.budget = 2 * len(data) + 64

    def fail(self, what: str, at: int | None = None) -> NoReturn:
        raise TypedStreamError(f"{what} at offset {self.pos if at is None else at}")

    def byte(self) -> int:
        pos = self.pos
        if pos >= len(self.data):
            self.fail("unexpected end of data")
        self.pos = pos + 1
        return self.data[pos]

    def take(self, count: int) -> bytes:
        pos = self.pos
        if count > len(self.data) - pos:
            self.fail(f"length {count} exceeds the {len(self.data) - pos} bytes left")
        self.pos = pos + count
        return self.data[pos : pos + count]

    def integer(self, head: int, signed: bool = True) -> int:
        if head < 0x80:
            return head
        if head >= 0x92:
            return head - 0x100 if signed else head
        if head == _TAG_INT16:
            return int.from_bytes(self.take(2), "little", signed=signed)
        if head == _TAG_INT32:
            return int.from_bytes(self.take(4), "little", signed=signed)
        self.fail(f"tag 0x{head:02x} where an integer was expected", self.pos - 1)

    def enter(self, at: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"nesting deeper than {MAX_DEPTH}", at)

    def add(self, kind: int, value: object) -> int:
        if len(self.table) >= MAX_REFERENCES:
            self.fail(f"more than {MAX_REFERENCES} objects")
        self.table.append((kind, value))
        return len(self.table) - 1

    def lookup(self, head: int, kind: int) -> object:
        at = self.pos - 1
        index = self.integer(head) + _REF_BIAS
        if not 0 <= index < len(self.table):
            self.fail(f"reference #{index} outside the object table of {len(self.table)}", at)
        found, value = self.table[index]
        if found != kind:
            self.fail(f"reference #{index} is {_KIND_NAMES[found]}, not {_KIND_NAMES[kind]}", at)
        return value

    def shared_string(self, head: int) -> bytes | None:
        if head == _TAG_NIL:
            return None
        if head == _TAG_NEW:
            if len(self.strings) >= MAX_REFERENCES:
                self.fail(f"more than {MAX_REFERENCES} shared strings")
            string = self.take(self.integer(self.byte(), signed=False))
            self.strings.append(string)
            return string
        at = self.pos - 1
        index = self.integer(head) + _REF_BIAS
        if not 0 <= index < len(self.strings):
            self.fail(f"reference #{index} outside the string table of {len(self.strings)}", at)
        return self.strings[index]

    def group(self, head: int) -> list[object]:
        """One type string and its values."""
        at = self.pos - 1
        spec = self.shared_string(head)
        if spec is None:
            encodings = None
        else:
            encodings = _parse_short_types(spec) if len(spec) <= 64 else _parse_types(spec)
        if not encodings:
            self.fail(f"invalid or unsupported type string {spec!r}", at)
        return [self.value(encoding) for encoding in encodings]

    def value(self, encoding: _Encoding) -> object:
        self.budget -= 1
        if self.budget < 0:
            self.fail("more values than the data can hold")
        if isinstance(encoding, int):
            return self.primitive(encoding)
        self.enter(self.pos)
        if isinstance(encoding, _Struct):
            values: object = [self.value(field) for field in encoding.fields]
        elif encoding.element == 0x63 or encoding.element == 0x43:  # char arrays are raw bytes
            values = self.take(encoding.length)
        else:
            values = [self.value(encoding.element) for _ in range(encoding.length)]
        self.depth -= 1
        return values

    def primitive(self, code: int) -> object:
        if code == 0x40:  # @
            return self.read_object(self.byte())
        if code == 0x2B:  # + : unshared byte string
            head = self.byte()
            return None if head == _TAG_NIL else self.take(self.integer(head, signed=False))
        if code in _SIGNED_CODES:
            return self.integer(self.byte())
        if code in _UNSIGNED_CODES:
            return self.integer(self.byte(), signed=False)
        if code == 0x63:  # c, C and B are one raw byte, never tagged
            byte = self.byte()
            return byte - 0x100 if byte > 0x7F else byte
        if code == 0x43:
            return self.byte()
        if code == 0x42:
            byte = self.byte()
            if byte > 1:
                self.fail(f"bool byte 0x{byte:02x}", self.pos - 1)
            return byte == 1
        if code == 0x66 or code == 0x64:  # f, d: integral values are archived as integers
            head = self.byte()
            if head != _TAG_FLOAT:
                return float(self.integer(head))
            layout = _F32 if code == 0x66 else _F64
            return float(layout.unpack(self.take(layout.size))[0])
        if code == 0x2A:  # * : C string, itself an object-table entry
            head = self.byte()
            if head == _TAG_NIL:
                return None
            if head != _TAG_NEW:
                return self.lookup(head, _CSTRING)
            string = self.shared_string(self.byte())
            if string is None:
                self.fail("nil C string literal")
            self.add(_CSTRING, string)
            return string
        if code == 0x23:  # # : a class, given by its name
            head = self.byte()
            return None if head == _TAG_NIL else self.class_chain(head)[0].decode("latin-1")
        return self.shared_string(self.byte())  # : selector, % atom

    def class_chain(self, head: int) -> tuple[bytes, ...]:
        """Class names, most derived first; each literal class gets an object-table entry."""
        names: list[bytes] = []
        slots: list[int] = []
        while head == _TAG_NEW:
            name = self.shared_string(self.byte())
            if name is None:
                self.fail("nil class name")
            self.integer(self.byte())  # class version: Messages' layouts do not depend on it
            names.append(name)
            slots.append(self.add(_PENDING, None))
            head = self.byte()
        chain = tuple(names)
        if head != _TAG_NIL:
            superclass = self.lookup(head, _CLASS)
            assert isinstance(superclass, tuple)
            chain += superclass
        if not chain:
            self.fail("object without a class")
        if len(chain) > MAX_DEPTH:
            self.fail(f"class chain longer than {MAX_DEPTH}")
        for offset, slot in enumerate(slots):
            self.table[slot] = (_CLASS, chain[offset:])
        return chain

    def read_object(self, head: int, classes: frozenset[bytes] | None = None) -> object:
        """An object, nil or back-reference; a literal must be of one of ``classes`` if given."""
        if head == _TAG_NIL:
            return None
        if head != _TAG_NEW:
            return self.lookup(head, _OBJECT)
        at = self.pos - 1
        self.enter(at)
        slot = self.add(_PENDING, None)
        chain = self.class_chain(self.byte())
        if classes is not None and chain[0] not in classes:
            self.fail(f"unexpected {chain[0].decode('latin-1')} object", at)
        fields: list[object] = []
        head = self.byte()
        while head != _TAG_END:
            fields += self.group(head)
            head = self.byte()
        self.depth -= 1
        value = self.interpret(chain[0], fields, at)
        self.table[slot] = (_OBJECT, value)
        return value

    def interpret(self, name: bytes, fields: list[object], at: int) -> object:
        """Python value of a decoded object from its class name and flattened fields."""
        count = len(fields)
        first = fields[0] if fields else None
        if name in _STRING_CLASSES:
            if count == 1 and type(first) is bytes:
                try:
                    return first.decode("utf-8")
                except UnicodeDecodeError as error:
                    self.fail(f"NSString is not UTF-8 ({error.reason})", at)
        elif name == b"NSNumber":
            # NSValue's fields: the Objective-C type as a C string, then the value of that type.
            if count == 2 and isinstance(fields[1], int | float):
                value = fields[1]
                if first in (b"c", b"B") and value in (0, 1):
                    return bool(value)  # @YES/@NO archive as 'c'
                if first in _INTEGER_CTYPES and isinstance(value, int):
                    return value
                if first in (b"f", b"d"):
                    return float(value)
        elif name in _DICTIONARY_CLASSES:
            if type(first) is int and 2 * first == count - 1:
                try:
                    return dict(zip(fields[1::2], fields[2::2], strict=True))
                except TypeError:
                    self.fail("unhashable NSDictionary key", at)
        elif name in _ARRAY_CLASSES:
            if type(first) is int and first == count - 1:
                return fields[1:]
        elif name in _DATA_CLASSES:
            if count == 2 and type(fields[1]) is bytes and first == len(fields[1]):
                return fields[1]
        elif name == b"NSURL":
            # A "has base URL" char, the base NSURL when set, then the (relative) NSString.
            if count == 2 + (first == 1) and type(fields[-1]) is str:
                return fields[-1]
        else:
            return {"$class": name.decode("latin-1"), "$fields": fields}
        self.fail(f"unexpected fields for {name.decode('latin-1')}", at)

    def root_text(self) -> str:
        """Read up to and including the NSAttributedString's NSString; return its text."""
        if self.data[: len(_HEADER)] != _HEADER:
            self.fail("not a little-endian typedstream v4 (header mismatch)", 0)
        self.pos = at = len(_HEADER)
        if self.shared_string(self.byte()) != b"@" or self.byte() != _TAG_NEW:
            self.fail("root is not a single literal object", at)
        self.enter(at)
        self.add(_PENDING, None)
        name = self.class_chain(self.byte())[0]
        if name not in _ATTRIBUTED_CLASSES:
            self.fail(f"root object is a {name.decode('latin-1')}, not an NSAttributedString", at)
        text = self.literal_object(_STRING_CLASSES, "an NSString")
        assert isinstance(text, str)  # what interpret() makes of NSString, or it raised
        return text

    def literal_object(self, classes: frozenset[bytes], what: str) -> object:
        """A ``@`` group holding a new (not back-referenced) object of one of ``classes``."""
        at = self.pos
        if self.shared_string(self.byte()) != b"@" or self.byte() != _TAG_NEW:
            self.fail(f"expected a group with {what}", at)
        return self.read_object(_TAG_NEW, classes)

    def runs(self, text: str) -> tuple[AttributeRun, ...]:
        """Read the rest of the root object: the runs, the end tag, then nothing."""
        dictionaries: list[Mapping[str, object]] = []
        lengths: list[int] = []
        attributes: list[Mapping[str, object]] = []
        at = self.pos
        head = self.byte()
        while head != _TAG_END:
            run = self.group(head)
            if len(run) != 2 or not all(type(number) is int for number in run):
                self.fail("attribute run is not an (index, length) pair", at)
            index, length = run
            assert isinstance(index, int) and isinstance(length, int)
            if index == len(dictionaries) + 1:
                at = self.pos
                value = self.literal_object(_DICTIONARY_CLASSES, "an NSDictionary")
                assert isinstance(value, dict)
                if not all(type(key) is str for key in value):
                    self.fail("attribute dictionary with a key that is not an NSString", at)
                dictionaries.append(MappingProxyType(value))
            elif not 1 <= index <= len(dictionaries):
                self.fail(f"attribute dictionary #{index} of {len(dictionaries)}", at)
            lengths.append(length)
            attributes.append(dictionaries[index - 1])
            at = self.pos
            head = self.byte()
        self.depth -= 1
        if self.pos != len(self.data):
            self.fail(f"{len(self.data) - self.pos} bytes after the NSAttributedString")
        spans = _code_point_lengths(text, lengths)
        if spans is None:
            self.fail("run lengths do not tile the text's UTF-16 units", at)
        runs = []
        start = 0
        for span, mapping in zip(spans, attributes, strict=True):
            runs.append(AttributeRun(start, span, mapping))
            start += span
        return tuple(runs)


def _code_point_lengths(text: str, utf16_lengths: Sequence[int]) -> list[int] | None:
    """Code-point lengths of consecutive runs given in UTF-16 units.

    None when the runs do not add up to the text or a boundary splits a surrogate pair.
    """
    astral = [] if text.isascii() else [match.start() for match in _ASTRAL.finditer(text)]
    spans = []
    units = 0
    passed = 0  # astral characters wholly before the boundary; each is 2 units, 1 code point
    previous = 0
    for length in utf16_lengths:
        units += length
        while passed < len(astral) and astral[passed] + passed + 2 <= units:
            passed += 1
        if passed < len(astral) and astral[passed] + passed < units:
            return None
        spans.append(units - passed - previous)
        previous = units - passed
    if units != len(text) + len(astral):
        return None
    return spans


def _decode_utf16_body(blob: bytes) -> str:
    try:
        return blob[len(_UTF16_BOM) :].decode("utf-16-le")
    except UnicodeDecodeError as error:
        message = f"bad UTF-16LE body ({error.reason}) at offset {error.start + 2}"
        raise TypedStreamError(message) from None


def parse_attributed_string(blob: bytes) -> AttributedString:
    """Fully parse an attributedBody: the text and its attribute runs.

    Attribute values are str (NSString), bool/int/float (NSNumber), bytes (NSData), str
    (NSURL: its string as archived, relative to any base URL), dict/list (NSDictionary/NSArray)
    and ``{"$class": name, "$fields": [...]}`` for objects of other classes. A ``FF FE``
    UTF-16LE body gives its text and no runs.

    Raises TypedStreamError - and nothing else - for: a bad header or root class; truncation or
    a length beyond the data; an unknown tag, type code or class layout; a reference outside
    its table or to an entry of the wrong kind or still being decoded (cycles); invalid UTF-8
    or UTF-16; runs that do not tile the text or split a surrogate pair; trailing bytes; and
    hostile shapes: nesting deeper than ``MAX_DEPTH``, more than ``MAX_REFERENCES`` table
    entries, or more values than the data can hold. Time and memory are linear in the input.
    """
    if blob[:2] == _UTF16_BOM:
        return AttributedString(_decode_utf16_body(blob), ())
    reader = _Reader(blob)
    text = reader.root_text()
    return AttributedString(text, reader.runs(text))


def _slow_text(blob: bytes) -> str:
    if blob[:2] == _UTF16_BOM:
        return _decode_utf16_body(blob)
    # Only the string is read, so an unparsable attribute later on cannot lose the text.
    return _Reader(blob).root_text()


def body_text(blob: bytes | None) -> str | None:
    """Text of an attributedBody (typedstream or ``FF FE`` UTF-16LE), or None.

    None when ``blob`` is None or empty, or when its text cannot be read: not a typedstream
    of an NSAttributedString, truncated before the end of the string, invalid UTF-8/UTF-16,
    or any of the hostile shapes ``parse_attributed_string`` rejects within the string part.
    Damage after the string (in the attribute runs) does not matter. Never raises: any
    exception gives None. Empty text gives "" (not None). Linear time, bounded memory.
    """
    if not blob:
        return None
    try:
        if blob.startswith(_PLAIN_PREFIX):
            pos = _PLAIN_PREFIX_LENGTH
        elif blob.startswith(_MUTABLE_PREFIX):
            pos = _MUTABLE_PREFIX_LENGTH
        else:
            return _slow_text(blob)
        length = blob[pos]
        if length < 0x80:
            pos += 1
        elif length == _TAG_INT16:
            length = blob[pos + 1] | blob[pos + 2] << 8
            pos += 3
        elif length == _TAG_INT32:
            length = int.from_bytes(blob[pos + 1 : pos + 5], "little")
            pos += 5
        else:
            return _slow_text(blob)
        end = pos + length
        # The NSString object must end right after its bytes; this also bounds-checks `end`.
        if blob[end : end + 1] == b"\x86":
            return blob[pos:end].decode("utf-8")
        return _slow_text(blob)
    except Exception:
        return None


# ---------------------------------------------------------------------------------------------
# Writer


class _Writer:
    """Emits typedstream the way NSArchiver does: each shared string and class is written once
    and referenced after; objects are numbered in stream order (an object before its class
    chain; C strings count too); NSNumbers are shared by value, as Foundation's tagged-pointer
    NSNumbers are one object, while every NSString (keys included) is a fresh object."""

    __slots__ = ("classes", "numbers", "objects", "out", "strings")

    def __init__(self) -> None:
        self.out = bytearray(_HEADER)
        self.strings: dict[bytes, int] = {}
        self.classes: dict[bytes, int] = {}
        self.numbers: dict[tuple[bytes, object], int] = {}
        self.objects = 0

    def integer(self, value: int) -> None:
        if -_REF_BIAS <= value <= 0x7F:
            self.out.append(value & 0xFF)
        elif -0x8000 <= value <= 0x7FFF:
            self.out.append(_TAG_INT16)
            self.out += value.to_bytes(2, "little", signed=True)
        elif -0x8000_0000 <= value <= 0x7FFF_FFFF:
            self.out.append(_TAG_INT32)
            self.out += value.to_bytes(4, "little", signed=True)
        else:
            raise ValueError(f"{value} does not fit a typedstream integer (int32)")

    def shared(self, string: bytes) -> None:
        index = self.strings.get(string)
        if index is not None:
            self.integer(index - _REF_BIAS)
            return
        self.strings[string] = len(self.strings)
        self.out.append(_TAG_NEW)
        self.integer(len(string))
        self.out += string

    def new_object(self, chain: _Chain) -> None:
        self.out.append(_TAG_NEW)
        self.objects += 1
        for name, version in chain:
            index = self.classes.get(name)
            if index is not None:
                self.integer(index - _REF_BIAS)
                return
            self.classes[name] = self.objects
            self.objects += 1
            self.out.append(_TAG_NEW)
            self.shared(name)
            self.integer(version)
        self.out.append(_TAG_NIL)

    def string_start(self, root: _Chain, string: _Chain) -> None:
        """Header through the ``+`` type of the root NSAttributedString's NSString."""
        self.shared(b"@")
        self.new_object(root)
        self.shared(b"@")
        self.new_object(string)
        self.shared(b"+")

    def string_bytes(self, raw: bytes) -> None:
        self.integer(len(raw))
        self.out += raw
        self.out.append(_TAG_END)

    def value(self, value: object, depth: int) -> None:
        """One ``@`` group holding ``value`` as an object at nesting ``depth``."""
        if depth >= MAX_DEPTH:  # one level spare: the reader also counts NSData's byte array
            raise ValueError(f"attribute values nested deeper than {MAX_DEPTH}")
        self.shared(b"@")
        if isinstance(value, str):
            self.new_object(_NSSTRING)
            self.shared(b"+")
            self.string_bytes(value.encode("utf-8"))
        elif isinstance(value, bool):
            self.number(b"c", int(value))
        elif isinstance(value, int):
            if not -0x8000_0000 <= value <= 0x7FFF_FFFF:
                raise ValueError(f"int attribute {value} does not fit an NSNumber 'i'")
            self.number(b"i", value)
        elif isinstance(value, float):
            self.number(b"d", value)
        elif isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            self.new_object(_NSDATA)
            self.shared(b"i")
            self.integer(len(data))
            self.shared(b"[%dc]" % len(data))
            self.out += data
            self.out.append(_TAG_END)
        elif isinstance(value, Mapping):
            self.dictionary(value, depth)
        elif isinstance(value, list | tuple):
            self.new_object(_NSARRAY)
            self.shared(b"i")
            self.integer(len(value))
            for element in value:
                self.value(element, depth + 1)
            self.out.append(_TAG_END)
        else:
            raise TypeError(f"cannot archive a {type(value).__name__} attribute value")

    def dictionary(self, mapping: Mapping[Any, object], depth: int) -> None:
        self.new_object(_NSDICTIONARY)
        self.shared(b"i")
        self.integer(len(mapping))
        for key, item in mapping.items():
            if not isinstance(key, str):
                raise TypeError(f"attribute keys must be str, not {type(key).__name__}")
            self.value(key, depth + 1)
            self.value(item, depth + 1)
        self.out.append(_TAG_END)

    def number(self, ctype: bytes, value: int | float) -> None:
        index = self.numbers.get((ctype, value))
        if index is not None:
            self.integer(index - _REF_BIAS)
            return
        self.numbers[(ctype, value)] = self.objects
        self.new_object(_NSNUMBER)
        self.shared(b"*")
        self.out.append(_TAG_NEW)  # the type as a C string literal, which takes a table slot
        self.objects += 1
        self.shared(ctype)
        self.shared(ctype)
        if ctype == b"c":
            self.out.append(int(value) & 0xFF)
        elif ctype == b"i":
            self.integer(int(value))
        elif math.isfinite(value) and value == int(value) and abs(value) <= 0x7FFF_FFFF:
            self.integer(int(value))  # like NSArchiver: integral doubles go as integers
        else:
            self.out.append(_TAG_FLOAT)
            self.out += _F64.pack(value)
        self.out.append(_TAG_END)


def _identity(value: object) -> object:
    """Hashable stand-in for an attribute value, so True, 1 and 1.0 stay distinct."""
    if isinstance(value, Mapping):
        return ("{", frozenset((key, _identity(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return ("[", tuple(_identity(item) for item in value))
    if isinstance(value, bytearray | memoryview):
        return (bytes, bytes(value))
    return (type(value), value)


def encode_attributed_string(
    text: str,
    runs: Sequence[tuple[int, Mapping[str, object]]] | None = None,
    *,
    mutable: bool = False,
) -> bytes:
    """Archive ``text`` and its attribute runs as Messages does with NSArchiver.

    ``runs`` are ``(length in UTF-16 units, attributes)`` in order; None means one run of
    ``{"__kIMMessagePartAttributeName": 0}`` over the text (no runs for empty text). Equal
    attribute dicts share one archived dictionary, referenced by index. ``mutable=True`` writes
    an NSMutableAttributedString holding an NSMutableString (Messages' other layout).

    Attribute values: str (NSString), bool (NSNumber 'c'), int within int32 (NSNumber 'i',
    as Messages archives the part index), float (NSNumber 'd'), bytes (NSData), and nested
    str-keyed Mappings (NSDictionary) and lists/tuples (NSArray).

    Raises ValueError when the text has lone surrogates, a run length is not a positive int,
    the runs do not tile the text exactly or split a surrogate pair, an int does not fit int32
    or values nest deeper than ``MAX_DEPTH``; TypeError for other value or key types.
    """
    raw = text.encode("utf-8")
    if runs is None:
        runs = [(len(text) + len(_ASTRAL.findall(text)), {_PART_KEY: 0})] if text else []
    lengths = [length for length, _ in runs]
    if not all(type(length) is int and length > 0 for length in lengths):
        raise ValueError(f"run lengths must be positive ints: {lengths}")
    if _code_point_lengths(text, lengths) is None:
        raise ValueError("runs must cover the text's UTF-16 units exactly, not splitting pairs")
    writer = _Writer()
    if mutable:
        writer.string_start(_NSMUTABLEATTRIBUTEDSTRING, _NSMUTABLESTRING)
    else:
        writer.string_start(_NSATTRIBUTEDSTRING, _NSSTRING)
    writer.string_bytes(raw)
    indexes: dict[object, int] = {}
    for length, attributes in runs:
        identity = _identity(attributes)
        index = indexes.get(identity)
        new = index is None
        if index is None:
            index = indexes[identity] = len(indexes) + 1
        writer.shared(b"iI")
        writer.integer(index)
        writer.integer(length)
        if new:
            writer.shared(b"@")
            writer.dictionary(attributes, 2)  # depth 2: inside the root object
    writer.out.append(_TAG_END)
    return bytes(writer.out)


def _text_prefix(root: _Chain, string: _Chain) -> bytes:
    writer = _Writer()
    writer.string_start(root, string)
    return bytes(writer.out)


# What NSArchiver writes before the text length in Messages' two layouts (the plain one is the
# more common); any other layout takes the slow path.
_PLAIN_PREFIX = _text_prefix(_NSATTRIBUTEDSTRING, _NSSTRING)
_MUTABLE_PREFIX = _text_prefix(_NSMUTABLEATTRIBUTEDSTRING, _NSMUTABLESTRING)
_PLAIN_PREFIX_LENGTH = len(_PLAIN_PREFIX)
_MUTABLE_PREFIX_LENGTH = len(_MUTABLE_PREFIX)
