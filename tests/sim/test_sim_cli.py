"""``imsg sim init`` makes the folders it needs and fails in one line where it cannot."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from imsg.cli import main


def test_init_creates_missing_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "chat.db"
    result = CliRunner().invoke(main, ["sim", "init", str(target)])
    assert result.exit_code == 0 and target.is_file()


def test_init_where_nothing_can_be_created_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(main, ["sim", "init", str(blocker / "chat.db")])
    assert result.exit_code == 1 and "cannot create" in result.output
    assert "Traceback" not in result.output
