"""Messages' container and the bridge's files in it, reached without following symlinks.

The container is ``~/Library/Containers/com.apple.MobileSMS/Data`` (``$IMSG_BRIDGE_CONTAINER``
when set: tests, the simulated helper, unusual setups). In it::

    .imsg-bridge-ready          the helper is injected and serving (holds the owner's PID)
    .imsg-bridge-owner.lock     the serving helper's flock (never deleted)
    .imsg-launch.lock           ``imsg launch``'s flock (created only by launching paths)
    .imsg-rpc/in/<ID>.json      a v2 request (``<ID>.tmp`` while written; the helper renames
                                it to ``<ID>.processing.<pid>`` when it claims it)
    .imsg-rpc/out/<ID>.json     a v2 response (``<ID>.json.tmp`` while written)
    .imsg-events.jsonl(.1)      the helper's event log (and the previous one)
    .imsg-command.json, .imsg-response.json   legacy v1 IPC

``safe_dir`` checks every component of a path with ``lstat`` from the root down and refuses a
symbolic link anywhere, except the system aliases ``/tmp``, ``/var`` and ``/etc`` when they
point at ``/private/tmp``, ``/private/var``, ``/private/etc`` (macOS). Directories it creates
are 0700 and checked again after ``mkdir``; an existing one must be a directory owned by this
user, and is tightened to 0700. Failures raise ``UnsafePath`` (nothing was published yet).
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONTAINER = "~/Library/Containers/com.apple.MobileSMS/Data"
READY = ".imsg-bridge-ready"
OWNER_LOCK = ".imsg-bridge-owner.lock"
LAUNCH_LOCK = ".imsg-launch.lock"
RPC_DIR = ".imsg-rpc"
EVENTS = ".imsg-events.jsonl"
EVENTS_PREVIOUS = ".imsg-events.jsonl.1"
HELPER_LOG = ".imsg-bridge.log"
LEGACY_COMMAND = ".imsg-command.json"
LEGACY_RESPONSE = ".imsg-response.json"
_ALIASES = {"/tmp": "/private/tmp", "/var": "/private/var", "/etc": "/private/etc"}


class UnsafePath(Exception):
    """A path component is a symbolic link, not a directory, not ours, or cannot be made."""


def container_path() -> Path:
    """``$IMSG_BRIDGE_CONTAINER`` (``~`` expanded, made absolute), else Messages' own."""
    configured = os.environ.get("IMSG_BRIDGE_CONTAINER", "").strip()
    return Path(os.path.abspath(os.path.expanduser(configured or DEFAULT_CONTAINER)))


@dataclass(frozen=True)
class Container:
    root: Path

    @classmethod
    def default(cls) -> Container:
        return cls(container_path())

    @property
    def ready_lock(self) -> Path:
        return self.root / READY

    @property
    def rpc(self) -> Path:
        return self.root / RPC_DIR

    @property
    def inbox(self) -> Path:
        return self.rpc / "in"

    @property
    def outbox(self) -> Path:
        return self.rpc / "out"

    @property
    def events(self) -> Path:
        return self.root / EVENTS

    @property
    def previous_events(self) -> Path:
        return self.root / EVENTS_PREVIOUS

    @property
    def launch_lock(self) -> Path:
        return self.root / LAUNCH_LOCK

    @property
    def owner_lock(self) -> Path:
        return self.root / OWNER_LOCK

    @property
    def legacy_command(self) -> Path:
        return self.root / LEGACY_COMMAND

    @property
    def legacy_response(self) -> Path:
        return self.root / LEGACY_RESPONSE

    def is_ready(self) -> bool:
        """Whether the ready lock exists (a symlink there does not count)."""
        try:
            return stat.S_ISREG(os.lstat(self.ready_lock).st_mode)
        except OSError:
            return False

    def ipc_dirs(self) -> tuple[Path, Path]:
        """``(inbox, outbox)``, created 0700 when missing, every component checked."""
        safe_dir(self.root, create=False)
        for folder in (self.rpc, self.inbox, self.outbox):
            safe_dir(folder, create=True, private=True)
        return self.inbox, self.outbox


def safe_dir(path: Path, *, create: bool, private: bool = False) -> Path:
    """``path`` after checking each component (module docstring); with ``create`` the last
    missing components are made 0700; ``private``: ``path`` itself is kept 0700. Raises
    UnsafePath."""
    parts = Path(os.path.abspath(path)).parts
    current = Path(parts[0])
    for name in parts[1:]:
        current = current / name
        info = _lstat(current)
        if info is not None and stat.S_ISLNK(info.st_mode):
            alias = _ALIASES.get(str(current))
            if alias is None or os.path.normpath(Path("/") / os.readlink(current)) != alias:
                raise UnsafePath(f"{current} is a symbolic link; the bridge refuses to follow it")
            current = Path(alias)
            info = _lstat(current)
        if info is None:
            if not create:
                raise UnsafePath(f"{current} does not exist")
            _make(current)
            info = _lstat(current)
            if info is None or not stat.S_ISDIR(info.st_mode):
                raise UnsafePath(f"{current} changed while it was being created")
        if not stat.S_ISDIR(info.st_mode):
            raise UnsafePath(f"{current} is not a directory")
    _own(current, info, private)
    return current


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnsafePath(f"cannot inspect {path}: {exc.strerror or exc}") from None


def _make(path: Path) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise UnsafePath(f"cannot create {path}: {exc.strerror or exc}") from None


def _own(path: Path, info: os.stat_result | None, private: bool) -> None:
    """The final directory must be this user's; a private one is kept 0700."""
    if info is None:
        return
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise UnsafePath(f"{path} belongs to another user")
    if private and info.st_mode & 0o077:
        with contextlib.suppress(OSError):
            os.chmod(path, 0o700)
