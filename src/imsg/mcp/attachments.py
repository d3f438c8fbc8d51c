"""``get_attachment``: one attachment of one message, an image as pixels a model can look at.

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

import os
import subprocess
import sys

from imsg.chatdb.models import Attachment
from imsg.chatdb.reader import ChatDB
from imsg.errors import InvalidInput
from imsg.mcp import formatting as fmt
from imsg.mcp.answers import Answer, Image

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
