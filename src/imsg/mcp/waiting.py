"""``wait_for_message``: block until a matching new message arrives, or the timeout passes.

Built on ``imsg.watch.Watcher`` and its cursor contract (see its docstring): the watch starts
after ``since`` (a message id, e.g. the one ``send_message`` returned, or the ``cursor`` of an
earlier answer) or, without it, at the newest message. Every answer carries ``cursor``: pass
it back as ``since`` to go on waiting without missing or repeating anything, including
messages that arrived between two calls. Messages the filters reject (another chat, another
sender, the user's own unless asked for) are passed over, and the cursor moves past them.

A ``Waiter`` is made on the calling thread (the start is fixed there: a message committed after
the constructor returns is never missed) and ``wait`` blocks a worker thread; ``close`` (from
any thread: a cancelled request, server shutdown) ends the wait within half a second.
Failure modes: the Watcher's (``DatabaseNotFound``, ``PermissionDenied``, ``ChatNotFound`` …
at construction; ``PermissionDenied``/``SchemaMismatch`` while waiting).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from imsg.chatdb.models import Message
from imsg.chatdb.reader import Filters
from imsg.watch import Watcher

MAX_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class Outcome:
    message: Message | None  # None: the timeout passed (or the wait was closed)
    cursor: int


class Waiter:
    def __init__(self, db_path: str, *, since: int | None, chat_id: int | None,
                 senders: tuple[str, ...], accept: Callable[[Message], bool]) -> None:
        self._accept = accept
        self._watcher = Watcher(db_path, since_rowid=since, chat_id=chat_id,
                                filters=Filters(senders), report_skipped=True)
        self._closed = threading.Event()

    def wait(self, timeout_s: float) -> Outcome:
        """The first accepted message after the start, or none once ``timeout_s`` passed."""
        timer = threading.Timer(timeout_s, self.close)
        timer.daemon = True
        timer.start()
        try:
            for event in self._watcher.events():
                if event.kind == "message" and self._accept(event.message):
                    message = event.message
                    return Outcome(message, message.cursor or self._watcher.cursor)
            return Outcome(None, self._watcher.cursor)
        finally:
            timer.cancel()
            self.close()

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._watcher.close()
