"""The fake tools on PATH (``tools``) for every service test."""

from tests.service.fakes import tools

__all__ = ["tools"]
