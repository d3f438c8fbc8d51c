"""The machine the service is installed on: platform, home, uid, environment, interpreter.

Everything in ``imsg.service`` takes a ``Host`` rather than reading ``sys``/``os`` itself, so
a macOS install can be planned (and tested) on Linux, and no test touches a real home.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from imsg.errors import ServiceError

Manager = Literal["launchd", "systemd"]
LABEL = "com.imsg.rpc"  # launchd label, and the app bundle's identifier
UNIT = "imsg.service"
APP_NAME = "imsg-rpc"


@dataclass(frozen=True)
class Host:
    platform: str
    home: str
    uid: int
    env: Mapping[str, str] = field(default_factory=dict)
    executable: str = sys.executable

    @classmethod
    def current(cls) -> Host:
        return cls(sys.platform, os.path.expanduser("~"), os.getuid(), dict(os.environ),
                   sys.executable)

    @property
    def manager(self) -> Manager:
        """launchd on macOS, systemd on Linux; ServiceError elsewhere."""
        if self.platform == "darwin":
            return "launchd"
        if self.platform.startswith("linux"):
            return "systemd"
        raise ServiceError(f"imsg service supports macOS (launchd) and Linux (systemd), not "
                           f"{self.platform}; run `imsg rpc --socket` under your own "
                           "supervisor")

    def path(self, *parts: str) -> str:
        return os.path.join(self.home, *parts)

    @property
    def state_dir(self) -> str:
        """Where the install record (and the launcher's source) live."""
        if self.platform == "darwin":
            return self.path("Library", "Application Support", "imsg")
        state = self.env.get("XDG_STATE_HOME") or self.path(".local", "state")
        return os.path.join(state, "imsg")

    @property
    def log_path(self) -> str:
        if self.platform == "darwin":
            return self.path("Library", "Logs", "imsg", "rpc.log")
        return os.path.join(self.state_dir, "rpc.log")

    @property
    def unit_path(self) -> str:
        if self.manager == "launchd":
            return self.path("Library", "LaunchAgents", f"{LABEL}.plist")
        config = self.env.get("XDG_CONFIG_HOME") or self.path(".config")
        return os.path.join(config, "systemd", "user", UNIT)

    @property
    def record_path(self) -> str:
        return os.path.join(self.state_dir, "service.json")

    @property
    def bundle_path(self) -> str:
        return self.path("Applications", f"{APP_NAME}.app")

    @property
    def domain(self) -> str:
        """launchd's domain for this user's agents."""
        return f"gui/{self.uid}"
