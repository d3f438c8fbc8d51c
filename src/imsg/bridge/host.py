"""What injecting the helper needs from this Mac: SIP's state and the helper dylib's path.

**SIP** comes from ``csrutil status`` (``$IMSG_CSRUTIL`` names another program, found on
``PATH`` when it is a bare name: the simulator's ``imsg-sim-csrutil``, or tests), bounded by
15 s: output containing "disabled" means ``disabled``, "enabled" ``enabled``; anything else,
a missing program, a timeout or a failure to run it is ``unknown``, with the details.

**The dylib** ``imsg-bridge-helper.dylib`` is not shipped with imsg (it comes with the Swift
release archive and its Homebrew formula). ``--dylib`` wins, then ``$IMSG_BRIDGE_DYLIB``, then
the Swift tool's search order: next to the ``imsg`` executable, ``../lib`` from there,
``$HOMEBREW_PREFIX/lib``, ``/opt/homebrew/lib``, ``/usr/local/lib``, ``.build/release``,
``.build/debug``. A candidate counts when it is (or links to) a regular file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DYLIB_NAME = "imsg-bridge-helper.dylib"
CSRUTIL = "/usr/bin/csrutil"
CSRUTIL_TIMEOUT_S = 15.0

SipState = Literal["enabled", "disabled", "unknown"]


@dataclass(frozen=True)
class Sip:
    state: SipState
    details: str = ""


def sip_status() -> Sip:
    """SIP's state (module docstring); never raises."""
    program = os.environ.get("IMSG_CSRUTIL", "").strip() or CSRUTIL
    resolved = program if os.sep in program else shutil.which(program) or program
    try:
        done = subprocess.run([resolved, "status"], capture_output=True, text=True,
                              timeout=CSRUTIL_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Sip("unknown", f"{program} status did not answer within "
                              f"{CSRUTIL_TIMEOUT_S:g}s")
    except OSError as exc:
        return Sip("unknown", f"cannot run {program}: {exc.strerror or exc}")
    output = (done.stdout + done.stderr).strip()
    lowered = output.lower()
    if "disabled" in lowered:
        return Sip("disabled", output)
    if "enabled" in lowered:
        return Sip("enabled", output)
    return Sip("unknown", output or f"{program} status exited {done.returncode} "
                                    "without output")


def executable_dir() -> Path:
    """Where the running ``imsg`` lives (the script, else the interpreter's directory)."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "imsg" and script.is_file():
        return script.resolve().parent
    return Path(sys.executable).parent


def dylib_candidates(explicit: str | None = None) -> list[str]:
    """Every path looked at, in order."""
    found: list[str] = []
    if explicit:
        found.append(os.path.abspath(os.path.expanduser(explicit)))
        return found
    configured = os.environ.get("IMSG_BRIDGE_DYLIB", "").strip()
    if configured:
        found.append(os.path.abspath(os.path.expanduser(configured)))
    here = executable_dir()
    found += [str(here / DYLIB_NAME), os.path.normpath(here / ".." / "lib" / DYLIB_NAME)]
    prefix = os.environ.get("HOMEBREW_PREFIX", "").strip()
    if prefix:
        found.append(str(Path(prefix) / "lib" / DYLIB_NAME))
    found += [f"/opt/homebrew/lib/{DYLIB_NAME}", f"/usr/local/lib/{DYLIB_NAME}",
              f".build/release/{DYLIB_NAME}", f".build/debug/{DYLIB_NAME}"]
    unique: list[str] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def find_dylib(explicit: str | None = None) -> str | None:
    """The first candidate that is a regular file, made absolute; None if there is none."""
    for candidate in dylib_candidates(explicit):
        if os.path.isfile(candidate):  # Homebrew's lib/ entries are symlinks into the Cellar
            return os.path.abspath(candidate)
    return None
