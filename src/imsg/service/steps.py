"""What an install (or uninstall) does, as data: files written, commands run, bundles swapped.

A plan is a list of ``Step``s. ``describe`` prints each exactly as it will happen (``--dry-run``
shows every file with its content and every command with its arguments); ``execute`` performs
them in order. Commands run through a ``Runner`` (default ``run_command``: a subprocess with a
timeout, found on ``PATH``), so tests put recording fakes of ``launchctl``, ``codesign``… on
``PATH`` and nothing real is touched. A command that fails raises ``ServiceError`` with its
output, unless its step says the failure is expected (``may_fail``: unloading what is not
loaded).
"""

from __future__ import annotations

import contextlib
import os
import plistlib
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from imsg.errors import ServiceError

Runner = Callable[[Sequence[str]], tuple[int, str]]
StepKind = Literal["mkdir", "write", "run", "swap", "set-keys", "remove"]
TIMEOUT_S = 60.0


def run_command(argv: Sequence[str], timeout: float = TIMEOUT_S) -> tuple[int, str]:
    """Run ``argv``; (exit status, stdout then stderr). 127 when missing, 124 on timeout."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return 127, f"{argv[0]}: command not found"
    except PermissionError as exc:
        return 126, f"{argv[0]}: {exc.strerror}"
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]} did not finish within {timeout:g}s"
    return done.returncode, (done.stdout + done.stderr).strip()


@dataclass(frozen=True)
class Step:
    """One action. ``write``: ``content`` to ``path`` (``mode``); ``mkdir``: ``path`` (0700
    when ``private``, else 0755); ``run``: ``argv``; ``swap``: move the directory ``source``
    into ``path``'s place, replacing what was there; ``set-keys``: merge ``keys`` into the
    plist at ``path``; ``remove``: delete ``path`` (a file or a directory tree), if there."""

    kind: StepKind
    path: str = ""
    content: str = ""
    mode: int = 0o644
    argv: tuple[str, ...] = ()
    may_fail: bool = False
    source: str = ""
    keys: dict[str, Any] = field(default_factory=dict)
    private: bool = False
    why: str = ""

    def describe(self) -> list[str]:
        """The dry-run lines for this step."""
        note = f"  ({self.why})" if self.why else ""
        if self.kind == "write":
            lines = [f"# write {self.path} (mode {self.mode:04o}){note}:"]
            return lines + [f"    {line}" for line in self.content.rstrip("\n").split("\n")]
        if self.kind == "mkdir":
            return [f"# mkdir {self.path} (mode {'0700' if self.private else '0755'}){note}"]
        if self.kind == "run":
            tail = "  (failure expected when not loaded)" if self.may_fail else note
            return [f"$ {shlex.join(self.argv)}{tail}"]
        if self.kind == "swap":
            return [f"# replace {self.path} with {self.source}{note}"]
        if self.kind == "set-keys":
            return [f"# set in {self.path}: " + ", ".join(
                f"{key}={value!r}" for key, value in self.keys.items()) + note]
        return [f"# remove {self.path}{note}"]


def describe(steps: Sequence[Step]) -> list[str]:
    return [line for step in steps for line in step.describe()]


def execute(steps: Sequence[Step], runner: Runner = run_command) -> None:
    """Perform ``steps`` in order. Raises ServiceError (a command failed, a file could not be
    written)."""
    for step in steps:
        try:
            _perform(step, runner)
        except OSError as exc:
            raise ServiceError(f"{step.kind} {step.path}: {exc.strerror or exc}") from None


def _perform(step: Step, runner: Runner) -> None:
    if step.kind == "write":
        os.makedirs(os.path.dirname(step.path), exist_ok=True)
        temporary = step.path + ".tmp"
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, step.mode),
                  "w", encoding="utf-8") as fh:
            fh.write(step.content)
        os.chmod(temporary, step.mode)
        os.replace(temporary, step.path)
    elif step.kind == "mkdir":
        mode = 0o700 if step.private else 0o755
        os.makedirs(step.path, mode=mode, exist_ok=True)
        os.chmod(step.path, mode)
    elif step.kind == "run":
        code, output = runner(step.argv)
        if code != 0 and not step.may_fail:
            raise ServiceError(f"`{shlex.join(step.argv)}` failed ({code}): "
                               f"{output or 'no output'}")
    elif step.kind == "swap":
        old = step.path + ".old"
        _remove(old)
        if os.path.lexists(step.path):
            os.rename(step.path, old)
        os.rename(step.source, step.path)
        _remove(old)
    elif step.kind == "set-keys":
        with open(step.path, "rb") as fh:
            info = plistlib.load(fh)
        info.update(step.keys)
        with open(step.path, "wb") as fh:
            plistlib.dump(info, fh)
    else:
        _remove(step.path)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
