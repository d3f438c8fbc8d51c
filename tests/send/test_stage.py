"""Files are opened once, checked on the descriptor, and copied with a hard byte cap under
~/Library/Messages/Attachments/imsg/<UUID>/."""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from imsg.errors import AttachmentError, InvalidInput
from imsg.send.stage import open_source, remove_stale, stage_file, staging_root


def test_staging_root_is_under_home(isolated_home: Path) -> None:
    assert staging_root() == isolated_home / "Library/Messages/Attachments/imsg"


def test_opens_a_regular_file_up_to_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "ten.bin"
    path.write_bytes(b"x" * 10)
    with open_source(str(path), max_bytes=10) as source:
        assert (source.path, source.name, source.size) == (path, "ten.bin", 10)
    assert source.fd == -1


def test_refuses_a_file_over_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "eleven.bin"
    path.write_bytes(b"x" * 11)
    with pytest.raises(AttachmentError, match=r"File too large: .* is 11 bytes; the limit is 10"):
        open_source(str(path), max_bytes=10)


def test_refuses_a_symlink_as_the_last_component(tmp_path: Path) -> None:
    target = tmp_path / "real.bin"
    target.write_bytes(b"x")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    with pytest.raises(AttachmentError, match="Refusing a symbolic link"):
        open_source(str(link))


def test_refuses_missing_and_irregular_files_without_blocking(tmp_path: Path) -> None:
    with pytest.raises(AttachmentError, match="File not found"):
        open_source(str(tmp_path / "missing.jpg"))
    with pytest.raises(AttachmentError, match="Not a regular file"):
        open_source(str(tmp_path))
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # no writer: a blocking open would hang here
    with pytest.raises(AttachmentError, match="Not a regular file"):
        open_source(str(fifo))
    with pytest.raises(AttachmentError, match="Not a regular file"):
        open_source("/dev/zero")
    (tmp_path / "plain.txt").write_text("x")
    with pytest.raises(AttachmentError, match=r"Cannot read .*: Not a directory"):
        open_source(str(tmp_path / "plain.txt" / "child"))


def test_refuses_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(AttachmentError, match="Not a regular file"):
            open_source(str(path))


@pytest.mark.parametrize(("path", "message"), [
    ("a\0b.jpg", "NUL"), ("lone \ud800 surrogate.jpg", "not valid Unicode"),
    ("bad \udc80 byte.jpg", "not valid Unicode"), ("  ", "empty")])
def test_paths_no_file_can_have_are_invalid_input(path: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        open_source(path)
    assert caught.value.exit_code == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_refuses_unreadable_files(tmp_path: Path) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("x")
    path.chmod(0)
    with pytest.raises(AttachmentError, match="not readable"):
        open_source(str(path))


def test_stage_copies_under_a_fresh_uuid_keeping_the_name(tmp_path: Path) -> None:
    source = tmp_path / 'my "holiday" photo\'s.jpg'
    source.write_bytes(b"\xff\xd8 jpeg")
    with open_source(str(source)) as opened:
        first = stage_file(opened)
        second = stage_file(opened)
    assert first.parent.parent == second.parent.parent == staging_root()
    assert first.parent != second.parent
    assert uuid.UUID(first.parent.name) and first.name == source.name
    assert first.read_bytes() == second.read_bytes() == source.read_bytes()
    assert first.parent.stat().st_mode & 0o777 == 0o700


def test_a_symlink_swapped_in_after_the_check_is_never_copied(tmp_path: Path) -> None:
    path = tmp_path / "small.bin"
    path.write_bytes(b"small")
    big = tmp_path / "big.bin"
    big.write_bytes(b"B" * 4096)
    with open_source(str(path), max_bytes=100) as opened:
        path.unlink()
        path.symlink_to(big)
        staged = stage_file(opened)
    assert staged.read_bytes() == b"small"


def test_a_file_growing_past_the_limit_fails_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "growing.log"
    path.write_bytes(b"x" * 10)
    with open_source(str(path), max_bytes=100) as opened:
        with path.open("ab") as more:
            more.write(b"y" * 5000)
        with pytest.raises(AttachmentError, match="grew past the limit of 100 bytes"):
            stage_file(opened)
    assert list(staging_root().iterdir()) == []


def test_a_file_that_keeps_growing_is_cut_off_at_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "endless.bin"
    path.write_bytes(b"")
    stop = threading.Event()

    def writer() -> None:
        with path.open("ab") as out:
            while not stop.is_set():
                out.write(b"z" * 65536)
                out.flush()

    with open_source(str(path), max_bytes=1024 * 1024) as opened:
        thread = threading.Thread(target=writer)
        thread.start()
        try:
            while path.stat().st_size <= 1024 * 1024:
                time.sleep(0.01)
            with pytest.raises(AttachmentError, match="grew past the limit"):
                stage_file(opened)
        finally:
            stop.set()
            thread.join()
    assert list(staging_root().iterdir()) == []


def test_a_full_disk_is_a_clear_error(tmp_path: Path) -> None:
    source = tmp_path / "a.jpg"
    source.write_bytes(b"x" * 10)

    def disk_full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with open_source(str(source)) as opened, pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "write", disk_full)
        with pytest.raises(AttachmentError, match=r"Cannot stage .*No space left on device"):
            stage_file(opened)
    assert list(staging_root().iterdir()) == []


def test_copies_older_than_a_day_are_removed(tmp_path: Path) -> None:
    root = tmp_path / "imsg"
    old, fresh, other = (root / str(uuid.uuid4()).upper(), root / str(uuid.uuid4()),
                         root / "keep-me")
    for folder in (old, fresh, other):
        folder.mkdir(parents=True)
        (folder / "a.jpg").write_text("x")
    stray = root / str(uuid.uuid4())
    stray.write_text("a file, not a staging folder")
    two_days_ago = time.time() - 2 * 86400
    for path in (old, other, stray):
        os.utime(path, (two_days_ago, two_days_ago))
    source = tmp_path / "new.jpg"
    source.write_text("new")
    with open_source(str(source)) as opened:
        staged = stage_file(opened, root)
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [fresh.name, other.name, stray.name, staged.parent.name])


def test_remove_stale_without_a_root_is_a_no_op(tmp_path: Path) -> None:
    remove_stale(tmp_path / "absent")
    assert not (tmp_path / "absent").exists()
