"""Tests of the attributedBody codec: exact texts, real Messages bytes, round trips, the
pytypedstream oracle, and fuzzing with corrupt, truncated and hostile blobs."""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

import pytest
import typedstream as oracle  # pytypedstream: LGPL, used only here as the reference reader
from hypothesis import given, settings
from hypothesis import strategies as st
from typedstream.types import foundation

import imsg.chatdb.typedstream as codec
from imsg.chatdb.typedstream import (
    AttributedString,
    AttributeRun,
    TypedStreamError,
    body_text,
    encode_attributed_string,
    parse_attributed_string,
)

PART = "__kIMMessagePartAttributeName"
GUID = "__kIMFileTransferGUIDAttributeName"
MENTION = "__kIMMentionConfirmedMention"
LINK = "__kIMLinkAttributeName"
RICH_LINK = "__kIMLinkIsRichLinkAttributeName"
DIRECTION = "__kIMBaseWritingDirectionAttributeName"
DATA_DETECTED = "__kIMDataDetectedAttributeName"
TRANSCRIPTION = "IMAudioTranscription"
BOLD = "__kIMTextBoldAttributeName"

HEADER = b"\x04\x0bstreamtyped\x81\xe8\x03"
# Header, root group "@" and the root's class chain NSAttributedString > NSObject. Afterwards the
# shared strings are S0 "@", S1 NSAttributedString, S2 NSObject (references 0x92, 0x93, 0x94)
# and the objects O0 root, O1 NSAttributedString, O2 NSObject (same reference bytes).
ROOT = HEADER + b"\x84\x01@\x84\x84\x84\x12NSAttributedString\x00\x84\x84\x08NSObject\x00\x85"
# Everything before the text length in a plain blob: ROOT, then "@" and a new NSString object.
STRING_PREFIX = ROOT + b"\x92\x84\x84\x84\x08NSString\x01\x94\x84\x01+"

# Real attributedBody blobs from macOS chat.db, as published in the test fixtures of open-source
# iMessage tools: "Yes"; a 165-byte text (0x81 lengths); a link in an NSMutableAttributedString
# (NSURL, NSData, 'q' and 'c' NSNumbers); an audio message with its transcription.
YES_BLOB = bytes.fromhex(
    "040b73747265616d747970656481e803840140848484124e5341747472696275746564537472696e67008484084e"
    "534f626a656374008592848484084e53537472696e67019484012b0359657386840269490103928484840c4e5344"
    "696374696f6e617279009484016901928496961d5f5f6b494d4d657373616765506172744174747269627574654e"
    "616d658692848484084e534e756d626572008484074e5356616c7565009484012a84999900868686"
)
LONG_BLOB = bytes.fromhex(
    "040b73747265616d747970656481e803840140848484124e5341747472696275746564537472696e67008484084e"
    "534f626a656374008592848484084e53537472696e67019484012b81a5007765206861766520746f207265777269"
    "746520697420616c6c2e20706c656173652064657269736b2065766572797468696e67206279206c61756e636869"
    "6e67207375626167656e7420666f72206561636820636f6d706f6e656e7420616e6420676f6f676c6520666f7220"
    "727573742076657273696f6e732e207468656e20657374696d61746520706572666f726d616e636520696e637265"
    "617365206f76657220707986840269490181a500928484840c4e5344696374696f6e617279009484016901928496"
    "961d5f5f6b494d4d657373616765506172744174747269627574654e616d658692848484084e534e756d62657200"
    "8484074e5356616c7565009484012a84999900868686"
)
URL_BLOB = bytes.fromhex(
    "040b73747265616d747970656481e803840140848484194e534d757461626c654174747269627574656453747269"
    "6e67008484124e5341747472696275746564537472696e67008484084e534f626a6563740085928484840f4e534d"
    "757461626c65537472696e67018484084e53537472696e67019584012b2368747470733a2f2f6769746875622e63"
    "6f6d2f6f6272612f7375706572706f7765727386840269490123928484840c4e5344696374696f6e617279009584"
    "01690592849898265f5f6b494d4261736557726974696e67446972656374696f6e4174747269627574654e616d65"
    "8692848484084e534e756d626572008484074e5356616c7565009584012a848401719fff8692849898205f5f6b49"
    "4d4c696e6b4973526963684c696e6b4174747269627574654e616d658692849d9e84840163a0018692849898165f"
    "5f6b494d4c696e6b4174747269627574654e616d658692848484054e5355524c0095a00092849898236874747073"
    "3a2f2f6769746875622e636f6d2f6f6272612f7375706572706f776572738686928498981d5f5f6b494d4d657373"
    "616765506172744174747269627574654e616d658692849d9e9f9f0086928498981e5f5f6b494d44617461446574"
    "65637465644174747269627574654e616d658692848484064e534461746100959b81350284065b353635635d6270"
    "6c6973743030d4010203040506070c582476657273696f6e592461726368697665725424746f7058246f626a6563"
    "747312000186a05f100f4e534b657965644172636869766572d208090a0b5776657273696f6e5964642d72657375"
    "6c74800b8001ac0d0e1c2425262c2d2e32353955246e756c6cd70f101112131415161718191a1b1a524d53562463"
    "6c6173735241525154515052535252564e8006800a8002800710018008d41d1e1f10202122235f10124e532e7261"
    "6e676576616c2e6c656e6774685f10144e532e72616e676576616c2e6c6f636174696f6e5a4e532e737065636961"
    "6c800380041004800510231000d22728292a5a24636c6173736e616d655824636c6173736573574e5356616c7565"
    "a2292b584e534f626a6563745f102368747470733a2f2f6769746875622e636f6d2f6f6272612f7375706572706f"
    "77657273574874747055524cd22f1030315a4e532e6f626a65637473a08009d227283334574e534172726179a233"
    "2bd2272836375f100f44445363616e6e6572526573756c74a2382b5f100f44445363616e6e6572526573756c7410"
    "0100080011001a00240029003200370049004e005600600062006400710077008600890090009300950097009a00"
    "9d009f00a100a300a500a700a900b200c700de00e900eb00ed00ef00f100f300f500fa0105010e01160119012201"
    "48015001550160016101630168017001730178018a018d019f0000000000000201000000000000003a0000000000"
    "00000000000000000001a1868686"
)
AUDIO_BLOB = bytes.fromhex(
    "040b73747265616d747970656481e803840140848484124e5341747472696275746564537472696e67008484084e"
    "534f626a656374008592848484084e53537472696e67019484012b03efbfbc86840269490101928484840c4e5344"
    "696374696f6e61727900948401690492849696225f5f6b494d46696c655472616e73666572475549444174747269"
    "627574654e616d6586928496962961745f305f38463932454445322d373631372d343939312d423939432d383834"
    "313134334341463138869284969614494d417564696f5472616e736372697074696f6e869284969681c2024f6e63"
    "6520796f7527726520646f6e6520646f696e6720746861742c207768617420492077616e7420796f7520746f2064"
    "6f20697320726561642074686520726f6f7420636c6f74204d4420746f2067657420612073656e736520666f7220"
    "616c6c206f6620746865207468696e6773207468617420617265206f6e207468697320636f6d707574657220616e"
    "64207468656e20492077616e7420796f7520746f20666f722065616368206f66207468652066757475726573206c"
    "6973746564206f7574207468657265206c61756e6368206120737562206167656e7420746f20646f207265736561"
    "72636820746861742073686f756c64206265206174206c6561737420612070616765206f722074776f206f662065"
    "786163746c7920686f7720697420776f726b73206f6e2074686973206d616368696e6520736372756262696e6720"
    "616c6c206f662074686520706572736f6e616c2064657461696c73206e616d65732074686174206b696e64206f66"
    "207468696e67206a757374206b6565702069742e2049206c6f7665206f6e652067656e6572616c2077726974696e"
    "67206120626967207265706f727420746861742073686f756c64206265206c696b6520313020746f203135207061"
    "676573206b696e64206f66207468696e67207468656e20636f6e76657274207468617420746f2061205044462061"
    "6e64207468656e2070617374652069742068657265206f6e636520796f7520646f2074686174207468656e20636f"
    "6e7665727420746861742050444620666f72206f75722054657861732073706565636820616e6420617474616368"
    "2e2054686520617564696f20746f2074686973207468726561642061732077656c6c2c20736f20646f2074686174"
    "206f6e636520796f7527726520646f6e652077697468207468697320576861746576657220796f7527726520646f"
    "696e67207269676874206e6f778692849696265f5f6b494d4261736557726974696e67446972656374696f6e4174"
    "747269627574654e616d658692848484084e534e756d626572008484074e5356616c7565009484012a848401719d"
    "ff86928496961d5f5f6b494d4d657373616765506172744174747269627574654e616d658692849f9ca19d008686"
    "86"
)

# Layouts of live blobs as documented by a chat.db survey: "hi" in the mutable layout; five runs
# with an attachment, a mention, a link and shared NSNumbers; NSData and a nested dictionary.
MUTABLE_HI_BLOB = bytes.fromhex(
    "040b73747265616d747970656481e803840140848484194e534d757461626c654174747269627574656453747269"
    "6e67008484124e5341747472696275746564537472696e67008484084e534f626a6563740085928484840f4e534d"
    "757461626c65537472696e67018484084e53537472696e67019584012b02686986840269490102928484840c4e53"
    "44696374696f6e617279009584016901928498981d5f5f6b494d4d65737361676550617274417474726962757465"
    "4e616d658692848484084e534e756d626572008484074e5356616c7565009584012a849b9b00868686"
)
PARTS_BLOB = bytes.fromhex(
    "040b73747265616d747970656481e803840140848484194e534d757461626c654174747269627574656453747269"
    "6e67008484124e5341747472696275746564537472696e67008484084e534f626a6563740085928484840f4e534d"
    "757461626c65537472696e67018484084e53537472696e67019584012b23efbfbc20736565204053616d20687474"
    "70733a2f2f6578616d706c652e746573742f7886840269490101928484840c4e5344696374696f6e617279009584"
    "01690392849898225f5f6b494d46696c655472616e73666572475549444174747269627574654e616d6586928498"
    "981341545f305f303030302d46414b452d475549448692849898265f5f6b494d4261736557726974696e67446972"
    "656374696f6e4174747269627574654e616d658692848484084e534e756d626572008484074e5356616c75650095"
    "84012a848401719fff86928498981d5f5f6b494d4d657373616765506172744174747269627574654e616d658692"
    "849f9e849b9b00868699020592849a9b01928498981d5f5f6b494d4d657373616765506172744174747269627574"
    "654e616d658692849f9ea49b01868699030492849a9b02928498981d5f5f6b494d4d657373616765506172744174"
    "747269627574654e616d658692a7928498981c5f5f6b494d4d656e74696f6e436f6e6669726d65644d656e74696f"
    "6e8692849898092b3135353530313030868699020199041692849a9b0392849898165f5f6b494d4c696e6b417474"
    "7269627574654e616d658692848484054e5355524c009584016300928498981668747470733a2f2f6578616d706c"
    "652e746573742f788686928498981d5f5f6b494d4d657373616765506172744174747269627574654e616d658692"
    "a792849898205f5f6b494d4c696e6b4973526963684c696e6b4174747269627574654e616d658692849f9e84a1a1"
    "01868686"
)
DATA_NESTED_BLOB = bytes.fromhex(
    "040b73747265616d747970656481e803840140848484124e5341747472696275746564537472696e67008484084e"
    "534f626a656374008592848484084e53537472696e67019484012b02616286840269490101928484840c4e534469"
    "6374696f6e617279009484016902928496961d5f5f6b494d4d657373616765506172744174747269627574654e61"
    "6d658692848484084e534e756d626572008484074e5356616c7565009484012a8499990086928496961e5f5f6b49"
    "4d4461746144657465637465644174747269627574654e616d658692848484064e53446174610094990384045b33"
    "635d00010286869702019284989902928496961d5f5f6b494d4d657373616765506172744174747269627574654e"
    "616d6586929a928496961d5f5f6b494d4f6e6554696d65436f64654174747269627574654e616d65869284989901"
    "9284969604636f64658692849696043132333486868686"
)


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def typed(value: object) -> object:
    """``value`` with types made explicit, so that True, 1 and 1.0 compare unequal."""
    if isinstance(value, Mapping):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value), value)


def from_oracle(value: object) -> object:
    """Plain Python value of an object decoded by pytypedstream."""
    if isinstance(value, foundation.NSString):
        return value.value
    if isinstance(value, foundation.NSNumber):
        return value.value
    if isinstance(value, foundation.NSURL):
        return value.value
    if isinstance(value, foundation.NSData):
        return value.data
    if isinstance(value, foundation.NSDictionary):
        return {from_oracle(key): from_oracle(item) for key, item in value.contents.items()}
    if isinstance(value, foundation.NSArray):
        return [from_oracle(element) for element in value.elements]
    raise AssertionError(f"unexpected oracle value {value!r}")


def oracle_read(blob: bytes) -> tuple[Any, str, list[tuple[int, object]]]:
    """The root, its text and its (UTF-16 length, attributes) runs as pytypedstream sees them."""
    root = oracle.unarchive_from_data(blob)
    first, *groups = root.contents
    dictionaries: list[object] = []
    runs: list[tuple[int, object]] = []
    groups.reverse()
    while groups:
        index, length = groups.pop().values
        if index == len(dictionaries) + 1:
            dictionaries.append(from_oracle(groups.pop().value))
        runs.append((length, dictionaries[index - 1]))
    return root, first.value.value, runs


def with_value_object(literal: bytes) -> bytes:
    """Blob of text "a" whose only attribute value is the object ``literal`` (``84 ...``)."""
    base = encode_attributed_string("a", [(1, {"k": "v"})])
    value = b"\x92\x84\x96\x96\x01v\x86"  # "@", new NSString (class O4, type "+"), "v", end
    assert base.endswith(value + b"\x86\x86")
    return base[: -len(value) - 2] + b"\x92" + literal + b"\x86\x86"


def shared_literal(string: bytes) -> bytes:
    """A new shared string (type string or class name): 84, length, bytes."""
    assert len(string) < 0x8000
    length = (
        bytes([len(string)]) if len(string) < 0x80 else b"\x81" + struct.pack("<h", len(string))
    )
    return b"\x84" + length + string


def assert_reads(blob: bytes, text: str) -> AttributedString:
    """Both readers give ``text``, the fast and slow ``body_text`` paths agree, and the oracle
    reads the same string."""
    assert body_text(blob) == text
    assert codec._slow_text(blob) == text
    parsed = parse_attributed_string(blob)
    assert parsed.text == text
    assert oracle_read(blob)[1] == text
    return parsed


@pytest.fixture
def fast_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any fall-back to the slow path give None, so a correct result proves the fast path."""

    def no_slow_path(blob: bytes) -> str:
        raise AssertionError("slow path taken")

    monkeypatch.setattr(codec, "_slow_text", no_slow_path)


TEXTS = {
    "empty": "",
    "one letter": "Y",
    "family ZWJ": "👩‍👩‍👧‍👦",
    "flags": "🇺🇸🇯🇵🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    "skin tones": "👍🏽👋🏿 ok",
    "127 bytes": "a" * 127,
    "128 bytes": "a" * 128,
    "129 bytes": "é" + "a" * 127,
    "8192 bytes": "x" * 8190 + "é",
    "32768 bytes": "y" * 32768,
    "65536 bytes": "z" * 65536,
    "int32 length, astral": "😀" * 20_000,
    "class names": "NSString NSNumber streamtyped NSAttributedString NSDictionary iI +@",
    "U+2184 (E2 86 84)": "\u2184\u2184 end \u2184",
    "end tags in text": "\x86\x84\x85\x86 \u0184\u0186",
    "whitespace": "\n\n  \t hello world \t\n\n",
    "only newline": "\n",
    "NUL": "a\x00b",
    "U+FFFC": "\ufffc",
    "BOM inside": "\ufeffstart",
}


@pytest.mark.parametrize("mutable", [False, True], ids=["plain", "mutable"])
@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_exact_text(text: str, mutable: bool) -> None:
    parsed = assert_reads(encode_attributed_string(text, mutable=mutable), text)
    expected_runs = (AttributeRun(0, len(text), {PART: 0}),) if text else ()
    assert parsed.runs == expected_runs


@pytest.mark.parametrize("mutable", [False, True], ids=["plain", "mutable"])
@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_fast_path_takes_messages_layouts(text: str, mutable: bool, fast_path_only: None) -> None:
    assert body_text(encode_attributed_string(text, mutable=mutable)) == text


@pytest.mark.parametrize(
    ("size", "length_bytes"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x81\x80\x00"),
        (129, b"\x81\x81\x00"),
        (32767, b"\x81\xff\x7f"),
        (32768, b"\x82\x00\x80\x00\x00"),
        (70_000, b"\x82\x70\x11\x01\x00"),
    ],
)
def test_length_is_a_little_endian_signed_integer(size: int, length_bytes: bytes) -> None:
    blob = encode_attributed_string("a" * size)
    assert blob.startswith(STRING_PREFIX + length_bytes + b"a" * size + b"\x86")
    assert body_text(blob) == "a" * size


def test_nothing_and_empty() -> None:
    assert body_text(None) is None
    assert body_text(b"") is None
    assert body_text(encode_attributed_string("")) == ""
    assert parse_attributed_string(encode_attributed_string("")) == AttributedString("", ())
    with pytest.raises(TypedStreamError):
        parse_attributed_string(b"")


def test_writer_reproduces_messages_bytes() -> None:
    assert encode_attributed_string("Yes") == YES_BLOB
    assert encode_attributed_string(parse_attributed_string(LONG_BLOB).text) == LONG_BLOB
    assert encode_attributed_string("hi", mutable=True) == MUTABLE_HI_BLOB
    runs = [
        (1, {PART: 0, DATA_DETECTED: b"\x00\x01\x02"}),
        (1, {PART: 0, "__kIMOneTimeCodeAttributeName": {"code": "1234"}}),
    ]
    assert encode_attributed_string("ab", runs) == DATA_NESTED_BLOB


def test_real_blobs() -> None:
    assert_reads(YES_BLOB, "Yes")
    assert LONG_BLOB.startswith(STRING_PREFIX + b"\x81\xa5\x00")  # 165 as 0x81 + int16 LE
    start = len(STRING_PREFIX) + 3
    long_text = LONG_BLOB[start : start + 165].decode()
    assert long_text.startswith("we have to rewrite it all.")
    assert assert_reads(LONG_BLOB, long_text).runs == (AttributeRun(0, 165, {PART: 0}),)

    url = "https://github.com/obra/superpowers"
    (run,) = assert_reads(URL_BLOB, url).runs
    assert (run.start, run.length) == (0, len(url))
    assert run.attributes[LINK] == url
    assert typed(run.attributes[RICH_LINK]) == (bool, True)
    assert typed(run.attributes[DIRECTION]) == (int, -1)
    assert typed(run.attributes[PART]) == (int, 0)
    data = run.attributes[DATA_DETECTED]
    assert isinstance(data, bytes) and len(data) == 565 and data.startswith(b"bplist00")

    (run,) = assert_reads(AUDIO_BLOB, "\ufffc").runs
    assert run.attributes[GUID] == "at_0_8F92EDE2-7617-4991-B99C-8841143CAF18"
    transcription = run.attributes[TRANSCRIPTION]
    assert isinstance(transcription, str) and len(transcription.encode()) == 706
    assert transcription.startswith("Once you're done doing that")


def test_parts_with_attachment_mention_and_link() -> None:
    text = "\ufffc see @Sam https://example.test/x"
    parsed = assert_reads(PARTS_BLOB, text)
    pieces = [
        (text[run.start : run.start + run.length], dict(run.attributes)) for run in parsed.runs
    ]
    assert pieces == [
        ("\ufffc", {GUID: "AT_0_0000-FAKE-GUID", DIRECTION: -1, PART: 0}),
        (" see ", {PART: 1}),
        ("@Sam", {PART: 1, MENTION: "+15550100"}),
        (" ", {PART: 1}),
        ("https://example.test/x", {LINK: "https://example.test/x", PART: 1, RICH_LINK: True}),
    ]
    # Runs that reuse a dictionary index share the one decoded mapping.
    assert parsed.runs[1].attributes is parsed.runs[3].attributes


def test_attachments_and_parts_in_code_points() -> None:
    text = "\ufffc\ufffc👩‍👩‍👧‍👦 look 🇯🇵 @Ann!"
    pieces: list[tuple[str, dict[str, object]]] = [
        ("\ufffc", {PART: 0, GUID: "at_0_A"}),
        ("\ufffc", {PART: 1, GUID: "at_1_B"}),
        ("👩‍👩‍👧‍👦 look 🇯🇵 ", {PART: 2, BOLD: 1}),
        ("@Ann", {PART: 2, MENTION: "ann@example.com"}),
        ("!", {PART: 2, BOLD: 1}),
    ]
    blob = encode_attributed_string(text, [(utf16_length(p), a) for p, a in pieces], mutable=True)
    parsed = assert_reads(blob, text)
    assert [(text[r.start : r.start + r.length], r.attributes) for r in parsed.runs] == pieces
    assert parsed.runs[2].attributes is parsed.runs[4].attributes
    assert blob.count(BOLD.encode()) == 1  # equal dictionaries are archived once


def test_equal_but_differently_typed_values_get_their_own_dictionary() -> None:
    runs: list[tuple[int, dict[str, object]]] = [(1, {"x": 1}), (1, {"x": True})]
    runs += [(1, {"x": 1.0}), (1, {"x": 1})]
    parsed = parse_attributed_string(encode_attributed_string("abcd", runs))
    assert [typed(run.attributes) for run in parsed.runs] == [typed(a) for _, a in runs]


def test_utf16_bodies() -> None:
    for text in ("héllo 👋🏽", "", "\n lead and trail \n", "\ufffc"):
        blob = b"\xff\xfe" + text.encode("utf-16-le")
        assert body_text(blob) == text
        assert parse_attributed_string(blob) == AttributedString(text, ())
    for bad in (b"\xff\xfe" + b"a", b"\xff\xfe" + "\ud83d".encode("utf-16-le", "surrogatepass")):
        assert body_text(bad) is None
        with pytest.raises(TypedStreamError):
            parse_attributed_string(bad)


def test_unknown_attribute_class_is_parsed_generically() -> None:
    color = (
        b"\x84\x84\x84\x07NSColor\x00\x94"  # new object, class NSColor > NSObject (O2)
        + shared_literal(b"ff")
        + b"\x83"
        + struct.pack("<f", 0.5)
        + b"\x01\x86"  # 0.5 tagged as float, 1.0 archived as the integer 1, end
    )
    blob = with_value_object(color)
    assert body_text(blob) == "a"
    (run,) = parse_attributed_string(blob).runs
    assert run.attributes == {"k": {"$class": "NSColor", "$fields": [0.5, 1.0]}}


def test_unreadable_attributes_keep_the_text() -> None:
    blob = with_value_object(b"\x84\x84\x84\x05NSFoo\x00\x94" + shared_literal(b"^v") + b"\x00\x86")
    with pytest.raises(TypedStreamError, match="type string"):
        parse_attributed_string(blob)
    assert body_text(blob) == "a"
    valid = encode_attributed_string("kept", [(4, {PART: 0})])
    assert body_text(valid[:-3]) == "kept"  # truncated inside the attributes
    with pytest.raises(TypedStreamError, match="end of data"):
        parse_attributed_string(valid[:-3])


@pytest.mark.parametrize(
    ("text", "runs", "error"),
    [
        ("abc", [(2, {})], ValueError),
        ("abc", [(2, {}), (2, {})], ValueError),
        ("ab", [(0, {}), (2, {})], ValueError),
        ("ab", [(True, {}), (1, {})], ValueError),
        ("😀", [(1, {}), (1, {})], ValueError),  # splits the surrogate pair
        ("\ud800", None, ValueError),  # lone surrogate
        ("a", [(1, {"x": 2**31})], ValueError),
        ("a", [(1, {"x": None})], TypeError),
        ("a", [(1, {"x": {1: "int key"}})], TypeError),
    ],
)
def test_writer_rejects(text: str, runs: list[tuple[int, dict[str, object]]], error: type) -> None:
    with pytest.raises(error):
        encode_attributed_string(text, runs)


def test_writer_nests_only_as_deep_as_the_reader_reads() -> None:
    value: object = b"leaf"  # NSData: its byte array is one level deeper still
    for _ in range(codec.MAX_DEPTH - 4):  # root, dictionary, lists..., NSData
        value = [value]
    (run,) = parse_attributed_string(encode_attributed_string("a", [(1, {"x": value})])).runs
    assert run.attributes["x"] == value
    with pytest.raises(ValueError, match="deeper"):
        encode_attributed_string("a", [(1, {"x": [value]})])


# ---------------------------------------------------------------------------------------------
# Property tests

ATTRIBUTE_VALUES = st.recursive(
    st.one_of(
        st.text(max_size=20),
        st.booleans(),
        st.integers(-(2**31), 2**31 - 1),
        st.floats(allow_nan=False),
        st.binary(max_size=40),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=8), children, max_size=3),
    ),
    max_leaves=6,
)
ATTRIBUTES = st.dictionaries(st.text(max_size=40), ATTRIBUTE_VALUES, max_size=4)


@st.composite
def texts_with_runs(draw: st.DrawFn) -> tuple[str, list[tuple[str, dict[str, object]]]]:
    """A text cut at code-point boundaries into runs drawing from a few attribute dicts."""
    text = draw(st.text())
    if not text:
        return text, []
    cuts = draw(st.sets(st.integers(1, len(text) - 1), max_size=8)) if len(text) > 1 else set()
    bounds = [0, *sorted(cuts), len(text)]
    pool = draw(st.lists(ATTRIBUTES, min_size=1, max_size=3))
    pieces = [(text[a:b], draw(st.sampled_from(pool))) for a, b in pairwise(bounds)]
    return text, pieces


@given(st.text(), st.booleans())
def test_round_trip_text(text: str, mutable: bool) -> None:
    blob = encode_attributed_string(text, mutable=mutable)
    assert body_text(blob) == text
    assert codec._slow_text(blob) == text
    assert parse_attributed_string(blob).text == text


@given(texts_with_runs(), st.booleans())
def test_round_trip_runs(
    case: tuple[str, list[tuple[str, dict[str, object]]]], mutable: bool
) -> None:
    text, pieces = case
    blob = encode_attributed_string(
        text, [(utf16_length(p), a) for p, a in pieces], mutable=mutable
    )
    parsed = parse_attributed_string(blob)
    assert parsed.text == text
    assert body_text(blob) == text
    start = 0
    for run, (piece, attributes) in zip(parsed.runs, pieces, strict=True):
        assert (run.start, run.length) == (start, len(piece))
        assert typed(run.attributes) == typed(attributes)
        start += len(piece)


@given(texts_with_runs(), st.booleans())
def test_oracle_reads_the_writer(
    case: tuple[str, list[tuple[str, dict[str, object]]]], mutable: bool
) -> None:
    text, pieces = case
    blob = encode_attributed_string(
        text, [(utf16_length(p), a) for p, a in pieces], mutable=mutable
    )
    root, oracle_text, oracle_runs = oracle_read(blob)
    expected_class = b"NSMutableAttributedString" if mutable else b"NSAttributedString"
    assert root.clazz.name == expected_class
    assert oracle_text == text
    # The oracle reads 'c' NSNumbers as ints, so compare without types (True == 1).
    assert oracle_runs == [(utf16_length(p), a) for p, a in pieces]


# ---------------------------------------------------------------------------------------------
# Fuzzing and hostile input


def assert_contained(blob: bytes) -> None:
    """``body_text`` never raises and ``parse_attributed_string`` raises only TypedStreamError."""
    text = body_text(blob)
    assert text is None or isinstance(text, str)
    try:
        parsed = parse_attributed_string(blob)
    except TypedStreamError:
        return
    assert isinstance(parsed.text, str)
    assert text == parsed.text


VALID_BLOBS = st.builds(
    lambda case, mutable: encode_attributed_string(
        case[0], [(utf16_length(p), a) for p, a in case[1]], mutable=mutable
    ),
    texts_with_runs(),
    st.booleans(),
) | st.sampled_from([YES_BLOB, LONG_BLOB, URL_BLOB, AUDIO_BLOB, PARTS_BLOB, DATA_NESTED_BLOB])


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(blob: bytes) -> None:
    assert_contained(blob)
    assert_contained(STRING_PREFIX + blob)
    assert_contained(b"\xff\xfe" + blob)


@settings(max_examples=300)
@given(VALID_BLOBS, st.data())
def test_fuzz_truncation(blob: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(blob) - 1))
    assert_contained(blob[:cut])
    with pytest.raises(TypedStreamError):
        parse_attributed_string(blob[:cut])


@settings(max_examples=500)
@given(VALID_BLOBS, st.data())
def test_fuzz_mutation(blob: bytes, data: st.DataObject) -> None:
    mutated = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 3))):
        mutated[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    assert_contained(bytes(mutated))


def assert_rejected_quickly(blob: bytes, match: str) -> None:
    start = time.perf_counter()
    with pytest.raises(TypedStreamError, match=match):
        parse_attributed_string(blob)
    body_text(blob)
    assert time.perf_counter() - start < 1.0


# In a with_value_object() blob the value object is O8, a new class in it O9 (reference 0x9b),
# and the next new shared string is S8 (reference 0x9a).
NSFOO = b"\x84\x84\x84\x05NSFoo\x00\x94"  # new object of class NSFoo > NSObject (O2)


def test_hostile_deep_nesting() -> None:
    # Each "92 84 9b" opens another NSFoo object as the first field of the previous one.
    blob = with_value_object(NSFOO + b"\x92\x84\x9b" * 100_000)
    assert_rejected_quickly(blob, "nesting deeper")
    assert body_text(blob) == "a"
    nested_type = b"[1" * 10_000 + b"c" + b"]" * 10_000
    blob = with_value_object(NSFOO + shared_literal(nested_type))
    assert_rejected_quickly(blob, "type string")
    assert body_text(blob) == "a"


def test_hostile_lengths() -> None:
    for length in (b"\x82\xff\xff\xff\x7f", b"\x81\xff\x7f", b"\x82\x00\x00\x00\x80", b"\x7f"):
        blob = STRING_PREFIX + length + b"abc\x86\x86"
        assert body_text(blob) is None
        assert_rejected_quickly(blob, "exceeds|length")
    huge_data = with_value_object(
        b"\x84\x84\x84\x06NSData\x00\x94\x99\x03" + shared_literal(b"[999999999c]")
    )
    assert_rejected_quickly(huge_data, "exceeds")


def test_hostile_work_amplification() -> None:
    # Arrays of empty arrays cost no bytes per element: the value budget stops them.
    empty_arrays = NSFOO + shared_literal(b"[999999999[0c]]")
    assert_rejected_quickly(with_value_object(empty_arrays), "more values")
    # A long type string of empty arrays, referenced over and over.
    spec = b"[0c]" * 2000
    fields = shared_literal(spec) + b"\x9b" * 2000  # S9: NSFoo is S8
    assert_rejected_quickly(with_value_object(NSFOO + fields), "more values")


def test_hostile_references() -> None:
    cycle = with_value_object(NSFOO + b"\x92\x9a\x86")  # NSFoo (O8) holding itself
    assert_rejected_quickly(cycle, "still being decoded")
    assert_rejected_quickly(ROOT + b"\x92\x92", "NSString")  # the text must be a literal
    assert_rejected_quickly(ROOT + b"\x92\x84\xff", "outside")  # class #109 of 3
    assert_rejected_quickly(ROOT + b"\x92\x84\x92", "not a class")  # object O0 used as a class
    assert_rejected_quickly(ROOT + b"\xff", "outside the string table")
    chain = b"".join(b"\x84" + shared_literal(b"C%d" % i) + b"\x00" for i in range(200))
    assert_rejected_quickly(ROOT + b"\x92\x84" + chain + b"\x85", "class chain longer")


def test_reference_table_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "MAX_REFERENCES", 5)
    assert_rejected_quickly(YES_BLOB, "more than 5")
    assert body_text(YES_BLOB) == "Yes"  # the fast path needs no tables


def test_not_a_typedstream() -> None:
    for blob in (b"hello", HEADER, HEADER.replace(b"streamtyped", b"typedstream"), b"\x00" * 40):
        assert body_text(blob) is None
        with pytest.raises(TypedStreamError):
            parse_attributed_string(blob)
    dictionary_root = encode_attributed_string("a").replace(
        b"NSAttributedString", b"NSDictionaryXXXXXX"
    )
    assert body_text(dictionary_root) is None
    with pytest.raises(TypedStreamError, match="not an NSAttributedString"):
        parse_attributed_string(dictionary_root)
    assert body_text("not bytes") is None  # type: ignore[arg-type]
