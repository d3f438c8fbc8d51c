"""Watching chat.db for new messages: ``Watcher`` (the delivery contract is its docstring).

``engine`` runs the cursor, ``sequencer`` decides what each new row becomes, ``updates`` finds
edits and unsends, ``wakeup`` turns file-system events into polls.
"""

from imsg.watch.engine import Watcher, WatchEvent

__all__ = ["WatchEvent", "Watcher"]
