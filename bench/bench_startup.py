"""Start-up benchmark: whole processes, as agents spawn them, against floors measured beside them.

Prints, each as a ratio to its floor (median wall time of 21 runs each, interleaved so that
machine noise hits every command alike):

- ``imsg --version`` and ``imsg --help`` against ``python -c pass``  (target: --version <= 3x);
- cold ``imsg chats --json`` on bench_reader's 500,000-message database against the ``sqlite3``
  CLI running the naive chats query (chats joined to their messages' join rows, grouped, newest
  first; what the Swift tool runs)  (target <= 1.2x);

once with ``PYTHONDONTWRITEBYTECODE=1`` and no bytecode for imsg (each process compiles imsg's
modules, as on a machine or CI that forbids writing the cache), then with the bytecode an
installed package has. Also checks that installing the wheel leaves bytecode for every module.

    python bench/bench_startup.py [--messages 500000] [--chats 5000] [--runs 21]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_reader import DATA, build

NAIVE_CHATS = (
    "SELECT c.ROWID, IFNULL(c.display_name, c.chat_identifier), c.chat_identifier, c.guid,"
    " c.service_name, MAX(cmj.message_date) AS last FROM chat c JOIN chat_message_join cmj"
    " ON cmj.chat_id = c.ROWID GROUP BY c.ROWID ORDER BY last DESC LIMIT 20;"
)
VERSION_TARGET = 3.0
CHATS_TARGET = 1.2


def imsg_command() -> list[str]:
    """The installed ``imsg`` script beside this Python (as users run it)."""
    script = Path(sys.executable).with_name("imsg")
    return [str(script)] if script.exists() else [sys.executable, "-m", "imsg"]


def timed(commands: dict[str, list[str]], runs: int, env: dict[str, str],
          stdin: dict[str, bytes]) -> dict[str, float]:
    """Median wall milliseconds per command, runs interleaved."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, input=stdin.get(name), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=env, check=True)
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def wheel_bytecode(folder: Path) -> str:
    """Build the wheel, install it as pip installs packages, count imsg modules with bytecode."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(folder / "dist"), str(root)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    [wheel] = (folder / "dist").glob("imsg-*.whl")
    site = folder / "site"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(site), str(wheel)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sources = list((site / "imsg").rglob("*.py"))
    compiled = [s for s in sources if any(s.parent.glob(f"__pycache__/{s.stem}.*.pyc"))]
    return f"installed wheel: {len(compiled)} of {len(sources)} imsg modules have bytecode"


def clear_bytecode() -> None:
    """Remove imsg's own bytecode (the source tree's caches), so each process compiles it."""
    import imsg

    for cache in Path(imsg.__file__).parent.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500_000)
    parser.add_argument("--chats", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    if shutil.which("sqlite3") is None:
        print("bench_startup needs the sqlite3 command-line tool for its floor")
        return 0
    db = DATA / f"reader-{args.messages}-{args.chats}.db"
    if not db.exists():
        DATA.mkdir(exist_ok=True)
        build(db, args.messages, args.chats)
    imsg = imsg_command()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "imsg --version": [*imsg, "--version"],
        "imsg --help": [*imsg, "--help"],
        "sqlite3 naive chats": ["sqlite3", "-json", str(db)],
        "imsg chats --json": [*imsg, "chats", "--json", "--db", str(db)],
    }
    stdin = {"sqlite3 naive chats": NAIVE_CHATS.encode()}
    missed = 0
    for label, cached in (("PYTHONDONTWRITEBYTECODE=1, no bytecode for imsg", False),
                          ("with bytecode, as installed", True)):
        env = dict(os.environ)
        if cached:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            subprocess.run([*imsg, "chats", "--db", str(db)], env=env,  # compile, as pip does
                           stdout=subprocess.DEVNULL, check=True)
            subprocess.run([*imsg, "index", "--help"], env=env, stdout=subprocess.DEVNULL,
                           check=True)
        else:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            clear_bytecode()
        ms = timed(commands, args.runs, env, stdin)
        version = ms["imsg --version"] / ms["python -c pass"]
        helps = ms["imsg --help"] / ms["python -c pass"]
        chats = ms["imsg chats --json"] / ms["sqlite3 naive chats"]
        print(f"{label}:")
        print(f"  python -c pass {ms['python -c pass']:6.1f} ms"
              f"   imsg --version {ms['imsg --version']:6.1f} ms = {version:.2f}x"
              f" (target <= {VERSION_TARGET:g}x)   imsg --help {ms['imsg --help']:6.1f} ms"
              f" = {helps:.2f}x")
        print(f"  sqlite3 naive chats {ms['sqlite3 naive chats']:6.1f} ms"
              f"   imsg chats --json {ms['imsg chats --json']:6.1f} ms = {chats:.2f}x"
              f" (target <= {CHATS_TARGET:g}x)")
        if cached:
            ok = version <= VERSION_TARGET and chats <= CHATS_TARGET
            missed += not ok
            print(f"  {'ok' if ok else 'MISSED'}")
    with tempfile.TemporaryDirectory() as tmp:
        print(wheel_bytecode(Path(tmp)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
