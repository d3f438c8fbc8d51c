"""Making a socket path bindable: refusals that need no server running."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imsg.errors import InvalidInput
from imsg.rpc.listener import default_socket_path, prepare_path


def test_too_long_a_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="too long"):
        prepare_path(str(tmp_path / ("x" * 120) / "rpc.sock"))


def test_own_directory_is_made_private(tmp_path: Path) -> None:
    directory = tmp_path / "imsg"
    directory.mkdir(mode=0o755)
    prepare_path(str(directory / "rpc.sock"), own_dir=True)
    assert directory.stat().st_mode & 0o777 == 0o700


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a directory away")
def test_a_foreign_default_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "imsg-0"
    directory.mkdir()
    os.chown(directory, 12345, 12345)
    with pytest.raises(InvalidInput, match="another user"):
        prepare_path(str(directory / "rpc.sock"), own_dir=True)
    prepare_path(str(directory / "rpc.sock"))  # a path given on purpose is the user's call


def test_default_path_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMSG_SOCKET", "~/custom.sock")
    assert default_socket_path() == os.path.expanduser("~/custom.sock")
    monkeypatch.delenv("IMSG_SOCKET")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_socket_path() == str(tmp_path / "imsg" / "rpc.sock")
