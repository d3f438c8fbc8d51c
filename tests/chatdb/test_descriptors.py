"""Out of file descriptors is its own error, never mistaken for a missing Full Disk Access."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from imsg.sim.messages import SimDB

PROBE = textwrap.dedent("""
    import os, resource, sys
    from imsg.chatdb.reader import ChatDB
    from imsg.errors import TooManyOpenFiles
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    held = []
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    try:
        ChatDB(sys.argv[1])
    except TooManyOpenFiles as err:
        print("too-many", err.exit_code, "Full Disk Access" in err.message)
""")


def test_emfile_is_too_many_open_files(sim: SimDB) -> None:
    result = subprocess.run([sys.executable, "-c", PROBE, sim.path], capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.split() == ["too-many", "18", "False"], result.stderr
