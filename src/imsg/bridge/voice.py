"""Voice messages: a staged copy converted to what Messages sends as a voice note, CAF holding
Opus, mono, 24 kHz, 32 kbit/s, with macOS's ``afconvert`` (``$IMSG_AFCONVERT`` names
another program). The original file is never touched; the CAF stays in staging for Messages'
asynchronous upload.

``to_voice`` raises ``AttachmentError`` when the converter is missing (any OS but macOS),
fails, times out (60 s) or writes something that is not a non-empty CAF file; the caller
then stops before dispatch (``not_started``) and never falls back to AppleScript.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from imsg.errors import AttachmentError

AFCONVERT = "/usr/bin/afconvert"
TIMEOUT_S = 60.0
CAF_MAGIC = b"caff"


def to_voice(staged: Path) -> Path:
    """Convert the staged file ``staged`` next to itself; return the ``.caf``."""
    program = os.environ.get("IMSG_AFCONVERT", "").strip() or AFCONVERT
    out = staged.with_name(staged.stem + "-voice.caf")
    argv = [program, "-f", "caff", "-d", "opus@24000", "-c", "1", "-b", "32000", str(staged),
            str(out)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AttachmentError(f"Voice conversion of {staged.name} took longer than "
                              f"{TIMEOUT_S:g}s") from None
    except OSError as exc:
        raise AttachmentError(f"Voice messages need macOS's afconvert ({program}: "
                              f"{exc.strerror or exc})") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise AttachmentError(f"Voice conversion of {staged.name} failed"
                              + (f": {detail[-1]}" if detail else ""))
    try:
        with open(out, "rb") as fh:
            head = fh.read(4)
        size = out.stat().st_size
    except OSError:
        raise AttachmentError(f"Voice conversion of {staged.name} wrote no file") from None
    if head != CAF_MAGIC or size <= 8:
        raise AttachmentError(f"Voice conversion of {staged.name} did not produce a CAF file")
    return out
