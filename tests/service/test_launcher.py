"""The bundle's C launcher, compiled for real with this machine's C compiler (it uses only
POSIX: posix_spawn, sigaction, waitpid): it runs its one command as a child, forwards
signals to it, exits with its status, and caps a runaway log."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imsg.service.bundle import LOG_LIMIT, launcher_source

CC = shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler to build the launcher with")
CHILD = """
import os, signal, sys, time
open(sys.argv[1], "w").write(str(os.getppid()))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
time.sleep(60)
"""


def build(tmp_path: Path, command: list[str]) -> Path:
    source = tmp_path / "launcher.c"
    source.write_text(launcher_source(command))
    binary = tmp_path / "imsg-rpc"
    assert CC is not None
    done = subprocess.run([CC, "-Os", "-Wall", "-Werror", "-o", str(binary), str(source)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return binary


def test_the_child_runs_under_the_launcher_and_gets_its_signals(tmp_path: Path) -> None:
    marker = tmp_path / "parent"
    launcher = build(tmp_path, [sys.executable, "-c", CHILD, str(marker)])
    log = tmp_path / "rpc.log"
    with log.open("ab") as err:
        proc = subprocess.Popen([str(launcher)], stderr=err)
    deadline = time.monotonic() + 20
    while not (marker.exists() and marker.read_text()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    assert int(marker.read_text()) == proc.pid  # the launcher stays the parent
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 7  # forwarded to the child; its status is the launcher's


def test_odd_arguments_survive_the_c_source(tmp_path: Path) -> None:
    odd = ['a "quoted" \\ path?', "ünïcödé", "??=trigraph", "%s %n"]
    script = "import sys; print(repr(sys.argv[1:]))"
    launcher = build(tmp_path, [sys.executable, "-c", script, *odd])
    done = subprocess.run([str(launcher)], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0 and done.stdout.strip() == repr(odd)


def test_a_missing_program_and_a_runaway_log(tmp_path: Path) -> None:
    launcher = build(tmp_path, [str(tmp_path / "gone" / "python3"), "-m", "imsg"])
    log = tmp_path / "rpc.log"
    log.write_bytes(b"")
    os.truncate(log, LOG_LIMIT + 1)  # a crash loop filled it
    with log.open("ab") as err:
        code = subprocess.run([str(launcher)], stderr=err, timeout=20).returncode
    assert code == 127
    text = log.read_text()
    assert log.stat().st_size < 1000 and "cannot start" in text and "gone/python3" in text
