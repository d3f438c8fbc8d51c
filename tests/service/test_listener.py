"""The socket's safety rules and the listener's bounds, in process: directory checks, peer
credentials, backlog, client cap, idle timeout, out-of-descriptor accepts, rate-limited logs."""

from __future__ import annotations

import asyncio
import errno
import io
import json
import logging
import os
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imsg.errors import ImsgError, InvalidInput, SocketInUse
from imsg.rpc import listener as listener_module
from imsg.rpc.listener import Limits, Listener, serve
from imsg.rpc.logsetup import RepeatFilter
from imsg.rpc.peercred import XUCRED_VERSION, parse_ucred, parse_xucred, peer_uid
from imsg.rpc.server import Server
from imsg.rpc.sockpath import default_socket_path, prepare_path
from tests.rpc.harness import demo_db

WAIT_S = 20.0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_too_long_a_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="too long"):
        prepare_path(str(tmp_path / ("x" * 120) / "rpc.sock"))


def test_own_directory_is_made_private(tmp_path: Path) -> None:
    directory = tmp_path / "imsg"
    directory.mkdir(mode=0o755)
    prepare_path(str(directory / "rpc.sock"), own_dir=True)
    assert directory.stat().st_mode & 0o777 == 0o700
    prepare_path(str(tmp_path / "new" / "deeper" / "rpc.sock"))  # created 0700
    assert stat.S_IMODE((tmp_path / "new" / "deeper").stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_directory_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(InvalidInput, match="writable by other users"):
        prepare_path(str(directory / "rpc.sock"))
    with pytest.raises(InvalidInput, match="writable by other users"):
        prepare_path(str(directory / "sub" / "rpc.sock"))  # below it, too
    assert stat.S_IMODE(directory.stat().st_mode) == mode  # and nothing was chmod'ed


def test_a_sticky_directory_like_tmp_is_accepted(tmp_path: Path) -> None:
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    prepare_path(str(sticky / "rpc.sock"))
    prepare_path(str(sticky / "mine" / "rpc.sock"))


def test_a_symlinked_socket_directory_is_never_followed(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.mkdir()
    target.chmod(0o755)
    planted = tmp_path / "imsg-0"
    planted.symlink_to(target)
    for own_dir in (True, False):
        with pytest.raises(InvalidInput, match="symbolic link"):
            prepare_path(str(planted / "rpc.sock"), own_dir=own_dir)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755  # the target was not chmod'ed
    assert not (target / "rpc.sock").exists()


def test_symlinks_above_the_directory_are_followed_when_ours(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")  # like macOS's /tmp -> private/tmp
    prepare_path(str(tmp_path / "alias" / "imsg" / "rpc.sock"))
    assert (tmp_path / "real" / "imsg").is_dir()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a directory away")
def test_a_foreign_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "imsg-0"
    directory.mkdir(mode=0o700)
    os.chown(directory, 12345, 12345)
    for own_dir in (True, False):
        with pytest.raises(InvalidInput, match="another user"):
            prepare_path(str(directory / "rpc.sock"), own_dir=own_dir)
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    os.lchown(link, 12345, 12345)
    with pytest.raises(InvalidInput, match="symbolic link owned by another user"):
        prepare_path(str(link / "mine" / "rpc.sock"))


def test_a_file_that_is_not_a_socket_is_refused(tmp_path: Path) -> None:
    (tmp_path / "rpc.sock").write_text("precious")
    with pytest.raises(InvalidInput, match="not a socket"):
        prepare_path(str(tmp_path / "rpc.sock"))


def test_a_live_socket_is_in_use(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(str(tmp_path / "rpc.sock"))
        live.listen()
        with pytest.raises(SocketInUse, match="already serving"):
            prepare_path(str(tmp_path / "rpc.sock"))


def test_default_path_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMSG_SOCKET", "~/custom.sock")
    assert default_socket_path() == os.path.expanduser("~/custom.sock")
    monkeypatch.delenv("IMSG_SOCKET")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_socket_path() == str(tmp_path / "imsg" / "rpc.sock")
    assert default_socket_path({}, "darwin", "/Users/me") == \
        "/Users/me/Library/Application Support/imsg/rpc.sock"
    assert default_socket_path({}, "linux", "/home/me", 1000) == "/tmp/imsg-1000/rpc.sock"


def test_peer_credentials() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        assert peer_uid(left) == os.getuid()
    assert parse_ucred(struct.pack("=iII", 42, 501, 20)) == 501
    xucred = struct.pack("=IIh2x16I", XUCRED_VERSION, 501, 1, 20, *([0] * 15))
    assert parse_xucred(xucred) == 501  # macOS's LOCAL_PEERCRED answer
    with pytest.raises(OSError):
        parse_xucred(struct.pack("=II", 7, 501))
    with pytest.raises(OSError):
        peer_uid(socket.socket(socket.AF_UNIX), platform="sunos5")


def test_repeated_log_lines_are_rate_limited() -> None:
    now = [0.0]
    limit = RepeatFilter(burst=3, window_s=10, clock=lambda: now[0])

    def record(msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("imsg.rpc", logging.ERROR, __file__, 1, msg, args, None)

    passed = [limit.filter(record("accept failed: %s", i)) for i in range(4000)]
    assert sum(passed) == 3
    assert limit.filter(record("another message"))
    now[0] = 11.0
    later = record("accept failed: %s", "x")
    assert limit.filter(later) and later.getMessage() == \
        "accept failed: x (3997 similar lines suppressed)"


class Running:
    """``serve`` on a thread of its own, with a list of what it logged."""

    def __init__(self, path: Path, db: str, limits: Limits, max_clients: int = 8) -> None:
        self.path = path
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.result: list[Any] = []
        self.buffer = io.StringIO()
        self.handler = logging.StreamHandler(self.buffer)
        self.handler.addFilter(RepeatFilter())
        logging.getLogger("imsg.rpc").addHandler(self.handler)
        self.thread = threading.Thread(target=self._run, args=(db, limits, max_clients))
        self.thread.start()
        wait_for(lambda: path.exists() or bool(self.result), "the socket")

    def _run(self, db: str, limits: Limits, max_clients: int) -> None:
        try:
            self.result.append(self.loop.run_until_complete(
                serve(str(self.path), db, self.stop, limits=limits, max_clients=max_clients)))
        except BaseException as exc:
            self.result.append(exc)

    def close(self) -> Any:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(WAIT_S)
        self.loop.close()
        logging.getLogger("imsg.rpc").removeHandler(self.handler)
        return self.result[0]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    db = demo_db(tmp_path / "chat.db")
    servers: list[Running] = []

    def start(limits: Limits | None = None, max_clients: int = 8) -> Running:
        servers.append(Running(tmp_path / "run" / "rpc.sock", db, limits or Limits(),
                               max_clients))
        return servers[-1]

    yield start
    for server in servers:
        assert server.close() == 0


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(WAIT_S)
    sock.connect(str(path))
    return sock


def ask_status(sock: socket.socket) -> Any:
    sock.sendall(b'{"jsonrpc":"2.0","id":1,"method":"status"}\n')
    return json.loads(sock.makefile("rb").readline())


def test_a_burst_of_connects_fits_the_backlog(tmp_path: Path) -> None:
    db = demo_db(tmp_path / "chat.db")
    path = tmp_path / "rpc.sock"

    async def bind_only() -> Listener:
        listening = Listener(str(path), Server(db, "socket"))
        listening.start()  # the accept loop never gets to run
        return listening

    loop = asyncio.new_event_loop()
    listening = loop.run_until_complete(bind_only())
    refused = 0
    clients = []
    try:
        for _ in range(200):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.setblocking(False)
            clients.append(client)
            try:
                client.connect(str(path))
            except BlockingIOError:
                refused += 1
        assert refused == 0
    finally:
        for client in clients:
            client.close()
        listening.close()
        listening.server.close()
        loop.close()


def test_a_directory_that_cannot_be_made_is_one_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: str, mode: int = 0o777) -> None:
        raise PermissionError(13, "Permission denied", path)

    server = Server(demo_db(tmp_path / "chat.db"), "socket")
    monkeypatch.setattr("imsg.rpc.sockpath.os.mkdir", refuse)

    async def start() -> None:
        Listener(str(tmp_path / "new" / "rpc.sock"), server).start()

    with pytest.raises(ImsgError, match=r"Cannot listen on .*: Permission denied \(.*new\)"):
        asyncio.run(start())
    server.close()


def test_clients_beyond_the_cap_are_told_busy(running: Callable[..., Running]) -> None:
    server = running(max_clients=2)
    first, second = connect(server.path), connect(server.path)
    assert ask_status(first)["result"] and ask_status(second)["result"]
    refused = []
    for _ in range(50):
        extra = connect(server.path)
        refused.append(extra.makefile("rb").read())
        extra.close()
    busy = json.loads(refused[0])
    assert busy["error"]["code"] == -32000 and busy["error"]["message"] == "Server busy"
    assert all(answer == refused[0] for answer in refused)
    first.close()
    wait_for(lambda: b"result" in _status_or_busy(server.path), "a free slot")
    second.close()
    lines = server.buffer.getvalue().splitlines()
    assert 0 < sum("refused a client" in line for line in lines) <= 6  # rate-limited
    assert "Traceback" not in server.buffer.getvalue()


def _status_or_busy(path: Path) -> bytes:
    with connect(path) as sock:
        try:
            sock.sendall(b'{"jsonrpc":"2.0","id":1,"method":"status"}\n')
            return sock.makefile("rb").readline()
        except OSError:  # refused and closed before the request got there
            return b""


def test_a_client_that_never_sends_is_closed(running: Callable[..., Running]) -> None:
    server = running(Limits(first_request_s=0.2))
    silent, talker = connect(server.path), connect(server.path)
    assert ask_status(talker)["result"]
    assert silent.recv(1) == b""  # closed by the server
    time.sleep(0.3)
    assert ask_status(talker)["result"]  # a client that sent something stays
    silent.close()
    talker.close()


def test_running_out_of_descriptors_at_accept(running: Callable[..., Running],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    async def exhausted(self: asyncio.AbstractEventLoop, sock: socket.socket) -> Any:
        calls.append(time.monotonic())
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(asyncio.selector_events.BaseSelectorEventLoop, "sock_accept", exhausted)
    server = running(Limits(accept_backoff_s=0.05))
    wait_for(lambda: len(calls) >= 20, "accept retries")
    log = server.buffer.getvalue()
    assert "Too many open files while accepting a client: raise the limit" in log
    assert "Full Disk Access" not in log and "Traceback" not in log
    assert log.count("Too many open files") <= 6  # 20+ failures, a few lines
    assert calls[-1] - calls[0] >= 19 * 0.05 * 0.9  # backed off, not a busy loop
    monkeypatch.undo()


def test_raise_open_file_limit_never_passes_the_hard_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    got = listener_module.raise_open_file_limit(64)
    assert got >= min(64, soft)
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[1] == hard
