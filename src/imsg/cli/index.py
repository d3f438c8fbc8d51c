"""``imsg index``: build or update the search index; the progress bar searches share."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from imsg.cli.options import Output, common


@contextmanager
def build_progress() -> Iterator[Callable[[int, int], None] | None]:
    """A progress callback drawing a bar on stderr while an index is built, when stderr is a
    terminal (None otherwise). The bar appears only if a build actually starts."""
    if not sys.stderr.isatty():
        yield None
        return
    bar: Any = None
    task: Any = None

    def advance(done: int, total: int) -> None:
        nonlocal bar, task
        if bar is None:
            from rich.console import Console
            from rich.progress import Progress

            bar = Progress(console=Console(stderr=True), transient=True)
            bar.start()
            task = bar.add_task("Indexing messages for search", total=max(total, 1))
        bar.update(task, completed=done, total=max(total, 1))

    try:
        yield advance
    finally:
        if bar is not None:
            bar.stop()


@click.command()
@click.option("--rebuild", is_flag=True, help="Build from scratch instead of catching up.")
@common
def index(rebuild: bool, db: str | None, as_json: bool, **_: Any) -> None:
    """Build the search index, or bring it up to date (searches do this themselves).

    The index is an SQLite file in the per-user cache directory ($IMSG_CACHE_DIR if set); it
    never touches chat.db. Set IMSG_INDEX=0 to search without it.

    \b
    Example:
      imsg index
      imsg index --rebuild --json
    """
    from imsg.chatdb.reader import ChatDB
    from imsg.index import update

    out = Output(as_json)
    with ChatDB(db) as chat_db, build_progress() as progress:
        info = update(chat_db, rebuild=rebuild, progress=progress)
    out.item(info, f"{info.action} {info.path}: {info.rows:,} messages,"
                   f" {info.bytes / 1e6:.1f} MB, {info.seconds:.2f}s")
