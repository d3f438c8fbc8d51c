"""Files a bridge action sends (attachments, stickers, voice notes, group photos): copied
securely where Messages may read them before anything is published.

``stage`` opens the file once without following a symlink in its last component, checks it
(regular, readable, within the size limit) and copies it into Messages' attachment folder
(``imsg.send.stage``); ``stage_voice`` then converts the copy to a voice note
(``imsg.bridge.voice``). Any failure raises ``SendError`` ``not_started`` for ``operation``:
nothing reached the helper, so the caller may fix the file and retry.
"""

from __future__ import annotations

import os
from pathlib import Path

from imsg.errors import InvalidInput, SendError


def stage(path: str, operation: str, transport: str) -> Path:
    """A private copy of ``path`` Messages can read (see the module docstring)."""
    from imsg.send.stage import open_source, stage_file

    try:
        with open_source(os.path.expanduser(path)) as source:
            return stage_file(source)
    except InvalidInput as exc:
        raise SendError(exc.message, disposition="not_started", transport=transport,
                        operation=operation) from None


def stage_voice(path: str, operation: str, transport: str) -> Path:
    """``stage``, then the copy converted to a CAF/Opus voice note."""
    from imsg.bridge.voice import to_voice

    staged = stage(path, operation, transport)
    try:
        return to_voice(staged)
    except InvalidInput as exc:
        raise SendError(exc.message, disposition="not_started", transport=transport,
                        operation=operation) from None
