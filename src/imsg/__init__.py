"""imsg: iMessage for agents, bots and scripts."""

import os

__version__ = "0.2.0"


def version() -> str:
    """The version imsg reports everywhere (``--version``, ``status``, RPC ``status`` and its
    ``capabilities.engine``): ``IMSG_VERSION`` when set (as the Swift tool allows), else the
    package's."""
    return os.environ.get("IMSG_VERSION", "").strip() or __version__
