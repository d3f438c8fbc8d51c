"""``list_attachments``: which files were shared, newest first, one line each; and
``get_attachment``: one attachment of one message, an image as pixels a model can look at.

``list_attachments`` filters in SQL (``ChatDB.list_attachments``: by chat, kind, sender and
dates, before the limit) and names each attachment as ``get_attachment`` takes it.

The attachment is named by the message id and its index in the message (the ``[0: image …]``
of the compact text), never by a path: the tool only ever opens files chat.db lists, so a
model cannot be talked into reading an arbitrary file.

Images (JPEG, PNG, GIF's first frame, HEIC/HEIF, WebP, TIFF…) are decoded and downscaled to at
most ``max_pixels`` on the long side (1568 by default, what vision models take without
resizing again) and re-encoded as JPEG (PNG when the image has transparency). Decoding runs in
a child Python process with a deadline (``IMAGE_TIMEOUT_S``), under Pillow's decompression-
bomb limit, so a hostile file sent by anyone can neither crash nor hang the server; its output
is capped at ``MAX_OUTPUT_BYTES``. Other files (audio, video, documents) come back as metadata
and their path, a voice message with its transcript.

Failure modes (``InvalidInput`` unless said): no such message; no attachment at that index;
the file is not on this Mac (still in iCloud); Pillow not installed (``pip install
'imsg[convert]'``); an image that cannot be decoded, or not within the deadline, says why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

from imsg.chatdb.models import Attachment, Chat, Message
from imsg.chatdb.reader import ChatDB
from imsg.errors import InvalidInput
from imsg.mcp import formatting as fmt
from imsg.mcp import reading
from imsg.mcp.answers import Answer, Image
from imsg.mcp.finding import Found, chat_by_id

DEFAULT_MAX_PIXELS = 1568
IMAGE_TIMEOUT_S = 30.0
MAX_OUTPUT_BYTES = 8 << 20
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".heic", ".heif", ".webp", ".tif", ".tiff",
                   ".bmp"}

# Runs in a child interpreter: argv is the source path and the long-side limit. Writes the
# encoded image to stdout, preceded by one line "<mime> <width> <height> <source w> <source h>".
_SCRIPT = """\
import io, sys
from PIL import Image
try:
    import pillow_heif
    pillow_heif.register_heif_opener()
except ImportError:
    pass
source, limit = sys.argv[1], int(sys.argv[2])
with Image.open(source) as image:
    image.seek(0)
    size = image.size
    image.draft("RGB", (limit, limit))
    image.thumbnail((limit, limit))
    alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    out = io.BytesIO()
    if alpha:
        image.convert("RGBA").save(out, "PNG", optimize=True)
        mime = "image/png"
    else:
        image.convert("RGB").save(out, "JPEG", quality=82)
        mime = "image/jpeg"
header = f"{mime} {image.size[0]} {image.size[1]} {size[0]} {size[1]}\\n".encode()
sys.stdout.buffer.write(header + out.getvalue())
"""


def is_image(attachment: Attachment) -> bool:
    if attachment.mime_type.lower().startswith("image/"):
        return True
    names = (attachment.transfer_name, attachment.filename, attachment.original_path)
    return any(os.path.splitext(n)[1].lower() in _IMAGE_SUFFIXES for n in names if n)


def get_attachment(db: ChatDB, *, message_id: int, index: int = 0,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> Answer:
    found = db.messages_by_rowid([message_id])
    if not found:
        raise InvalidInput(f"No message #{message_id}")
    message = found[0][0]
    if not 0 <= index < len(message.attachments):
        count = len(message.attachments)
        raise InvalidInput(f"Message #{message_id} has {count} attachment"
                           f"{'s' if count != 1 else ''}; no index {index}")
    attachment = message.attachments[index]
    label = fmt.attachment_label(index, attachment)
    data: dict[str, object] = {"message_id": message_id, "index": index,
                               "attachment": attachment.to_dict()}
    if attachment.missing or not os.path.isfile(attachment.original_path):
        raise InvalidInput(f"Attachment {index} of message #{message_id} is not on this Mac "
                           "(it may still be in iCloud: open the chat in Messages to download "
                           "it)")
    if not is_image(attachment):
        lines = [f"#{message_id} {label}", f"path: {attachment.original_path}",
                 f"type: {attachment.mime_type or attachment.uti or 'unknown'}"]
        if attachment.transcription:
            lines.append(f"transcript: {attachment.transcription}")
        return Answer("\n".join(lines), data)
    image, shape = downscale(attachment.original_path, max_pixels)
    width, height, source_w, source_h = shape
    data["image"] = {"mime_type": image.mime_type, "width": width, "height": height,
                     "source_width": source_w, "source_height": source_h}
    text = (f"#{message_id} {label}: {source_w}×{source_h}, shown at {width}×{height} "
            f"({image.mime_type})\npath: {attachment.original_path}")
    return Answer(text, data, (image,))


Listed = tuple[Message, int]  # a message and the index of one of its attachments
KIND_NOUNS = {"image": "image", "video": "video", "audio": "audio file", "file": "file",
              "any": "attachment"}


def list_attachments(db: ChatDB, *, chat_id: int | None = None, chat: str | None = None,
                     kind: str = "any", sender: str | None = None, before: str | None = None,
                     after: str | None = None, limit: int = 20) -> Answer:
    """Attachments newest first, in one chat or all, of one kind (``image``, ``video``,
    ``audio``, ``file``; ``any`` includes stickers), from one person or the user (``me``),
    within dates: one line each with the message id and index ``get_attachment`` takes.

    A page never ends inside a message (``_page``: a message with more files than ``limit``
    comes whole), so the call for the older ones that ends it (``before`` = the last
    message's time) misses nothing. Raises InvalidInput (an
    unknown kind, a sender no one matches, bad times), ChatNotFound or a DatabaseError."""
    if kind not in KIND_NOUNS:
        raise InvalidInput(f"Invalid kind: {kind!r} (use {', '.join(KIND_NOUNS)})")
    names: dict[str, str] = {}
    scope: Chat | None = None
    others: list[Found] = []
    if chat_id is not None or (chat and chat.strip()):
        scope, others = reading.target_chat(db, chat_id, chat, names)
    mine = False
    senders: tuple[str, ...] = ()
    if sender and sender.strip():
        mine, senders = reading.senders_named(db, sender, scope, names)
    start, end = reading.window(after, before)

    def fetch(count: int) -> list[Listed]:
        return db.list_attachments(chat_id=scope.id if scope else None,
                                   kind=None if kind == "any" else kind, senders=senders,
                                   from_me=mine, start_ns=start, end_ns=end, limit=count)

    listed, more = _page(fetch, limit)
    chats = {scope.id: scope} if scope else {c: chat_by_id(db, c) for c in
                                             dict.fromkeys(m.chat_id for m, _ in listed)}
    names = reading.names_for(db, list(chats.values()), [m for m, _ in listed], names)
    noun = KIND_NOUNS[kind] + ("s" if len(listed) != 1 else "")
    where = f" in {fmt.chat_header(scope, names)}" if scope else ""
    who = f" from {sender.strip()}" if sender and sender.strip() else ""
    if not listed:
        text = f"No {KIND_NOUNS[kind]}s{who}{where}."
    else:
        lines = [f"{len(listed)} {noun}{who}{where}, newest first (times {fmt.zone_name()}):",
                 *reading.also(others, names),
                 *fmt.attachments_block(listed, names, reading.today(),
                                        chats=None if scope else chats)]
        if more:
            call = _older_call(scope, kind, sender, after, listed[-1][0].created_at)
            lines.append(f"(older: {call})")
        text = "\n".join(lines)
    data = {"chats": [fmt.chat_data(c, names) for c in chats.values()],
            "attachments": [_attachment_data(m, i) for m, i in listed], "has_more": more}
    return Answer(text, data)


def _page(fetch: Callable[[int], list[Listed]], limit: int) -> tuple[list[Listed], bool]:
    """Up to ``limit`` attachments and whether there are more, never ending inside a message:
    the page stops before the message the limit would cut, or, when that message is the only
    one, holds all of its attachments (``fetch(n)``: the first ``n``)."""
    found = fetch(limit + 1)
    if len(found) <= limit:
        return found, False
    cut = found[limit][0].id
    if found[limit - 1][0].id != cut:
        return found[:limit], True
    whole = [item for item in found[:limit] if item[0].id != cut]
    if whole:
        return whole, True
    found = fetch(limit + len(found[0][0].attachments) + 1)
    page = [item for item in found if item[0].id == cut]
    return page, len(found) > len(page)


def _older_call(scope: Chat | None, kind: str, sender: str | None, after: str | None,
                before: str) -> str:
    arguments = [f"chat_id={scope.id}"] if scope else []
    if kind != "any":
        arguments.append(f'kind="{kind}"')
    if sender and sender.strip():
        arguments.append(f"sender={json.dumps(sender.strip(), ensure_ascii=False)}")
    if after:
        arguments.append(f"after={json.dumps(after, ensure_ascii=False)}")
    arguments.append(f'before="{before}"')
    return f"list_attachments({', '.join(arguments)})"


def _attachment_data(message: Message, index: int) -> dict[str, object]:
    """One listed attachment as structured content: its message's keys that say where and
    from whom, its kind, and the attachment as ``get_attachment`` describes it."""
    attachment = message.attachments[index]
    data: dict[str, object] = {
        "message_id": message.id, "index": index, "chat_id": message.chat_id,
        "created_at": message.created_at, "sender": message.sender,
        "is_from_me": message.is_from_me, "kind": fmt.attachment_kind(attachment),
        "attachment": attachment.to_dict()}
    if message.sender_name:
        data["sender_name"] = message.sender_name
    return data


def downscale(path: str, max_pixels: int) -> tuple[Image, tuple[int, int, int, int]]:
    """The image at ``path`` re-encoded at most ``max_pixels`` on its long side, and (width,
    height, source width, source height). Raises InvalidInput (module docstring)."""
    import importlib.util

    if importlib.util.find_spec("PIL") is None:
        raise InvalidInput("Showing images needs Pillow: pip install 'imsg[convert]'")
    try:
        done = subprocess.run([sys.executable, "-c", _SCRIPT, path, str(max_pixels)],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=IMAGE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise InvalidInput(f"Decoding {os.path.basename(path)} took longer than "
                           f"{IMAGE_TIMEOUT_S:g}s") from None
    except OSError as exc:
        raise InvalidInput(f"Cannot run the image decoder: {exc.strerror or exc}") from None
    header, _, body = done.stdout.partition(b"\n")
    fields = header.decode("ascii", "replace").split()
    if done.returncode != 0 or len(fields) != 5 or not body:
        problem = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = problem[-1] if problem else f"exit {done.returncode}"
        raise InvalidInput(f"Cannot decode {os.path.basename(path)} as an image: "
                           f"{fmt.clip(detail, 200)}")
    if len(body) > MAX_OUTPUT_BYTES:
        raise InvalidInput(f"{os.path.basename(path)} is too large even when downscaled; "
                           "ask for fewer max_pixels")
    mime, *numbers = fields
    width, height, source_w, source_h = (int(n) for n in numbers)
    return Image(body, mime), (width, height, source_w, source_h)
