"""``imsg service``: the macOS app bundle, its signing and launchd agent, the systemd unit, and
the commands around them, all through fake tools on PATH (nothing real is touched)."""

from __future__ import annotations

import json
import os
import plistlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from imsg.errors import InvalidInput, ServiceError
from imsg.service import Host, install, installed, kick, plan, read_record, restart, status
from imsg.service.access import SETTINGS_URL, guide_access
from imsg.service.core import (
    ADHOC_WARNING,
    create_identity,
    service_socket_path,
    uninstall_steps,
)
from imsg.service.logs import follow, tail
from imsg.service.steps import describe, execute
from tests.service.fakes import (
    IDENTITY_LIST,
    PYTHON,
    StatusServer,
    Tools,
    linux,
    mac,
    status_reply,
    status_server,
    with_clang,
)


def test_macos_install_builds_a_bundle_that_holds_full_disk_access(tmp_path: Path,
                                                                   tools: Tools) -> None:
    host = mac(tmp_path)
    sock, db = str(tmp_path / "run" / "rpc.sock"), str(tmp_path / "chat.db")
    exe = f"{host.home}/Applications/imsg-rpc.app/Contents/MacOS/imsg-rpc"
    with_clang(tools, exe)
    p = plan(host, sock, db)
    assert p.notes == [ADHOC_WARNING]
    install(p)
    command = [PYTHON, "-m", "imsg", "rpc", "--socket", sock, "--log-file",
               f"{host.home}/Library/Logs/imsg/rpc.log", "--exit-with-parent", "--db", db]
    agent = plistlib.loads(Path(p.unit_path).read_bytes())
    assert agent["ProgramArguments"] == [exe]  # launchd runs the bundle, never python
    assert agent["KeepAlive"] and agent["RunAtLoad"]
    assert agent["StandardErrorPath"] == f"{host.home}/Library/Logs/imsg/rpc.log"
    info = plistlib.loads(Path(host.bundle_path, "Contents", "Info.plist").read_bytes())
    assert info["CFBundleIdentifier"] == "com.imsg.rpc" and info["CFBundleExecutable"] == \
        "imsg-rpc" and info["LSUIElement"] is True
    source = Path(host.state_dir, "launcher.c").read_text()
    assert all(f'"{arg}"' in source for arg in command) and "posix_spawn" in source
    assert Path(exe).read_text().startswith("fake binary built from")
    assert not Path(host.bundle_path + ".new").exists()
    assert tools.calls("clang")[-1][1:] == [
        "-Os", "-Wall", "-Werror", "-o", f"{host.bundle_path}.new/Contents/MacOS/imsg-rpc",
        f"{host.state_dir}/launcher.c"]
    assert ["codesign", "--force", "--sign", "-", "--identifier", "com.imsg.rpc", "--options",
            "runtime", "--timestamp=none", host.bundle_path + ".new"] in tools.calls()
    assert tools.calls("launchctl") == [
        ["launchctl", "bootout", "gui/501/com.imsg.rpc"],
        ["launchctl", "enable", "gui/501/com.imsg.rpc"],
        ["launchctl", "bootstrap", "gui/501", p.unit_path]]
    record = read_record(host)
    assert record is not None and record.command == command and record.program == [exe]
    assert record.signature is not None and record.signature["adhoc"] is True
    assert record.signature["cdhash"] == "aa11"

    tools.forget_calls()
    again = plan(host, sock, db)  # nothing changed: the bundle (and its grant) is kept
    assert any("up to date" in note for note in again.notes)
    install(again)
    assert not any("-o" in c or "--force" in c for c in tools.calls())


def test_a_signing_identity_is_required_and_used(tmp_path: Path, tools: Tools) -> None:
    host = mac(tmp_path)
    with pytest.raises(ServiceError, match="identity create"):
        plan(host, str(tmp_path / "s.sock"), sign_identity="imsg Local Signing")
    tools.answer("security", IDENTITY_LIST, when=("find-identity",))
    with_clang(tools, "x", adhoc=False)
    p = plan(host, str(tmp_path / "s.sock"), sign_identity="imsg Local Signing")
    assert p.notes == []
    install(p)
    sign = next(call for call in tools.calls("codesign") if "--force" in call)
    assert sign[sign.index("--sign") + 1] == "imsg Local Signing"
    record = read_record(host)
    assert record is not None and record.identity == "imsg Local Signing"
    assert record.signature is not None and record.signature["authority"] == \
        "imsg Local Signing" and "certificate root" in record.signature["requirement"]


def test_without_command_line_tools_an_applet_is_built(tmp_path: Path, tools: Tools) -> None:
    host = mac(tmp_path)
    tools.answer("xcode-select", stderr="xcode-select: error: no developer tools", exit=2)
    tools.answer("osacompile", create="applet", when=("-o",))
    p = plan(host, str(tmp_path / "s.sock"))
    install(p)
    assert tools.calls("clang") == []
    applet = f"{host.bundle_path}/Contents/MacOS/applet"
    assert plistlib.loads(Path(p.unit_path).read_bytes())["ProgramArguments"] == [applet]
    info = plistlib.loads(Path(host.bundle_path, "Contents", "Info.plist").read_bytes())
    assert info["CFBundleIdentifier"] == "com.imsg.rpc" and info["LSUIElement"] is True
    script = Path(host.state_dir, "launcher.applescript").read_text()
    assert script.startswith("-- imsg-rpc") and "do shell script \"exec " in script
    assert "--exit-with-parent" in script and "rpc.log" in script


def test_dry_run_prints_every_file_and_command(tmp_path: Path, tools: Tools) -> None:
    host = mac(tmp_path)
    with_clang(tools, "x")
    lines = describe(plan(host, str(tmp_path / "s.sock")).steps)
    text = "\n".join(lines)
    for expected in ("# write " + host.state_dir + "/launcher.c", "#include <spawn.h>",
                     "Contents/Info.plist", "$ clang -Os", "$ codesign --force --sign -",
                     f"# replace {host.bundle_path} with {host.bundle_path}.new",
                     "com.imsg.rpc.plist", "<key>ProgramArguments</key>",
                     "$ launchctl bootstrap gui/501"):
        assert expected in text, expected
    assert not Path(host.home).exists() or not any(Path(host.home).rglob("*.plist"))


def test_systemd_unit_quotes_and_refuses_control_characters(tmp_path: Path) -> None:
    host = linux(tmp_path, XDG_STATE_HOME=str(tmp_path / "my state %h"),
                 XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    p = plan(host, str(tmp_path / "my dir" / "s$x.sock"))
    lines = p.unit_text.splitlines()
    log = f"{tmp_path}/my state %%h/imsg/rpc.log"
    assert f'ExecStart=/usr/bin/python3 -m imsg rpc --socket "{tmp_path}/my dir/s$$x.sock" ' \
        f'--log-file "{log}"' in lines
    # append: takes the rest of the line literally: quotes would become part of the name
    assert f"StandardOutput=append:{log}" in lines and f"StandardError=append:{log}" in lines
    assert p.unit_path == str(tmp_path / "cfg/systemd/user/imsg.service")
    for bad in ("\nExecStartPre=/bin/sh -c evil", "\r", "\x1b[2J", "\u2028", "\udcff"):
        with pytest.raises(InvalidInput, match="control character"):
            plan(host, str(tmp_path / f"a{bad}.sock"))
    with pytest.raises(InvalidInput, match="XDG_STATE_HOME"):
        plan(linux(tmp_path, XDG_STATE_HOME="/tmp/x\nExecStartPre=/bin/evil"))
    with pytest.raises(InvalidInput, match="--db"):
        plan(host, str(tmp_path / "s.sock"), "/tmp/chat\n.db")
    with pytest.raises(InvalidInput, match="too long"):
        plan(host, "/tmp/" + "x" * 120)


def test_linux_install_status_restart_kick_uninstall(tmp_path: Path, tools: Tools) -> None:
    host = linux(tmp_path)
    sock = str(tmp_path / "s.sock")
    install(plan(host, sock))
    assert tools.calls("systemctl") == [["systemctl", "--user", "daemon-reload"],
                                        ["systemctl", "--user", "enable", "imsg.service"],
                                        ["systemctl", "--user", "restart", "imsg.service"]]
    assert installed(host)
    tools.answer("systemctl", "LoadState=loaded\nActiveState=active\nSubState=running\n"
                 "MainPID=4242\nNRestarts=0\nExecMainStatus=0\n", when=("show",))
    info = status(host)
    assert info["running"] and info["state"]["pid"] == 4242 and info["socket"] == "missing"
    assert info["socket_path"] == sock
    assert restart(host) == "systemctl --user restart imsg.service"
    assert service_socket_path(host) == sock  # where `imsg rpc --connect` looks by default
    assert service_socket_path(linux(tmp_path, IMSG_SOCKET="/x/y.sock")) == "/x/y.sock"
    assert kick(str(tmp_path / "other.sock"), host) is None  # not the installed service's
    assert kick(sock, host) == "Restarted the service (`systemctl --user restart imsg.service`)"
    tools.answer("systemctl", stderr="Failed to connect to bus", exit=1, when=("restart",))
    with pytest.raises(ServiceError, match="Failed to connect to bus"):
        restart(host)
    assert "Tried to restart" in (kick(sock, host) or "")
    execute(uninstall_steps(host))
    assert not installed(host) and read_record(host) is None
    with pytest.raises(ServiceError, match="not installed"):
        restart(host)
    assert kick(sock, host) is None


def test_a_refusing_manager_is_reported(tmp_path: Path, tools: Tools) -> None:
    tools.answer("systemctl", stderr="Failed to connect to bus", exit=1, when=("enable",))
    with pytest.raises(ServiceError, match=r"enable imsg\.service` failed .*bus"):
        install(plan(linux(tmp_path), str(tmp_path / "s.sock")))


def test_launchctl_print_is_read(tmp_path: Path, tools: Tools) -> None:
    host = mac(tmp_path)
    with_clang(tools, "x")
    install(plan(host, str(tmp_path / "s.sock")))
    tools.answer("launchctl", "gui/501/com.imsg.rpc = {\n\tactive count = 1\n\tstate = "
                 "waiting\n\tprogram = /x/imsg-rpc\n\truns = 7\n\tlast exit code = 21\n\t"
                 "endpoints = {\n\t\tstate = active\n\t}\n}\n", when=("print",))
    state = status(host)["state"]
    assert state == {"manager": "launchd", "loaded": True, "running": False,
                     "state": "waiting", "runs": 7, "last_exit": "21",
                     "program": "/x/imsg-rpc", "detail": ""}
    tools.answer("launchctl", stderr='Could not find service "com.imsg.rpc" in domain for '
                 "user gui: 501", exit=113, when=("print",))
    assert status(host)["state"]["loaded"] is False
    assert restart(host) == "launchctl kickstart -k gui/501/com.imsg.rpc"


def test_identity_create_uses_openssl_and_security(tmp_path: Path, tools: Tools) -> None:
    host = mac(tmp_path)
    tools.answer("security", "     0 valid identities found\n", when=("find-identity",))
    with pytest.raises(ServiceError, match="No valid"):
        create_identity(host, "imsg Local Signing")
    calls = tools.calls()
    assert [c[:2] for c in calls if c[0] != "security" or c[1] != "find-identity"] == [
        ["openssl", "req"], ["openssl", "pkcs12"], ["security", "import"],
        ["security", "add-trusted-cert"]]
    pkcs12 = next(c for c in calls if c[:2] == ["openssl", "pkcs12"])
    assert "PBE-SHA1-3DES" in pkcs12 and "imsg Local Signing" in pkcs12
    trust = next(c for c in calls if c[1] == "add-trusted-cert")
    assert trust[trust.index("-p") + 1] == "codeSign"
    assert not Path(host.state_dir, "signing").exists()  # the private key never stays
    tools.answer("security", IDENTITY_LIST, when=("find-identity",))
    with pytest.raises(ServiceError, match="exists already"):
        create_identity(host, "imsg Local Signing")
    with pytest.raises(InvalidInput, match="--name"):
        create_identity(host, 'x"; rm -rf ~')
    with pytest.raises(ServiceError, match="for macOS"):
        create_identity(linux(tmp_path), "imsg Local Signing")


def test_after_install_the_settings_pane_opens_and_access_is_awaited(tmp_path: Path,
                                                                     tools: Tools) -> None:
    said: list[str] = []
    path = tmp_path / "s.sock"
    with status_server(path, [status_reply(False), status_reply(False), status_reply(True)]):
        assert guide_access("/Users/me/Applications/imsg-rpc.app", str(path), 30,
                            say=said.append, every_s=0.01) is True
    assert tools.calls("open") == [["open", SETTINGS_URL]]
    assert "add /Users/me/Applications/imsg-rpc.app" in said[0]
    assert said[-1].startswith("Full Disk Access arrived")
    said.clear()
    with status_server(tmp_path / "t.sock", [status_reply(False)]):
        assert guide_access("/A.app", str(tmp_path / "t.sock"), 0.05, open_pane=False,
                            say=said.append, every_s=0.01) is False
    assert any(SETTINGS_URL in line for line in said) and "No access yet" in said[-1]


def test_access_reads_both_status_shapes(tmp_path: Path) -> None:
    from imsg.service.access import ask_service, database_access

    assert database_access({"result": {"db_path": "/x/chat.db"}}).ready is True
    assert database_access({"error": {"code": -32603, "data": "no FDA"}}).ready is False
    assert database_access("nonsense").ready is None
    assert ask_service(str(tmp_path / "none.sock")).ready is None
    with status_server(tmp_path / "s.sock", [status_reply(True)]) as server:
        access = ask_service(str(tmp_path / "s.sock"))
        assert isinstance(server, StatusServer) and access.ready is True
        assert json.loads(server.requests[0])["method"] == "status"


def test_logs_tail_and_follow_through_rotation(tmp_path: Path) -> None:
    import threading

    log = tmp_path / "rpc.log"
    (tmp_path / "rpc.log.1").write_text("".join(f"old {i}\n" for i in range(5)))
    log.write_text("new 0\nnew 1\n")
    assert tail(str(log), 3) == ["old 4", "new 0", "new 1"]
    assert tail(str(tmp_path / "none.log")) == []
    stop = threading.Event()
    seen: list[str] = []

    def reader() -> None:
        for line in follow(str(log), stop, poll_s=0.01, offset=0):
            seen.append(line)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        _wait(lambda: seen == ["new 0", "new 1"])
        with log.open("a") as fh:
            fh.write("appended\npart")
        _wait(lambda: seen[2:] == ["appended"])
        os.replace(log, tmp_path / "rpc.log.1")  # rotation: the service starts a new file
        log.write_text("rotated\n")
        _wait(lambda: seen[2:] == ["appended", "rotated"])
    finally:
        stop.set()
        thread.join(10)


def _wait(condition: Callable[[], bool]) -> None:
    import time

    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_unsupported_platform() -> None:
    with pytest.raises(ServiceError, match="launchd"):
        plan(Host("win32", "/home/x", 1))


def test_cli_dry_runs_change_nothing(tmp_path: Path, isolated_home: Path) -> None:
    env = {**os.environ, "HOME": str(isolated_home)}
    for key in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "IMSG_SOCKET"):
        env.pop(key, None)
    run = subprocess.run(
        [sys.executable, "-m", "imsg", "service", "install", "--dry-run", "--socket",
         str(tmp_path / "s.sock")], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "# write" in run.stdout and f"--socket {tmp_path}/s.sock" in run.stdout
    assert "$ systemctl --user enable imsg.service" in run.stdout
    gone = subprocess.run([sys.executable, "-m", "imsg", "service", "uninstall", "--dry-run"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert gone.returncode == 0 and "# remove" in gone.stdout
    ident = subprocess.run([sys.executable, "-m", "imsg", "service", "identity", "create",
                            "--dry-run"], capture_output=True, text=True, env=env, timeout=60)
    assert ident.returncode == 0 and "$ openssl req -x509" in ident.stdout
    assert "<one-time random password>" in ident.stdout
    assert list(isolated_home.iterdir()) == []
    logs = subprocess.run([sys.executable, "-m", "imsg", "service", "logs"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert logs.returncode == 0 and "no log at" in logs.stderr and logs.stdout == ""
    bad = subprocess.run([sys.executable, "-m", "imsg", "service", "install", "--dry-run",
                          "--socket", "/tmp/a\nExecStartPre=/x"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "control character" in bad.stderr


def test_cli_logs_prints_the_tail_and_follows(tmp_path: Path) -> None:
    import signal

    state = tmp_path / "state"
    (state / "imsg").mkdir(parents=True)
    (state / "imsg" / "rpc.log").write_text("".join(f"line {i}\n" for i in range(10)))
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    run = subprocess.run([sys.executable, "-m", "imsg", "service", "logs", "-n", "2"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0 and run.stdout == "line 8\nline 9\n"
    follow_proc = subprocess.Popen([sys.executable, "-m", "imsg", "service", "logs", "-f", "-n",
                                    "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=env)
    assert follow_proc.stdout is not None
    assert follow_proc.stdout.readline() == "line 9\n"
    with (state / "imsg" / "rpc.log").open("a") as fh:
        fh.write("line 10\n")
    assert follow_proc.stdout.readline() == "line 10\n"
    follow_proc.send_signal(signal.SIGINT)
    out, err = follow_proc.communicate(timeout=20)
    assert follow_proc.returncode == 0 and out == "" and "Traceback" not in err
