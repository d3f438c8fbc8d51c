"""Attachment files: checked, then copied where Messages can read them.

Messages' sandbox reliably reads only its own folder; sending from Desktop, Downloads or /tmp
can fail with error 25 (Swift imsg #15, #110). So each file is copied to
``~/Library/Messages/Attachments/imsg/<UUID>/<name>`` first. Messages reads the copy after
the AppleScript ``send`` returns (the upload runs later), so copies are kept and those older
than a day are removed on the next send.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
import uuid
from pathlib import Path

from imsg.errors import AttachmentError

DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024
STALE_AFTER_S = 24 * 60 * 60


def staging_root() -> Path:
    """``~/Library/Messages/Attachments/imsg`` of the current ``$HOME``."""
    return Path(os.path.expanduser("~"), "Library", "Messages", "Attachments", "imsg")


def check_file(path: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Path:
    """The absolute path of ``path`` if it can be sent.

    Raises AttachmentError when it does not exist, is not a regular file (directory, device,
    FIFO, socket), cannot be read, or is larger than ``max_bytes``.
    """
    source = Path(os.path.abspath(os.path.expanduser(path)))
    try:
        info = source.stat()
    except FileNotFoundError:
        raise AttachmentError(f"File not found: {source}") from None
    except OSError as exc:
        raise AttachmentError(f"Cannot read {source}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise AttachmentError(f"Not a regular file: {source}")
    if info.st_size > max_bytes:
        raise AttachmentError(
            f"File too large: {source} is {info.st_size} bytes; the limit is {max_bytes} bytes")
    if not os.access(source, os.R_OK):
        raise AttachmentError(f"File not readable: {source}")
    return source


def stage_file(source: Path, root: Path | None = None) -> Path:
    """Copy ``source`` to ``<root>/<UUID>/<its name>`` and return the copy's path.

    Removes stale copies under ``root`` first. Raises AttachmentError when the copy fails
    (source vanished or unreadable, disk full, no permission).
    """
    root = root or staging_root()
    remove_stale(root)
    folder = root / str(uuid.uuid4()).upper()
    copy = folder / source.name
    try:
        folder.mkdir(mode=0o700, parents=True)
        shutil.copyfile(source, copy)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise AttachmentError(f"Cannot stage {source} for Messages: {exc.strerror}") from None
    return copy


def remove_stale(root: Path, max_age_s: float = STALE_AFTER_S) -> None:
    """Delete staged ``<UUID>`` folders under ``root`` last changed over ``max_age_s`` ago.

    Best effort: a folder another process removes first, or one that cannot be listed, is
    skipped; anything not named like a UUID is left alone.
    """
    cutoff = time.time() - max_age_s
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        try:
            uuid.UUID(entry.name)
            is_old = entry.is_dir(follow_symlinks=False) and entry.stat(
                follow_symlinks=False).st_mtime < cutoff
        except (ValueError, OSError):
            continue
        if is_old:
            shutil.rmtree(entry.path, ignore_errors=True)
