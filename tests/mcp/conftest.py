"""One simulated world per module and one ``imsg mcp`` server on it (starting a server costs
about a second and a half: the tests of a module share it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mcp.harness import Session, World, make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("mcp"))


def start(world: World, *args: str, **env: str) -> Session:
    return Session("--db", world.db, *args, env=world.env(**env),
                   stderr=world.root / f"stderr-{len(list(world.root.glob('stderr-*')))}.txt")


@pytest.fixture(scope="module")
def session(world: World) -> Iterator[Session]:
    server = start(world)
    yield server
    server.close()
