"""Watching chat.db for new messages (``Watcher``; the delivery contract is its docstring) and
paging through it by ROWID on the same rules (``page_after``).

``engine`` runs the cursor, ``sequencer`` decides what each row becomes (shared with
``paging``), ``rows`` reads rows past a cursor (poison rows included), ``clock`` measures holds
in awake time, ``updates`` finds edits and unsends, ``wakeup`` turns file-system events into
polls.
"""

from imsg.watch.engine import Watcher
from imsg.watch.events import SkippedRow, WatchEvent
from imsg.watch.paging import Page, page_after

__all__ = ["Page", "SkippedRow", "WatchEvent", "Watcher", "page_after"]
