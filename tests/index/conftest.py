"""Every index test keeps its index files in a temporary cache directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import imsg.index


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "cache"
    monkeypatch.setenv("IMSG_CACHE_DIR", str(folder))
    monkeypatch.delenv("IMSG_INDEX", raising=False)
    yield folder
    imsg.index.close_all()
