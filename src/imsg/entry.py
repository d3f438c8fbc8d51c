"""The ``imsg`` console script. ``imsg --version`` (or ``-V``) alone is answered before the
command line library loads, since scripts and agents call it to probe; everything else goes to
``imsg.cli``."""

from __future__ import annotations

import sys


def run() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        from imsg import version

        print(version())
        return
    from imsg.cli import main

    main()
