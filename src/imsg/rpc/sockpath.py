"""Where the service socket lives, and whether that place is safe to serve (or connect) on.

A Unix socket is only as private as the directories above it: whoever can write to its
directory can rename another socket over it, and clients then talk to that one (and send it
every message text). So before binding, every directory on the path is checked:

- the socket's own directory must be a real directory (never a symbolic link: a planted link
  would make us serve, and tighten permissions, somewhere else), owned by this user and not
  writable by group or others. The one exception is a sticky directory owned by root or this
  user (``/tmp`` itself): there nobody but the owner may rename or remove our socket;
- every directory above it must be owned by root or this user and not writable by group or
  others unless sticky; symbolic links above it (macOS's ``/tmp`` → ``private/tmp``) are
  followed only when owned by root or this user;
- missing directories are created 0700. The default directory (``default_socket_path``) is
  made 0700 through a descriptor opened without following links; a directory the user named
  is never chmod'ed.

Any refusal is ``InvalidInput`` naming the directory and why. ``probe`` says what is at a
path, and for a live server whether its owner (by peer credentials) is this user.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import sys
from collections.abc import Mapping
from typing import Literal

from imsg.errors import InvalidInput, SocketInUse
from imsg.rpc.peercred import peer_uid

log = logging.getLogger("imsg.rpc")

MAX_PATH_BYTES = 103  # sun_path is 104 bytes on macOS (108 on Linux), NUL included
MAX_LINK_HOPS = 40
SocketState = Literal["listening", "foreign", "stale", "missing", "not-a-socket"]


def default_socket_path(env: Mapping[str, str] | None = None, platform: str = sys.platform,
                        home: str | None = None, uid: int | None = None) -> str:
    """``$IMSG_SOCKET``, else ``$XDG_RUNTIME_DIR/imsg/rpc.sock``, else on macOS
    ``~/Library/Application Support/imsg/rpc.sock``, else ``/tmp/imsg-<uid>/rpc.sock``
    (for this process unless another environment, platform, home or uid is given)."""
    env = os.environ if env is None else env
    home = home or os.path.expanduser("~")
    if env.get("IMSG_SOCKET"):
        chosen = env["IMSG_SOCKET"]
        if chosen == "~" or chosen.startswith("~/"):
            chosen = home + chosen[1:]
        return os.path.abspath(os.path.expanduser(chosen))
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "imsg", "rpc.sock")
    if platform == "darwin":
        return os.path.join(home, "Library", "Application Support", "imsg", "rpc.sock")
    return f"/tmp/imsg-{os.getuid() if uid is None else uid}/rpc.sock"


def probe(path: str, timeout: float = 1.0) -> SocketState:
    """What is at ``path``: a server of this user accepting connections (``listening``), one
    run by another user (``foreign``), a socket nobody accepts on (``stale``), nothing, or
    something that is not a socket. Connects without sending a byte."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except NotADirectoryError:
        return "not-a-socket"
    if not stat.S_ISSOCK(mode):
        return "not-a-socket"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except FileNotFoundError:
            return "missing"
        except OSError:
            return "stale"
        try:
            return "listening" if peer_uid(sock) == os.getuid() else "foreign"
        except OSError:
            return "foreign"


def socket_owner(path: str) -> int | None:
    """The uid owning the file at ``path`` (None when there is none)."""
    try:
        return os.lstat(path).st_uid
    except OSError:
        return None


def prepare_path(path: str, *, own_dir: bool = False) -> None:
    """Make ``path`` bindable: check its length and its directories (see the module
    docstring), and remove a stale socket of ours. ``own_dir``: the directory is the default
    one, ours by name, so it is also made 0700. Raises InvalidInput (too long, an unsafe
    directory, a file that is not a socket) or SocketInUse (a live server, or a socket of
    another user, is there)."""
    encoded = len(os.fsencode(path))
    if encoded > MAX_PATH_BYTES:
        raise InvalidInput(f"Socket path too long ({encoded} bytes, at most {MAX_PATH_BYTES}): "
                           f"{path}")
    secure_directory(os.path.dirname(os.path.abspath(path)), own_dir=own_dir)
    state = probe(path)
    if state == "not-a-socket":
        raise InvalidInput(f"{path} exists and is not a socket; refusing to replace it")
    if state == "listening":
        raise SocketInUse(f"Another imsg rpc is already serving {path}")
    if state == "foreign":
        raise SocketInUse(f"{path} is served by another user (uid {socket_owner(path)}): the "
                          "path was taken over; refusing to serve or connect there")
    if state == "stale":
        owner = socket_owner(path)
        if owner is not None and owner != os.getuid():
            raise SocketInUse(f"{path} is a socket of another user (uid {owner}); refusing "
                              "to replace it")
        log.warning("replacing stale socket %s", path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def secure_directory(directory: str, *, own_dir: bool = False) -> None:
    """Check (creating what is missing, 0700) that ``directory`` may hold our socket. Raises
    InvalidInput naming the first unsafe component."""
    uid = os.getuid()
    parent = resolve_safely(os.path.dirname(directory), uid)
    target = os.path.join(parent, os.path.basename(directory))
    st = _lstat_creating(target)
    if stat.S_ISLNK(st.st_mode):
        raise InvalidInput(f"{directory} is a symbolic link; refusing to serve through it "
                           "(remove it, or use --socket with a directory of your own)")
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"{directory} is not a directory")
    mode = stat.S_IMODE(st.st_mode)
    if mode & stat.S_ISVTX and st.st_uid in (0, uid):
        return  # a sticky directory like /tmp: only we may rename or remove our socket
    if st.st_uid != uid:
        raise InvalidInput(f"{directory} belongs to another user (uid {st.st_uid}); refusing "
                           "to serve there (use --socket with a directory of your own)")
    if mode & 0o022:
        raise InvalidInput(f"{directory} is writable by other users (mode {mode:04o}), so "
                           "they could replace the socket; refusing (chmod go-w it, or use "
                           "another directory)")
    if own_dir and mode & 0o077:
        _tighten(target)


def _tighten(directory: str) -> None:
    """chmod 0700 through a descriptor that cannot be a symbolic link's target."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


def resolve_safely(path: str, uid: int) -> str:
    """The real path of the directory ``path`` (created 0700 where missing), checking on the
    way that every directory is owned by root or ``uid`` and not writable by group or others
    unless sticky, and that every symbolic link followed is owned by root or ``uid``. Raises
    InvalidInput."""
    pending = [part for part in os.path.abspath(path).split("/") if part]
    current = "/"
    _check_ancestor(current, os.lstat(current), uid)
    hops = 0
    while pending:
        name = pending.pop(0)
        if name in (".", ""):
            continue
        if name == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, name)
        st = _lstat_creating(candidate)
        if stat.S_ISLNK(st.st_mode):
            if st.st_uid not in (0, uid):
                raise InvalidInput(f"{candidate} is a symbolic link owned by another user "
                                   f"(uid {st.st_uid}); refusing to follow it")
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise InvalidInput(f"Too many symbolic links resolving {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = "/"
            pending[:0] = [part for part in target.split("/") if part]
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise InvalidInput(f"{candidate} is not a directory")
        _check_ancestor(candidate, st, uid)
        current = candidate
    return current


def _lstat_creating(path: str) -> os.stat_result:
    """``lstat`` of ``path``, made a 0700 directory first when nothing is there."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        os.mkdir(path, 0o700)
        return os.lstat(path)


def _check_ancestor(directory: str, st: os.stat_result, uid: int) -> None:
    if st.st_uid not in (0, uid):
        raise InvalidInput(f"{directory} belongs to another user (uid {st.st_uid}), who could "
                           "replace the socket below it; refusing")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022 and not mode & stat.S_ISVTX:
        raise InvalidInput(f"{directory} is writable by other users (mode {mode:04o}), who "
                           "could replace the socket below it; refusing")
