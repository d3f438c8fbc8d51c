"""Whole ``imsg send`` round trip against the simulated Messages: from starting the process to
its verified row id, median over 50 sends; the verification wait (reported by ``--verbose``)
is shown separately, and so are the two process start-ups the round trip contains. Then file
staging (open once, fstat, capped copy from the descriptor) of a 64 MiB file against
``shutil.copyfile`` of the same file, the floor, in the same run.

Run: ``.venv/bin/python bench/bench_send.py [--quick]`` (``PYTHONPATH=src`` if not installed)
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imsg
from imsg.send.applescript import SEND_SCRIPT
from imsg.send.stage import open_source, stage_file
from imsg.sim.demo import fill_demo
from imsg.sim.messages import SimDB

RECIPIENT = "+15555550123"
HISTORY = 5000
_VERIFIED = re.compile(r"verified in ([0-9.]+) ms")


def osascript_command(folder: Path) -> str:
    """The installed ``imsg-sim-osascript`` when present, else a wrapper running the module."""
    installed = Path(sys.executable).with_name("imsg-sim-osascript")
    if installed.exists():
        return str(installed)
    wrapper = folder / "osascript"
    src = Path(imsg.__file__).resolve().parents[1]
    wrapper.write_text(f"#!/bin/sh\nexport PYTHONPATH={shlex.quote(str(src))}\n"
                       f'exec {shlex.quote(sys.executable)} -m imsg.sim.osascript "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def imsg_command() -> list[str]:
    installed = Path(sys.executable).with_name("imsg")
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "imsg"]


def build_database(path: Path) -> None:
    db = SimDB.create(str(path), "tahoe")
    fill_demo(db)
    chat = db.chat([RECIPIENT])
    for i in range(HISTORY):
        (db.receive(chat, RECIPIENT, f"incoming {i}") if i % 2 else db.send(chat, f"sent {i}"))
    db.close()


def timed(args: list[str], env: dict[str, str], stdin: bytes = b"",
          status: int = 0) -> tuple[float, str]:
    """Milliseconds ``args`` took, and its stderr; exits unless it ended with ``status``."""
    start = time.perf_counter()
    done = subprocess.run(args, input=stdin, capture_output=True, env=env, check=False)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != status:
        raise SystemExit(f"{shlex.join(args)} failed: {done.stderr.decode()}")
    return elapsed, done.stderr.decode()


def measure(env: dict[str, str], osascript: str, sends: int) -> dict[str, float]:
    """Medians over ``sends`` round trips (after two warm-up rounds), in milliseconds."""
    send = [*imsg_command(), "send", "--to", RECIPIENT, "--json", "--verbose", "--text"]
    samples: dict[str, list[float]] = {"round trip": [], "verification": [], "imsg": [],
                                       "osascript": []}
    for i in range(sends + 2):
        elapsed, stderr = timed([*send, f"bench message {i} ✓"], env)
        match = _VERIFIED.search(stderr)
        if match is None:
            raise SystemExit(f"no verification figure in: {stderr}")
        sim, _ = timed([osascript, "-l", "AppleScript", "-", "chat", "none", "", "", ""],
                       {**env, "IMSG_SIM_FAIL": "automation"}, SEND_SCRIPT.encode(), 1)
        cli, _ = timed([*imsg_command(), "--version"], env)
        if i >= 2:
            for key, value in (("round trip", elapsed), ("verification", float(match.group(1))),
                               ("imsg", cli), ("osascript", sim)):
                samples[key].append(value)
    return {key: statistics.median(values) for key, values in samples.items()}


STAGED_MIB = 64


def measure_staging(folder: Path, rounds: int) -> tuple[float, float]:
    """Median milliseconds to stage a ``STAGED_MIB`` file, and to ``shutil.copyfile`` it."""
    source = folder / "big.bin"
    with source.open("wb") as out:
        for _ in range(STAGED_MIB):
            out.write(os.urandom(1024 * 1024))
    staged: list[float] = []
    copied: list[float] = []
    for i in range(rounds):
        root = folder / f"stage-{i}"
        start = time.perf_counter()
        with open_source(str(source), max_bytes=STAGED_MIB * 1024 * 1024) as opened:
            stage_file(opened, root)
        staged.append((time.perf_counter() - start) * 1000)
        shutil.rmtree(root)
        start = time.perf_counter()
        shutil.copyfile(source, folder / "copy.bin")
        copied.append((time.perf_counter() - start) * 1000)
        (folder / "copy.bin").unlink()
    return statistics.median(staged), statistics.median(copied)


def main() -> None:
    sends = 5 if "--quick" in sys.argv[1:] else 50
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "home").mkdir()
        db_path = folder / "chat.db"
        build_database(db_path)
        osascript = osascript_command(folder)
        env = {**os.environ, "HOME": str(folder / "home"), "IMSG_OSASCRIPT": osascript,
               "IMSG_SIM_DB": str(db_path), "IMSG_DB": str(db_path)}
        env.pop("IMSG_SIM_FAIL", None)
        as_is = measure(env, osascript, sends)
        # Python as usually installed keeps compiled modules (here in the temp folder). This
        # matters where PYTHONDONTWRITEBYTECODE is set and nothing was compiled at install.
        warm = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached = measure({**warm, "PYTHONPYCACHEPREFIX": str(folder / "pycache")}, osascript,
                         sends)
        staged, copied = measure_staging(folder, 3 if sends < 50 else 9)
    print(f"send round trip median: {as_is['round trip']:.0f} ms "
          f"(verification {as_is['verification']:.1f} ms)")
    print(f"  of which, medians: `imsg --version` process {as_is['imsg']:.0f} ms, simulated "
          f"osascript start {as_is['osascript']:.0f} ms ({sends} sends, {HISTORY} messages in "
          "the chat, tahoe schema)")
    print(f"  with a warm bytecode cache: {cached['round trip']:.0f} ms (verification "
          f"{cached['verification']:.1f} ms; `imsg --version` {cached['imsg']:.0f} ms, "
          f"simulated osascript {cached['osascript']:.0f} ms)")
    print(f"staging a {STAGED_MIB} MiB file: {staged:.0f} ms ({STAGED_MIB / staged * 1000:.0f} "
          f"MiB/s); shutil.copyfile floor {copied:.0f} ms; ratio {staged / copied:.2f}")


if __name__ == "__main__":
    main()
