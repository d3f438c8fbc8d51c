"""``imsg launch``: (re)start Messages.app with the helper dylib injected, and wait for it.

Steps (the Swift tool's):

1. **SIP gate**: SIP enabled or unknown refuses (``sip_enabled`` / ``sip_unknown``);
2. **the dylib** (``host.find_dylib``), else ``dylib_not_found``;
3. **launch lock**: an exclusive ``flock`` on ``<container>/.imsg-launch.lock`` (a regular
   file of this user with one hard link), so concurrent launches run one after another;
4. **reuse**: a ready helper that reports a ``helper_version`` is kept unless ``force``
   (imsg's version numbers are its own, so any versioned helper counts as current; an
   unversioned one predates version reporting and is replaced);
5. **kill**: ``killall Messages``, then about a second for it to go; ``kill_only`` stops here;
6. **clean the IPC state**: the legacy files and the ready lock go; ``.imsg-rpc/in`` and
   ``/out`` are made (0700, no symlinks) and emptied of requests and responses, but claims
   (``*.processing.*``) stay, and the owner lock is never touched;
7. **start** ``/System/Applications/Messages.app/Contents/MacOS/Messages`` with
   ``DYLD_INSERT_LIBRARIES=<dylib>`` (``$IMSG_MESSAGES_APP`` names another program);
8. **wait** for the ready lock, checking every 0.5 s for ``IMSG_LAUNCH_READY_TIMEOUT``
   seconds (default 15, at most 600; empty, non-numeric, NaN, zero or negative values mean
   15), else ``ready_timeout``.

Failures raise ``LaunchFailed`` (``reason``, the message, the dylib when known). The host's
side effects (SIP, killing, starting) are a ``Host`` so tests can replace them.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imsg.bridge.client import BridgeClient
from imsg.bridge.container import Container, UnsafePath, safe_dir
from imsg.bridge.host import Sip, dylib_candidates, find_dylib, sip_status
from imsg.bridge.probe import probe
from imsg.errors import ImsgError, LaunchFailed

MESSAGES_APP = "/System/Applications/Messages.app/Contents/MacOS/Messages"
DEFAULT_READY_TIMEOUT_S = 15.0
MAX_READY_TIMEOUT_S = 600.0
READY_POLL_S = 0.5
KILL_WAIT_S = 1.0

SIP_ENABLED = (
    "System Integrity Protection (SIP) is enabled.\nAdvanced IMCore features are intentionally "
    "disabled.\n\nTo enable advanced features:\n1. Disable SIP in Recovery mode (`csrutil "
    "disable`)\n2. Run `imsg launch`\n\nSource installs also need `make build-dylib` before "
    "launching.")


def sip_unknown(details: str) -> str:
    return ("Unable to determine SIP status. Refusing to auto-inject Messages.app.\n"
            f"Details: {details}")


def dylib_not_found(searched: list[str]) -> str:
    listed = "\n".join(f"- {path}" for path in searched)
    return (f"imsg-bridge-helper.dylib not found. Searched:\n{listed}\n\nSource installs can "
            "build it with `make build-dylib`.\n\nNote: Advanced features require:\n- SIP "
            "disabled (for DYLD injection)\n- Full Disk Access granted to Terminal")


def ready_timeout_s(value: str | None = None) -> float:
    """``IMSG_LAUNCH_READY_TIMEOUT`` read as the Swift tool reads it (module docstring)."""
    text = (os.environ.get("IMSG_LAUNCH_READY_TIMEOUT", "") if value is None else value).strip()
    try:
        seconds = float(text)
    except ValueError:
        return DEFAULT_READY_TIMEOUT_S
    if not math.isfinite(seconds) or seconds <= 0:
        return DEFAULT_READY_TIMEOUT_S
    return min(seconds, MAX_READY_TIMEOUT_S)


def _kill_messages() -> None:
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(["killall", "Messages"], capture_output=True, timeout=10,
                       stdin=subprocess.DEVNULL)


def _start_messages(dylib: str) -> None:
    program = os.environ.get("IMSG_MESSAGES_APP", "").strip() or MESSAGES_APP
    env = {**os.environ, "DYLD_INSERT_LIBRARIES": dylib}
    try:
        subprocess.Popen([program], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    except OSError as exc:
        raise LaunchFailed("launch_failed", f"Cannot start {program}: {exc.strerror or exc}",
                           dylib) from None


def _helper_version(client: BridgeClient) -> str | None:
    try:
        return probe(client).helper_version
    except ImsgError:
        return None


@dataclass
class Host:
    sip: Callable[[], Sip] = sip_status
    kill_messages: Callable[[], None] = _kill_messages
    start_messages: Callable[[str], None] = _start_messages
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    helper_version: Callable[[BridgeClient], str | None] = _helper_version


def launch(container: Container | None = None, *, dylib: str | None = None,
           kill_only: bool = False, force: bool = False,
           host: Host | None = None) -> dict[str, Any]:
    """Run the launch flow; returns the JSON ``imsg launch`` prints; raises LaunchFailed."""
    host = host or Host()
    container = container or Container.default()
    sip = host.sip()
    if sip.state == "enabled":
        raise LaunchFailed("sip_enabled", SIP_ENABLED)
    if sip.state != "disabled":
        raise LaunchFailed("sip_unknown", sip_unknown(sip.details))
    path = find_dylib(dylib)
    if path is None:
        raise LaunchFailed("dylib_not_found", dylib_not_found(dylib_candidates(dylib)))
    with launch_lock(container, path):
        client = BridgeClient(container)
        if not force and not kill_only and client.ready() and host.helper_version(client):
            return {"status": "launched", "dylib": path, "reused": True,
                    "message": "Messages.app is already running with the helper; use --force "
                               "to relaunch it"}
        host.kill_messages()
        host.sleep(KILL_WAIT_S)
        if kill_only:
            return {"status": "killed", "message": "Messages.app terminated"}
        clean_ipc(container, path)
        host.start_messages(path)
        wait_ready(container, path, host)
    return {"status": "launched", "dylib": path,
            "message": "Messages.app launched with dylib injection"}


@contextlib.contextmanager
def launch_lock(container: Container, dylib: str) -> Iterator[None]:
    """Hold ``.imsg-launch.lock`` exclusively (blocking until other launches finish)."""
    try:
        safe_dir(container.root, create=False)
    except UnsafePath as exc:
        raise LaunchFailed("launch_failed", f"Cannot use Messages' container: {exc}",
                           dylib) from None
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(container.launch_lock, flags, 0o600)
    except OSError as exc:
        raise LaunchFailed("launch_failed", f"Cannot open {container.launch_lock}: "
                           f"{exc.strerror or exc}", dylib) from None
    try:
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or info.st_nlink != 1
                or (hasattr(os, "getuid") and info.st_uid != os.getuid())):
            raise LaunchFailed("launch_failed", f"{container.launch_lock} is not a private "
                               "regular file; remove it and retry", dylib)
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def clean_ipc(container: Container, dylib: str) -> None:
    """Step 6 (module docstring)."""
    for path in (container.legacy_command, container.legacy_response, container.ready_lock):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    try:
        inbox, outbox = container.ipc_dirs()
    except UnsafePath as exc:
        raise LaunchFailed("launch_failed", f"Cannot prepare the bridge inbox: {exc}",
                           dylib) from None
    for folder in (inbox, outbox):
        for name in os.listdir(folder):
            if ".processing." in name:
                continue
            with contextlib.suppress(OSError):
                os.unlink(Path(folder, name))


def wait_ready(container: Container, dylib: str, host: Host) -> None:
    timeout = ready_timeout_s()
    deadline = host.clock() + timeout
    while not container.is_ready():
        if host.clock() >= deadline:
            raise LaunchFailed("ready_timeout", (
                f"Timed out after {timeout:g}s waiting for the injected helper to report "
                "ready (raise IMSG_LAUNCH_READY_TIMEOUT to wait longer). Messages may still "
                "be starting: run `imsg status` before relaunching."), dylib)
        host.sleep(READY_POLL_S)
