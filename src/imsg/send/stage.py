"""Attachment files: opened once, checked on the open descriptor, copied where Messages reads.

Messages' sandbox reliably reads only its own folder; sending from Desktop, Downloads or /tmp
can fail with error 25 (Swift imsg #15, #110). So each file is copied to
``~/Library/Messages/Attachments/imsg/<UUID>/<name>`` first. Messages reads the copy after
the AppleScript ``send`` returns (the upload runs later), so copies are kept and those older
than a day are removed on the next send.

The file is opened exactly once (``open_source``): without following a symbolic link in the
last component, non-blocking (a FIFO cannot hang us), and checked with ``fstat`` on that
descriptor (regular file, size within the limit). The copy reads from the same descriptor and
stops at the limit, so swapping the path for a symlink to a larger file after the check, a
device such as /dev/zero, or a file that keeps growing can never put more than ``max_bytes``
on the disk.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from imsg.errors import AttachmentError, InvalidInput

DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024
STALE_AFTER_S = 24 * 60 * 60
_CHUNK = 1024 * 1024
_OPEN_FLAGS = (os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
               | getattr(os, "O_CLOEXEC", 0))
_NOT_REGULAR = {errno.ENXIO, errno.EOPNOTSUPP, errno.ENODEV}


def staging_root() -> Path:
    """``~/Library/Messages/Attachments/imsg`` of the current ``$HOME``."""
    return Path(os.path.expanduser("~"), "Library", "Messages", "Attachments", "imsg")


@dataclass(slots=True)
class SourceFile:
    """An open file to send: ``path`` as given (absolute), its ``size`` when checked, the
    descriptor ``fd`` and the ``max_bytes`` the copy may not exceed. Close it (or use it as a
    context manager) when the send is over."""

    path: Path
    fd: int
    size: int
    max_bytes: int

    @property
    def name(self) -> str:
        return self.path.name

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> SourceFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def check_path(path: str) -> str:
    """``path`` if the OS can take it; raises InvalidInput for NUL or a lone surrogate (text
    that is not Unicode, e.g. from JSON ``"\\ud800"``), which no file name can hold."""
    if "\0" in path:
        raise InvalidInput("Invalid file path: it contains a NUL character")
    if any("\ud800" <= ch <= "\udfff" for ch in path):
        raise InvalidInput(f"Invalid file path: {path.encode('utf-8', 'replace').decode()!r} is "
                           "not valid Unicode text")
    if not path.strip():
        raise InvalidInput("Invalid file path: it is empty")
    return path


def open_source(path: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> SourceFile:
    """Open ``path`` (``~`` expanded) for sending.

    Raises InvalidInput for a path no file can have (``check_path``), AttachmentError when
    it does not exist, is a symbolic link, is not a regular file (directory, device, FIFO,
    socket), cannot be read, or is larger than ``max_bytes``.
    """
    source = Path(os.path.abspath(os.path.expanduser(check_path(path))))
    try:
        fd = os.open(source, _OPEN_FLAGS)
    except FileNotFoundError:
        raise AttachmentError(f"File not found: {source}") from None
    except PermissionError:
        raise AttachmentError(f"File not readable: {source}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AttachmentError(f"Refusing a symbolic link: {source} (give the file itself)"
                                  ) from None
        if exc.errno in _NOT_REGULAR:
            raise AttachmentError(f"Not a regular file: {source}") from None
        raise AttachmentError(f"Cannot read {source}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AttachmentError(f"Not a regular file: {source}")
        if info.st_size > max_bytes:
            raise AttachmentError(f"File too large: {source} is {info.st_size} bytes; the limit "
                                  f"is {max_bytes} bytes")
    except BaseException:
        os.close(fd)
        raise
    return SourceFile(source, fd, info.st_size, max_bytes)


def stage_file(source: SourceFile, root: Path | None = None) -> Path:
    """Copy ``source`` (from its descriptor) to ``<root>/<UUID>/<its name>``; return the copy.

    Removes stale copies under ``root`` first. Raises AttachmentError, leaving nothing
    behind, when the file grows past ``source.max_bytes`` during the copy, or the copy fails
    (unreadable, disk full, no permission).
    """
    root = root or staging_root()
    remove_stale(root)
    folder = root / str(uuid.uuid4()).upper()
    copy = folder / source.name
    try:
        folder.mkdir(mode=0o700, parents=True)
        out = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                      | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            _copy_capped(source, out)
        finally:
            os.close(out)
    except AttachmentError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise AttachmentError(f"Cannot stage {source.path} for Messages: {exc.strerror}"
                              ) from None
    return copy


def _copy_capped(source: SourceFile, out: int) -> None:
    """Copy from the start of ``source.fd`` to ``out``, at most ``source.max_bytes`` bytes."""
    os.lseek(source.fd, 0, os.SEEK_SET)
    left = source.max_bytes
    while True:
        chunk = os.read(source.fd, min(_CHUNK, left + 1))
        if not chunk:
            return
        if len(chunk) > left:
            raise AttachmentError(f"File too large: {source.path} grew past the limit of "
                                  f"{source.max_bytes} bytes while it was being copied")
        left -= len(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(out, view):]


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
        with contextlib.suppress(ValueError, OSError):
            uuid.UUID(entry.name)
            if entry.is_dir(follow_symlinks=False) and entry.stat(
                    follow_symlinks=False).st_mtime < cutoff:
                shutil.rmtree(entry.path, ignore_errors=True)
