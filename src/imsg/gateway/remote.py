"""Remote Macs: safe tokens, attachment roots, and files moved with scp.

- ``cliPath`` must be one executable path: no shell metacharacters, quotes, control
  characters or NUL (spaces are fine: no shell ever reads it).
- ``remoteHost`` is ``host`` or ``user@host`` (``[A-Za-z0-9._-]``, a bracketed IPv6 address
  allowed), never starting with ``-``; unless set, it is read from an SSH wrapper ``cliPath``
  (the host token after ``ssh`` and its options) and ignored when unsafe.
- Attachment roots are absolute path patterns where ``*`` matches exactly one path segment;
  ``/Users/*/Library/Messages/Attachments`` is always one of them.
- ``fetch`` copies a remote attachment with ``scp -o BatchMode=yes -o
  StrictHostKeyChecking=yes -- host:path dest`` into a per-session cache (names made unique
  with ``-1``, ``-2``…), retrying briefly while Messages is still writing the file. Paths
  outside the roots, relative paths, ``..`` and shell metacharacters are refused before any
  process runs.
- ``stage_outbound`` puts a reply's file on the remote Mac (``ssh … mkdir``, then ``scp``)
  under ``~/.imsg-gateway/outbound/<random>/``, since the remote imsg can only send its own
  files.

Failures raise ``RemoteError`` with one line saying what failed.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shlex
import shutil
from collections.abc import Iterable

DEFAULT_ATTACHMENT_ROOT = "/Users/*/Library/Messages/Attachments"
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes")
_CLI_UNSAFE = re.compile(r"[;&|$`<>'\"\\*?!{}()\[\]\x00-\x1f\x7f]")
_HOST_TOKEN = re.compile(r"(?:[A-Za-z0-9._-]+@)?(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])")
_PATH_UNSAFE = re.compile(r"[\\'\"`$;|&<>\x00-\x1f\x7f]")
_SSH_ARG_OPTIONS = set("BbcDEeFIiJLlmOoPpQRSWw")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
FETCH_ATTEMPTS = 4
FETCH_DELAY_S = 0.5
PROCESS_TIMEOUT_S = 60.0


class RemoteError(Exception):
    """A remote copy failed or was refused; ``str()`` is the one-line reason."""


def unsafe_cli_path(value: str) -> str | None:
    """Why ``value`` cannot be a ``cliPath``, or None."""
    if not value.strip():
        return "must not be empty"
    if _CLI_UNSAFE.search(value):
        return ("must be a plain executable path (no shell metacharacters, quotes or control "
                "characters); put arguments in a wrapper script")
    return None


def unsafe_remote_host(value: str) -> str | None:
    """Why ``value`` cannot be a ``remoteHost``, or None."""
    if value.startswith("-") or value.count("@") > 1 or not _HOST_TOKEN.fullmatch(value):
        return "must be host or user@host ([A-Za-z0-9._-], no spaces, not starting with -)"
    return None


def root_problem(root: str) -> str | None:
    if not root.startswith("/"):
        return "must be an absolute path pattern (starting with /)"
    if ".." in root.split("/"):
        return "must not contain .."
    return None


def detect_remote_host(cli_path: str) -> str | None:
    """The SSH host of a wrapper script at ``cli_path`` (the bare ``imsg`` is never read)."""
    if cli_path == "imsg" or not os.path.isfile(cli_path):
        return None
    try:
        with open(cli_path, "rb") as fh:
            text = fh.read(65536).decode("utf-8", "replace")
    except OSError:
        return None
    for line in text.splitlines():
        if "ssh" not in line or line.lstrip().startswith("#"):
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        host = _host_after_ssh(tokens)
        if host is not None and unsafe_remote_host(host) is None:
            return host
    return None


def _host_after_ssh(tokens: list[str]) -> str | None:
    for index, token in enumerate(tokens):
        if os.path.basename(token) != "ssh":
            continue
        rest = iter(tokens[index + 1:])
        for arg in rest:
            if arg == "--":
                return next(rest, None)
            if arg.startswith("-") and len(arg) > 1:
                if arg[-1] in _SSH_ARG_OPTIONS and len(arg) == 2:
                    next(rest, None)
                continue
            return arg
    return None


def _segments_match(pattern: list[str], path: list[str]) -> bool:
    return len(pattern) <= len(path) and all(
        (p == "*" and s != "") or p == s for p, s in zip(pattern, path, strict=False))


def under_roots(path: str, roots: Iterable[str]) -> bool:
    """Whether absolute ``path`` lies in one of ``roots`` (``*`` = one segment)."""
    if not path.startswith("/") or ".." in path.split("/"):
        return False
    parts = os.path.normpath(path).split("/")
    return any(_segments_match(root.rstrip("/").split("/"), parts) for root in roots)


def check_remote_path(path: str, roots: Iterable[str]) -> None:
    """Raise RemoteError unless ``path`` is safe to name on an scp command line."""
    if _PATH_UNSAFE.search(path):
        raise RemoteError(f"refusing remote path with shell metacharacters: {path!r}")
    if not under_roots(path, roots):
        raise RemoteError(f"remote path outside remoteAttachmentRoots: {path!r}")


def safe_name(name: str) -> str:
    cleaned = _SAFE_NAME.sub("_", os.path.basename(name)).strip("._") or "file"
    return cleaned[:120]


def unique_path(directory: str, name: str) -> str:
    base, ext = os.path.splitext(safe_name(name))
    candidate = os.path.join(directory, base + ext)
    counter = 1
    while os.path.exists(candidate):
        candidate = os.path.join(directory, f"{base}-{counter}{ext}")
        counter += 1
    return candidate


async def _run(argv: list[str]) -> tuple[int, str]:
    """Run argv (no shell); (exit status, last stderr line)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), PROCESS_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"{argv[0]} timed out after {PROCESS_TIMEOUT_S:.0f}s"
    lines = err.decode("utf-8", "replace").strip().splitlines()
    return proc.returncode or 0, lines[-1] if lines else ""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RemoteError(f"{name} not found on PATH")
    return found


async def fetch(host: str, remote_path: str, dest_dir: str, roots: Iterable[str], *,
                attempts: int = FETCH_ATTEMPTS, delay_s: float = FETCH_DELAY_S) -> str:
    """Copy ``host:remote_path`` into ``dest_dir``; the local path. Raises RemoteError."""
    if unsafe_remote_host(host):
        raise RemoteError(f"unsafe remoteHost: {host!r}")
    check_remote_path(remote_path, roots)
    os.makedirs(dest_dir, mode=0o700, exist_ok=True)
    dest = unique_path(dest_dir, remote_path)
    reason = ""
    for attempt in range(attempts):
        status, reason = await _run([_tool("scp"), *SSH_OPTIONS, "--",
                                     f"{host}:{remote_path}", dest])
        if status == 0 and os.path.exists(dest):
            return dest
        if attempt + 1 < attempts:
            await asyncio.sleep(delay_s * (attempt + 1))
    raise RemoteError(f"scp {host}:{remote_path} failed after {attempts} attempts: "
                      f"{reason or 'no detail'}")


async def stage_outbound(host: str, local_path: str) -> str:
    """Copy a local file to the remote Mac; the path to give the remote imsg."""
    if unsafe_remote_host(host):
        raise RemoteError(f"unsafe remoteHost: {host!r}")
    folder = f".imsg-gateway/outbound/{secrets.token_hex(8)}"
    name = safe_name(local_path)
    status, reason = await _run([_tool("ssh"), *SSH_OPTIONS, "--", host,
                                 "mkdir", "-p", "-m", "700", folder])
    if status != 0:
        raise RemoteError(f"ssh {host} mkdir failed: {reason or 'no detail'}")
    status, reason = await _run([_tool("scp"), *SSH_OPTIONS, "--", local_path,
                                 f"{host}:{folder}/{name}"])
    if status != 0:
        raise RemoteError(f"scp to {host} failed: {reason or 'no detail'}")
    return f"~/{folder}/{name}"
