"""Files are checked, then copied under ~/Library/Messages/Attachments/imsg/<UUID>/."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from imsg.errors import AttachmentError
from imsg.send.stage import check_file, remove_stale, stage_file, staging_root


def test_staging_root_is_under_home(isolated_home: Path) -> None:
    assert staging_root() == isolated_home / "Library/Messages/Attachments/imsg"


def test_check_accepts_a_regular_file_up_to_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "ten.bin"
    path.write_bytes(b"x" * 10)
    assert check_file(str(path), max_bytes=10) == path
    link = tmp_path / "link.bin"
    link.symlink_to(path)
    assert check_file(str(link), max_bytes=10) == link


def test_check_refuses_a_file_over_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "eleven.bin"
    path.write_bytes(b"x" * 11)
    with pytest.raises(AttachmentError, match=r"File too large: .* is 11 bytes; the limit is 10"):
        check_file(str(path), max_bytes=10)


def test_check_refuses_missing_and_irregular_files(tmp_path: Path) -> None:
    with pytest.raises(AttachmentError, match="File not found"):
        check_file(str(tmp_path / "missing.jpg"))
    with pytest.raises(AttachmentError, match="Not a regular file"):
        check_file(str(tmp_path))
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(AttachmentError, match="Not a regular file"):
        check_file(str(fifo))
    (tmp_path / "plain.txt").write_text("x")
    with pytest.raises(AttachmentError, match=r"Cannot read .*: Not a directory"):
        check_file(str(tmp_path / "plain.txt" / "child"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_check_refuses_unreadable_files(tmp_path: Path) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("x")
    path.chmod(0)
    with pytest.raises(AttachmentError, match="not readable"):
        check_file(str(path))


def test_stage_copies_under_a_fresh_uuid_keeping_the_name(tmp_path: Path) -> None:
    source = tmp_path / 'my "holiday" photo\'s.jpg'
    source.write_bytes(b"\xff\xd8 jpeg")
    first = stage_file(source)
    second = stage_file(source)
    assert first.parent.parent == second.parent.parent == staging_root()
    assert first.parent != second.parent
    assert uuid.UUID(first.parent.name) and first.name == source.name
    assert first.read_bytes() == source.read_bytes()
    assert first.parent.stat().st_mode & 0o777 == 0o700


def test_stage_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(AttachmentError, match="Cannot stage"):
        stage_file(tmp_path / "vanished.jpg")
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
    staged = stage_file(source, root)
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [fresh.name, other.name, stray.name, staged.parent.name])


def test_remove_stale_without_a_root_is_a_no_op(tmp_path: Path) -> None:
    remove_stale(tmp_path / "absent")
    assert not (tmp_path / "absent").exists()
