"""Sticker images checked before they reach the helper, with the Swift tool's limits: PNG
(APNG too), GIF or JPEG; at most 500 KiB, 618×618 pixels, 100 frames and 25 million decoded
pixels (frames × width × height). The format is read from the file's own header, never from
its name. ``inspect`` returns what ``send-sticker`` needs (size, frames, SHA-256) or raises
``AttachmentError`` saying which limit failed.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from imsg.errors import AttachmentError

MAX_BYTES = 500 * 1024
MAX_SIDE = 618
MAX_FRAMES = 100
MAX_DECODED_PIXELS = 25_000_000
_PNG = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class StickerImage:
    kind: str  # png | gif | jpeg
    width: int
    height: int
    frames: int
    sha256: str


def inspect(data: bytes, name: str = "sticker") -> StickerImage:
    """Check ``data`` (the whole file) against the limits; raises AttachmentError."""
    if len(data) > MAX_BYTES:
        raise AttachmentError(f"Sticker {name} is {len(data)} bytes; the limit is {MAX_BYTES}")
    if data.startswith(_PNG):
        kind, (width, height, frames) = "png", _png(data, name)
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        kind, (width, height, frames) = "gif", _gif(data, name)
    elif data.startswith(b"\xff\xd8"):
        kind, (width, height, frames) = "jpeg", _jpeg(data, name)
    else:
        raise AttachmentError(f"Sticker {name} is not a PNG, GIF or JPEG image")
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise AttachmentError(f"Sticker {name} is {width}×{height}; stickers are at most "
                              f"{MAX_SIDE}×{MAX_SIDE}")
    if not 0 < frames <= MAX_FRAMES:
        raise AttachmentError(f"Sticker {name} has {frames} frames; the limit is {MAX_FRAMES}")
    if frames * width * height > MAX_DECODED_PIXELS:
        raise AttachmentError(f"Sticker {name} decodes to more than {MAX_DECODED_PIXELS} pixels")
    return StickerImage(kind, width, height, frames, hashlib.sha256(data).hexdigest())


def _png(data: bytes, name: str) -> tuple[int, int, int]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise AttachmentError(f"Sticker {name} is a damaged PNG (no header)")
    width, height = struct.unpack(">II", data[16:24])
    frames = 1
    offset = 8
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        chunk = data[offset + 4:offset + 8]
        if chunk == b"acTL" and offset + 12 <= len(data):
            (frames,) = struct.unpack(">I", data[offset + 8:offset + 12])
        if chunk in (b"IDAT", b"IEND"):
            break
        offset += 12 + length
    return width, height, frames


def _gif(data: bytes, name: str) -> tuple[int, int, int]:
    if len(data) < 13:
        raise AttachmentError(f"Sticker {name} is a damaged GIF (no header)")
    width, height, flags = struct.unpack("<HHB", data[6:11])
    offset = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
    frames = 0
    try:
        while offset < len(data):
            block = data[offset]
            if block == 0x3B:  # trailer
                break
            if block == 0x21:  # extension: label, then sub-blocks
                offset = _skip_sub_blocks(data, offset + 2)
            elif block == 0x2C:  # image: descriptor, optional color table, LZW size, data
                frames += 1
                packed = data[offset + 9]
                offset += 10 + (3 * (2 << (packed & 7)) if packed & 0x80 else 0)
                offset = _skip_sub_blocks(data, offset + 1)
            else:
                raise IndexError(block)
    except IndexError:
        raise AttachmentError(f"Sticker {name} is a damaged GIF") from None
    return width, height, frames


def _skip_sub_blocks(data: bytes, offset: int) -> int:
    while data[offset]:
        offset += data[offset] + 1
    return offset + 1


def _jpeg(data: bytes, name: str) -> tuple[int, int, int]:
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            break
        marker = data[offset + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            offset += 2
            continue
        (length,) = struct.unpack(">H", data[offset + 2:offset + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if offset + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[offset + 5:offset + 9])
            return width, height, 1
        offset += 2 + length
    raise AttachmentError(f"Sticker {name} is a damaged JPEG (no frame header)")
