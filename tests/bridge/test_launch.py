"""``imsg launch``'s flow with the Mac's side effects replaced, SIP detection through a fake
csrutil, and the dylib search."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from imsg.bridge.container import Container
from imsg.bridge.host import Sip, dylib_candidates, find_dylib, sip_status
from imsg.bridge.launch import Host, launch, ready_timeout_s
from imsg.errors import LaunchFailed

SIM_CSRUTIL = str(Path(sys.executable).with_name("imsg-sim-csrutil"))


class FakeMac:
    """Records what the flow does; ``start`` makes the helper ready (unless ``hangs``)."""

    def __init__(self, container: Container, sip: str = "disabled", hangs: bool = False,
                 version: str | None = None) -> None:
        self.container = container
        self.state = sip
        self.hangs = hangs
        self.version = version
        self.calls: list[str] = []
        self.now = 0.0

    def host(self) -> Host:
        return Host(sip=lambda: Sip(self.state, "csrutil says so"),  # type: ignore[arg-type]
                    kill_messages=lambda: self.calls.append("kill"),
                    start_messages=self.start, sleep=self.sleep, clock=lambda: self.now,
                    helper_version=lambda client: self.version)

    def start(self, dylib: str) -> None:
        self.calls.append(f"start {dylib}")
        if not self.hangs:
            self.container.ready_lock.write_text("4242")

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def dylib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "imsg-bridge-helper.dylib"
    path.write_text("dylib")
    monkeypatch.setenv("IMSG_BRIDGE_DYLIB", str(path))
    return str(path)


@pytest.fixture
def box(tmp_path: Path) -> Container:
    root = tmp_path / "container"
    root.mkdir()
    return Container(root)


def test_launch_kills_cleans_starts_and_waits(box: Container, dylib: str) -> None:
    box.ipc_dirs()
    for name in ("A.json", "B.tmp", f"C.processing.{os.getpid()}"):
        (box.inbox / name).write_text("{}")
    (box.outbox / "D.json").write_text("{}")
    box.legacy_command.write_text("{}")
    box.owner_lock.write_text("")
    box.ready_lock.write_text("1")
    mac = FakeMac(box)
    result = launch(box, host=mac.host())
    assert result == {"status": "launched", "dylib": dylib,
                      "message": "Messages.app launched with dylib injection"}
    assert mac.calls == ["kill", f"start {dylib}"]
    assert os.listdir(box.inbox) == [f"C.processing.{os.getpid()}"]  # claims are kept
    assert os.listdir(box.outbox) == []
    assert not box.legacy_command.exists() and box.owner_lock.exists()
    assert box.launch_lock.exists()


def test_kill_only(box: Container, dylib: str) -> None:
    mac = FakeMac(box)
    assert launch(box, kill_only=True, host=mac.host()) == {
        "status": "killed", "message": "Messages.app terminated"}
    assert mac.calls == ["kill"]


def test_a_current_helper_is_reused_unless_forced(box: Container, dylib: str) -> None:
    box.ready_lock.write_text("1")
    mac = FakeMac(box, version="0.15.10")
    assert launch(box, host=mac.host())["reused"] is True and mac.calls == []
    assert launch(box, force=True, host=mac.host())["message"].startswith("Messages.app launched")
    assert mac.calls == ["kill", f"start {dylib}"]


@pytest.mark.parametrize(("state", "reason", "text"), [
    ("enabled", "sip_enabled", "System Integrity Protection (SIP) is enabled."),
    ("unknown", "sip_unknown", "Unable to determine SIP status. Refusing to auto-inject"),
])
def test_sip_refuses(box: Container, dylib: str, state: str, reason: str, text: str) -> None:
    mac = FakeMac(box, sip=state)
    with pytest.raises(LaunchFailed) as err:
        launch(box, host=mac.host())
    assert err.value.reason == reason and err.value.message.startswith(text)
    assert mac.calls == []


def test_a_missing_dylib_lists_where_it_looked(box: Container, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMSG_BRIDGE_DYLIB", raising=False)
    with pytest.raises(LaunchFailed) as err:
        launch(box, dylib=str(tmp_path / "nope.dylib"), host=FakeMac(box).host())
    assert err.value.reason == "dylib_not_found"
    assert err.value.message.startswith(
        f"imsg-bridge-helper.dylib not found. Searched:\n- {tmp_path / 'nope.dylib'}\n")


def test_ready_timeout(box: Container, dylib: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMSG_LAUNCH_READY_TIMEOUT", "2")
    mac = FakeMac(box, hangs=True)
    with pytest.raises(LaunchFailed) as err:
        launch(box, host=mac.host())
    assert err.value.reason == "ready_timeout" and "2s" in err.value.message
    assert "IMSG_LAUNCH_READY_TIMEOUT" in err.value.message and err.value.dylib == dylib


@pytest.mark.parametrize(("value", "seconds"), [
    ("", 15), ("abc", 15), ("nan", 15), ("0", 15), ("-3", 15), (" 2.5 ", 2.5), ("9999", 600),
])
def test_ready_timeout_values(value: str, seconds: float) -> None:
    assert ready_timeout_s(value) == seconds


def test_launch_lock_must_be_private(box: Container, dylib: str) -> None:
    other = box.root / "other"
    other.write_text("")
    os.link(other, box.launch_lock)  # two hard links
    with pytest.raises(LaunchFailed, match="not a private regular file"):
        launch(box, host=FakeMac(box).host())


@pytest.mark.parametrize(("sim_sip", "state"), [("disabled", "disabled"),
                                                 ("enabled", "enabled"),
                                                 ("broken", "unknown")])
def test_sip_from_csrutil(monkeypatch: pytest.MonkeyPatch, sim_sip: str, state: str) -> None:
    monkeypatch.setenv("IMSG_CSRUTIL", SIM_CSRUTIL)
    monkeypatch.setenv("IMSG_SIM_SIP", sim_sip)
    assert sip_status().state == state


def test_sip_unknown_without_csrutil(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMSG_CSRUTIL", str(tmp_path / "csrutil"))
    found = sip_status()
    assert found.state == "unknown" and "cannot run" in found.details


def test_dylib_search_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("IMSG_BRIDGE_DYLIB", raising=False)
    monkeypatch.setenv("HOMEBREW_PREFIX", str(tmp_path / "brew"))
    paths = dylib_candidates()
    assert paths[2] == str(tmp_path / "brew" / "lib" / "imsg-bridge-helper.dylib")
    assert paths[-4:] == ["/opt/homebrew/lib/imsg-bridge-helper.dylib",
                          "/usr/local/lib/imsg-bridge-helper.dylib",
                          ".build/release/imsg-bridge-helper.dylib",
                          ".build/debug/imsg-bridge-helper.dylib"]
    brewed = tmp_path / "brew" / "lib"
    brewed.mkdir(parents=True)
    cellar = tmp_path / "cellar.dylib"
    cellar.write_text("x")
    (brewed / "imsg-bridge-helper.dylib").symlink_to(cellar)  # Homebrew links into its Cellar
    assert find_dylib() == str(brewed / "imsg-bridge-helper.dylib")
