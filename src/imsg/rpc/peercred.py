"""Who is on the other end of a Unix socket: the peer's uid, from the kernel.

Linux answers ``SO_PEERCRED`` (``struct ucred {pid, uid, gid}``); macOS and the BSDs answer
``LOCAL_PEERCRED`` at level ``SOL_LOCAL`` (``struct xucred {version, uid, …}``), which is what
``getpeereid(3)`` reads. The uid is the one the peer had when it called ``connect``/``listen``,
so a client learns who owns the server it reached and the server who connected.

``peer_uid`` raises ``OSError`` when the kernel will not say (an unsupported platform, or a
socket that is not connected): callers treat that as "not ours" and refuse.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys

_UCRED = struct.Struct("=iII")  # pid_t pid; uid_t uid; gid_t gid
_XUCRED_HEAD = struct.Struct("=II")  # u_int cr_version; uid_t cr_uid; (then groups)
_XUCRED_SIZE = 76  # cr_version, cr_uid, cr_ngroups (+ padding), cr_groups[16]
XUCRED_VERSION = 0
SOL_LOCAL = getattr(socket, "SOL_LOCAL", 0)
LOCAL_PEERCRED = getattr(socket, "LOCAL_PEERCRED", 1)


def peer_uid(sock: socket.socket, platform: str = sys.platform) -> int:
    """The uid of the process at the other end of the connected Unix socket ``sock``."""
    if platform.startswith("linux"):
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        return parse_ucred(raw)
    if platform == "darwin" or "bsd" in platform:
        raw = sock.getsockopt(SOL_LOCAL, LOCAL_PEERCRED, _XUCRED_SIZE)
        return parse_xucred(raw)
    raise OSError(errno.ENOTSUP, f"peer credentials are not supported on {platform}")


def parse_ucred(raw: bytes) -> int:
    """The uid in Linux's ``struct ucred``."""
    if len(raw) < _UCRED.size:
        raise OSError(errno.EINVAL, "short SO_PEERCRED answer")
    return int(_UCRED.unpack_from(raw)[1])


def parse_xucred(raw: bytes) -> int:
    """The uid in the BSDs' ``struct xucred`` (checks its version, as ``getpeereid`` does)."""
    if len(raw) < _XUCRED_HEAD.size:
        raise OSError(errno.EINVAL, "short LOCAL_PEERCRED answer")
    version, uid = _XUCRED_HEAD.unpack_from(raw)
    if version != XUCRED_VERSION:
        raise OSError(errno.EINVAL, f"unknown xucred version {version}")
    return int(uid)
