"""A stand-in for ``csrutil status`` (``imsg-sim-csrutil``), so ``imsg status`` and ``imsg
launch`` see the SIP state a test or a CI job wants: point ``IMSG_CSRUTIL`` at it.

It prints what macOS prints: ``System Integrity Protection status: disabled.`` by default;
``IMSG_SIM_SIP=enabled`` prints the enabled line, ``IMSG_SIM_SIP=unknown`` prints nothing
useful and exits 1, as a broken ``csrutil`` would.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] != ["status"]:
        print("usage: csrutil status", file=sys.stderr)
        return 64
    state = os.environ.get("IMSG_SIM_SIP", "disabled").strip().lower()
    if state in ("enabled", "disabled"):
        print(f"System Integrity Protection status: {state}.")
        return 0
    print("csrutil: failed to read the SIP configuration", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
