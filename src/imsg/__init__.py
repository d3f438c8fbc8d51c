"""imsg: iMessage for agents, bots and scripts."""

__version__ = "0.1.0"
