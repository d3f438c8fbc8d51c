"""``imsg doctor``: each check's verdict and its one fix, including the failures people
otherwise chase by hand: a running service without its socket, ``auth_value 0``, tccd's
``AUTHREQ_RESULT … authValue=2`` while the service still cannot read, a signature that no
longer matches, and an interpreter as the Full Disk Access holder."""

from __future__ import annotations

import json
import os
import plistlib
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from imsg.doctor import Check, ok, render, run_checks
from imsg.doctor.checks import check_automation, check_database, check_osascript
from imsg.doctor.tcc import parse_tccd_log
from imsg.errors import PermissionDenied
from imsg.service import install, plan
from tests.rpc.harness import SIM_OSASCRIPT, demo_db
from tests.service.fakes import Tools, linux, mac, status_reply, status_server, with_clang

RUNNING = ("gui/501/com.imsg.rpc = {{\n\tactive count = 1\n\tpath = {plist}\n\ttype = "
           "LaunchAgent\n\tstate = running\n\n\tprogram = {exe}\n\targuments = {{\n\t\t{exe}\n"
           "\t}}\n\n\truns = 1\n\tpid = 4242\n\timmediate reason = speculative\n\tforks = 0\n"
           "\texecs = 1\n\tlast exit code = (never exited)\n}}\n")
TCCD = """\
2026-05-01 10:00:00.100 Df tccd[181:1a2b] [com.apple.TCC:access] AUTHREQ_ATTRIBUTION: \
msgID=181.77, attribution={{responsible={{TCCDProcess: identifier={subject}, pid=4242, \
auid=501, euid=501, responsible_path={path}, binary_path={path}}}, requesting=\
{{TCCDProcess: identifier=org.python.python, pid=4243, auid=501, euid=501, \
binary_path=/opt/py/bin/python3.12}}, }},
2026-05-01 10:00:00.101 Df tccd[181:1a2b] [com.apple.TCC:access] AUTHREQ_CTX: \
msgID=181.77, function=TCCAccessRequest, service=kTCCServiceSystemPolicyAllFiles, \
preflight=yes, query=1, client_dict=(null), daemon_dict=(null)
2026-05-01 10:00:00.102 Df tccd[181:1a2b] [com.apple.TCC:access] AUTHREQ_RESULT: \
msgID=181.77, authValue={auth}, authReason=2, authVersion=1, desired_auth=0, error=(null),
"""
MISMATCH = ("2026-05-01 10:05:00.000 E  tccd[181:1a2b] [com.apple.TCC:access] Failed to match "
            "existing code requirement for subject com.imsg.rpc and service "
            "kTCCServiceSystemPolicyAllFiles\n")


def runner(code: int, output: str):  # type: ignore[no-untyped-def]
    def run(argv: Sequence[str]) -> tuple[int, str]:
        return code, output
    return run


def tcc_db(path: Path, *rows: tuple[str, int, int]) -> str:
    """A TCC.db with the access rows (client, client_type, auth_value) for Full Disk Access."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE access (service TEXT NOT NULL, client TEXT NOT NULL, "
                   "client_type INTEGER NOT NULL, auth_value INTEGER NOT NULL, auth_reason "
                   "INTEGER NOT NULL, auth_version INTEGER NOT NULL, csreq BLOB, "
                   "last_modified INTEGER NOT NULL DEFAULT 0)")
        db.executemany("INSERT INTO access VALUES ('kTCCServiceSystemPolicyAllFiles', ?, ?, ?, "
                       "4, 1, NULL, 0)", rows)
    return str(path)


class Mac:
    """A service installed on a (fake) Mac, with launchctl saying it runs."""

    def __init__(self, tmp_path: Path, tools: Tools) -> None:
        self.tmp = tmp_path
        self.tools = tools
        self.host = mac(tmp_path)
        self.socket = tmp_path / "run" / "rpc.sock"
        self.socket.parent.mkdir(mode=0o700)
        self.exe = f"{self.host.bundle_path}/Contents/MacOS/imsg-rpc"
        tools.answer("security", '  1) 0123456789ABCDEF0123456789ABCDEF01234567 "imsg Local '
                     'Signing"\n', when=("find-identity",))
        with_clang(tools, self.exe, adhoc=False)
        self.plan = plan(self.host, str(self.socket), sign_identity="imsg Local Signing")
        install(self.plan)
        tools.answer("launchctl", RUNNING.format(plist=self.plan.unit_path, exe=self.exe),
                     when=("print",))
        self.tcc = [tcc_db(tmp_path / "TCC.db", ("com.imsg.rpc", 0, 2))]
        self.db = demo_db(tmp_path / "chat.db")

    def checks(self) -> dict[str, Check]:
        found = run_checks(self.db, host=self.host, tcc_db_paths=self.tcc)
        return {check.name: check for check in found}

    def log(self, text: str) -> None:
        self.tools.answer("log", text, when=("show",))


@pytest.fixture
def macos(tmp_path: Path, tools: Tools) -> Mac:
    return Mac(tmp_path, tools)


def test_a_healthy_service(macos: Mac) -> None:
    macos.log(TCCD.format(subject="com.imsg.rpc", path=macos.exe, auth=2))
    with status_server(macos.socket, [status_reply(True)]):
        checks = macos.checks()
    assert [name for name in checks] == ["database", "osascript", "automation", "service",
                                         "socket", "program", "signature", "tcc", "tccd",
                                         "access"]
    for name in ("service", "socket", "program", "signature", "tcc", "tccd", "access"):
        assert checks[name].status == "ok", checks[name]
    assert "pid 4242" in checks["service"].detail
    assert "signed by imsg Local Signing (com.imsg.rpc); unchanged" in checks["signature"].detail
    assert "authValue=2" in checks["tccd"].detail
    assert ["log", "show", "--last", "1h", "--style", "compact", "--predicate",
            'process == "tccd" AND (eventMessage CONTAINS "AUTHREQ" OR eventMessage CONTAINS '
            '"code requirement")'] in macos.tools.calls("log")


def test_running_but_the_socket_is_gone(macos: Mac) -> None:
    checks = macos.checks()  # launchctl: state = running; no socket at the path
    assert checks["service"].status == "ok"
    socket_check = checks["socket"]
    assert socket_check.status == "fail" and "clients get ENOENT" in socket_check.detail
    assert socket_check.fix == "`imsg service restart`"
    assert checks["access"].status == "skip"
    assert not ok(list(checks.values()))


def test_full_disk_access_switched_off(macos: Mac) -> None:
    macos.tcc = [tcc_db(macos.tmp / "off.db", ("com.imsg.rpc", 0, 0))]
    macos.log(TCCD.format(subject="com.imsg.rpc", path=macos.exe, auth=0))
    with status_server(macos.socket, [status_reply(False)]):
        checks = macos.checks()
    assert checks["tcc"].status == "fail" and "auth_value 0 (denied)" in checks["tcc"].detail
    assert checks["tcc"].fix is not None and "Turn imsg-rpc on" in checks["tcc"].fix
    assert checks["tccd"].status == "fail" and "authValue=0" in checks["tccd"].detail
    access = checks["access"]
    assert access.status == "fail" and "authorization denied" in access.detail
    assert access.fix is not None and f"add {macos.host.bundle_path}" in access.fix


def test_granted_but_the_service_started_before(macos: Mac) -> None:
    macos.log(TCCD.format(subject="com.imsg.rpc", path=macos.exe, auth=2))
    with status_server(macos.socket, [status_reply(False)]):
        checks = macos.checks()
    assert checks["tccd"].status == "ok" and checks["tcc"].status == "ok"
    assert checks["access"].fix == "`imsg service restart`: access was granted after the " \
                                   "service started"


def test_a_signature_that_no_longer_matches(macos: Mac) -> None:
    with_clang(macos.tools, macos.exe, adhoc=False, cdhash="ff99", leaf="cd34")  # rebuilt
    macos.log(TCCD.format(subject="com.imsg.rpc", path=macos.exe, auth=0) + MISMATCH)
    with status_server(macos.socket, [status_reply(False)]):
        checks = macos.checks()
    signature = checks["signature"]
    assert signature.status == "fail" and "designated requirement changed" in signature.detail
    assert 'H"ab12"' in signature.detail and 'H"cd34"' in signature.detail
    assert checks["tccd"].status == "fail" and "code requirement" in checks["tccd"].detail
    fix = f"In System Settings › Privacy & Security › Full Disk Access, remove imsg-rpc and " \
          f"add {macos.host.bundle_path} again"
    assert signature.fix == fix and checks["access"].fix == fix


def test_an_interpreter_as_the_full_disk_access_holder(macos: Mac) -> None:
    agent = plistlib.loads(Path(macos.plan.unit_path).read_bytes())
    agent["ProgramArguments"] = ["/opt/py/bin/python3", "-m", "imsg", "rpc", "--socket",
                                 str(macos.socket)]  # what older versions installed
    Path(macos.plan.unit_path).write_bytes(plistlib.dumps(agent))
    macos.tcc = [tcc_db(macos.tmp / "py.db", ("/opt/py/bin/python3", 1, 2))]
    macos.log(TCCD.format(subject="org.python.python", path="/opt/py/bin/python3", auth=2))
    with status_server(macos.socket, [status_reply(False)]):
        checks = macos.checks()
    program = checks["program"]
    assert program.status == "warn" and "THE AGENT RUNS AN INTERPRETER" in program.detail
    assert program.fix is not None and program.fix.startswith("`imsg service install`")
    assert checks["tcc"].status == "warn" and "/opt/py/bin/python3" in checks["tcc"].detail
    assert checks["tccd"].status == "warn"
    assert checks["access"].fix == "`imsg service install`: the agent runs an interpreter, " \
                                   "not the imsg-rpc app"


def test_a_missing_bundle_and_an_unreadable_tcc_db(macos: Mac) -> None:
    import shutil

    shutil.rmtree(macos.host.bundle_path)
    macos.tcc = [str(macos.tmp / "nope.db")]
    macos.tools.answer("log", stderr="log: command failed", exit=1, when=("show",))
    checks = macos.checks()
    assert checks["signature"].status == "fail" and "missing" in checks["signature"].detail
    assert checks["tcc"].status == "skip" and "not readable" in checks["tcc"].detail
    assert checks["tccd"].status == "skip"


def test_not_loaded_and_crash_looping(macos: Mac) -> None:
    macos.tools.answer("launchctl", stderr='Could not find service "com.imsg.rpc" in domain '
                       "for user gui: 501", exit=113, when=("print",))
    service = macos.checks()["service"]
    assert service.status == "fail" and "not loaded" in service.detail
    assert service.fix is not None and service.fix.startswith("`imsg service install`")
    macos.tools.answer("launchctl", "state = running\npid = 9\nruns = 12\nlast exit code = 1\n",
                       when=("print",))
    service = macos.checks()["service"]
    assert service.status == "warn" and service.fix == "`imsg service logs` shows why it exits"


def test_tccd_log_parsing() -> None:
    text = TCCD.format(subject="com.imsg.rpc", path="/A.app/Contents/MacOS/x", auth=2) + MISMATCH
    decisions = parse_tccd_log(text)
    assert [(d.subject, d.auth_value, d.mismatch) for d in decisions] == [
        ("com.imsg.rpc", 2, False), ("com.imsg.rpc", None, True)]
    assert decisions[0].when == "2026-05-01 10:00:00"
    assert parse_tccd_log("garbage\nmsgID=1 nothing else\n") == []


def test_linux_service(tmp_path: Path, tools: Tools) -> None:
    host = linux(tmp_path)
    sock = tmp_path / "run" / "rpc.sock"
    sock.parent.mkdir(mode=0o700)
    install(plan(host, str(sock)))
    tools.answer("systemctl", "LoadState=loaded\nActiveState=active\nSubState=running\n"
                 "MainPID=77\nNRestarts=0\nExecMainStatus=0\n", when=("show",))
    db = demo_db(tmp_path / "chat.db")
    with status_server(sock, [status_reply(True)]):
        checks = {c.name: c for c in run_checks(db, host=host)}
    assert [checks[n].status for n in ("service", "socket", "access")] == ["ok", "ok", "ok"]
    assert "program" not in checks and "tcc" not in checks
    with status_server(sock, [status_reply(False, "No Messages database")]):
        access = {c.name: c for c in run_checks(db, host=host)}["access"]
    assert access.status == "fail" and access.fix is not None and "--db" in access.fix
    sock.parent.chmod(0o777)
    with status_server(sock, [status_reply(True)]):
        socket_check = {c.name: c for c in run_checks(db, host=host)}["socket"]
    assert socket_check.status == "fail" and "writable by others" in socket_check.detail


def test_not_installed_is_no_failure(tmp_path: Path) -> None:
    checks = {c.name: c for c in run_checks(demo_db(tmp_path / "chat.db"),
                                            host=linux(tmp_path))}
    assert checks["service"].status == "skip" and checks["socket"].status == "skip"
    assert checks["service"].fix is not None and "imsg service install" in checks["service"].fix


def test_database(tmp_path: Path) -> None:
    good = check_database(demo_db(tmp_path / "chat.db"))
    assert good.status == "ok" and "#19" in good.detail
    missing = check_database(str(tmp_path / "none.db"))
    assert missing.status == "fail" and missing.fix and "imsg sim init" in missing.fix
    (tmp_path / "other.db").write_bytes(b"not sqlite at all" * 100)
    assert check_database(str(tmp_path / "other.db")).status == "fail"


def test_database_without_full_disk_access(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: str) -> None:
        raise PermissionDenied(path, "authorization denied")

    monkeypatch.setattr("imsg.chatdb.reader.ChatDB", refuse)
    check = check_database("/Users/me/Library/Messages/chat.db")
    assert check.status == "fail" and check.fix and "Full Disk Access" in check.fix
    assert "python" not in check.fix.lower()  # the service's holder is its app, never Python


def test_osascript(tmp_path: Path) -> None:
    assert check_osascript(SIM_OSASCRIPT, custom=True, platform="linux").status == "ok"
    assert check_osascript(str(tmp_path / "x"), custom=True, platform="darwin").status == "fail"
    assert check_osascript(str(tmp_path / "x"), custom=False, platform="darwin").status == "fail"
    off_mac = check_osascript(str(tmp_path / "x"), custom=False, platform="linux")
    assert off_mac.status == "warn" and off_mac.fix and "IMSG_OSASCRIPT" in off_mac.fix


def test_automation() -> None:
    args = {"custom": False, "platform": "darwin", "usable": True}
    assert check_automation("osascript", runner(0, "Messages"), **args).status == "ok"
    denied = check_automation("osascript", runner(
        1, "execution error: Not authorized to send Apple events to Messages. (-1743)"), **args)
    assert denied.status == "fail" and denied.fix and "Automation" in denied.fix
    assert check_automation("osascript", runner(124, ""), **args).status == "warn"
    assert check_automation("osascript", runner(1, "execution error: x (-600)"),
                            **args).status == "warn"
    assert check_automation("sim", runner(0, ""), custom=True, platform="darwin",
                            usable=True).status == "skip"
    assert check_automation("x", runner(0, ""), custom=False, platform="darwin",
                            usable=False).status == "skip"


def test_render_and_verdict() -> None:
    checks = [Check("database", "ok", "fine"), Check("socket", "fail", "broken", fix="do x")]
    lines = render(checks)
    assert lines[0].startswith("ok") and "FAIL" in lines[1] and "fix: do x" in lines[2]
    assert not ok(checks) and ok(checks[:1])


def test_cli_json(tmp_path: Path, tools: Tools) -> None:
    db = demo_db(tmp_path / "chat.db")
    env = {**os.environ, "IMSG_OSASCRIPT": SIM_OSASCRIPT, "IMSG_SIM_DB": db}
    run = subprocess.run([sys.executable, "-m", "imsg", "doctor", "--json", "--db", db,
                          "--socket", str(tmp_path / "s.sock")],
                         capture_output=True, text=True, env=env, timeout=60)
    report = json.loads(run.stdout)
    assert run.returncode == 0 and report["ok"] is True, run.stdout
    assert [c["name"] for c in report["checks"]] == ["database", "osascript", "automation",
                                                     "service", "socket"]
    broken = subprocess.run([sys.executable, "-m", "imsg", "doctor", "--db",
                             str(tmp_path / "none.db")], capture_output=True, text=True,
                            env=env, timeout=60)
    assert broken.returncode == 1 and "FAIL  database" in broken.stdout
    assert "fix:" in broken.stdout
