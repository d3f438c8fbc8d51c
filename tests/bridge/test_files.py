"""The container's paths, request and response envelopes, and the reclaim table: pure file
operations, no helper running."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from imsg.bridge import container as container_module
from imsg.bridge.container import Container, UnsafePath, safe_dir
from imsg.bridge.envelope import (
    MAX_RESPONSE_BYTES,
    Malformed,
    legacy_bytes,
    parse_response,
    request_bytes,
)
from imsg.bridge.ipc import publish, read_response
from imsg.bridge.outcome import claim_settled, reclaim

# --- container --------------------------------------------------------------------------------


def test_ipc_dirs_are_created_private(tmp_path: Path) -> None:
    box = Container(tmp_path / "c")
    box.root.mkdir()
    inbox, outbox = box.ipc_dirs()
    for folder in (box.rpc, inbox, outbox):
        assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o700


def test_loose_ipc_dirs_are_tightened(tmp_path: Path) -> None:
    box = Container(tmp_path / "c")
    box.inbox.mkdir(parents=True, mode=0o755)
    os.chmod(box.inbox, 0o755)
    box.ipc_dirs()
    assert stat.S_IMODE(os.lstat(box.inbox).st_mode) == 0o700


@pytest.mark.parametrize("link", ["root", "rpc", "in", "out"])
def test_a_symlink_anywhere_is_refused(tmp_path: Path, link: str) -> None:
    real = tmp_path / "real"
    real.mkdir()
    if link == "root":
        (tmp_path / "c").symlink_to(real)
        box = Container(tmp_path / "c" / "inner")
        (real / "inner").mkdir()
    else:
        box = Container(tmp_path / "c")
        box.root.mkdir()
        target = {"rpc": box.rpc, "in": box.inbox, "out": box.outbox}[link]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(real)
    with pytest.raises(UnsafePath, match="symbolic link"):
        box.ipc_dirs()
    assert not list(real.iterdir()) or link == "root"


def test_a_missing_container_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(UnsafePath, match="does not exist"):
        Container(tmp_path / "absent").ipc_dirs()
    assert not (tmp_path / "absent").exists()


def test_system_aliases_are_followed_only_to_their_private_target(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "private-tmp"
    real.mkdir()
    alias = tmp_path / "tmp"
    alias.symlink_to(real)
    with pytest.raises(UnsafePath):
        safe_dir(alias / "x", create=True)
    monkeypatch.setitem(container_module._ALIASES, str(alias), str(real))
    assert safe_dir(alias / "x", create=True) == real / "x"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    alias.unlink()
    alias.symlink_to(elsewhere)  # same name, another target: refused
    with pytest.raises(UnsafePath):
        safe_dir(alias / "x", create=True)


def test_ready_lock_must_be_a_regular_file(tmp_path: Path) -> None:
    box = Container(tmp_path)
    assert not box.is_ready()
    (tmp_path / "elsewhere").write_text("1")
    box.ready_lock.symlink_to(tmp_path / "elsewhere")
    assert not box.is_ready()
    box.ready_lock.unlink()
    box.ready_lock.write_text("1")
    assert box.is_ready()


def test_container_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.setenv("IMSG_BRIDGE_CONTAINER", str(tmp_path / "x"))
    assert Container.default().root == tmp_path / "x"
    monkeypatch.delenv("IMSG_BRIDGE_CONTAINER")
    assert str(Container.default().root).endswith(
        "Library/Containers/com.apple.MobileSMS/Data")


# --- envelopes --------------------------------------------------------------------------------


def test_request_envelope_field_by_field() -> None:
    body = json.loads(request_bytes("ID-1", "send-message", {"chatGuid": "c", "message": "é"}))
    assert list(body) == ["v", "id", "action", "params"]
    assert body == {"v": 2, "id": "ID-1", "action": "send-message",
                    "params": {"chatGuid": "c", "message": "é"}}
    legacy = json.loads(legacy_bytes(1700000000123, "ping", {}))
    assert legacy == {"id": 1700000000123, "action": "ping", "params": {}}


def _response(**fields: object) -> bytes:
    return json.dumps({"v": 2, "id": "A", "success": True, **fields}).encode()


def test_response_data_and_top_level_payloads() -> None:
    assert parse_response(_response(data={"messageGuid": "G"}), "A").data == {
        "messageGuid": "G"}
    older = parse_response(_response(messageGuid="G", timestamp="t"), "A")
    assert older.data == {"messageGuid": "G"}
    failed = parse_response(_response(success=False, error="Chat not found",
                                      disposition="not_started"), "A")
    assert (failed.success, failed.error, failed.disposition) == (
        False, "Chat not found", "not_started")
    assert parse_response(_response(success=False, disposition="bogus"), "A").disposition \
        is None


@pytest.mark.parametrize(("raw", "reason"), [
    (b"", "empty"),
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (_response(id="B"), "answers request"),
    (json.dumps({"v": 2, "id": 7, "success": True}).encode(), "answers request"),
    (_response(success="yes"), "boolean success"),
    (_response(error=5), "error is not a string"),
    (_response(data=[1]), "data is not an object"),
    (_response(v=3), "version"),
    (b" " * (MAX_RESPONSE_BYTES + 1), "larger than"),
])
def test_untrusted_responses_are_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(Malformed, match=reason):
        parse_response(raw, "A")


def test_response_files_are_read_once_without_following_links(tmp_path: Path) -> None:
    path = tmp_path / "A.json"
    assert read_response(path) is None
    path.write_bytes(b"{}")
    assert read_response(path) == b"{}" and not path.exists()
    secret = tmp_path / "secret"
    secret.write_text("token")
    path.symlink_to(secret)
    with pytest.raises(Malformed, match="symbolic link"):
        read_response(path)
    assert not path.is_symlink() and secret.exists()


def test_publication_is_an_atomic_rename(tmp_path: Path) -> None:
    publish(tmp_path, "R", b'{"v":2}')
    assert sorted(os.listdir(tmp_path)) == ["R.json"]
    (tmp_path / "S.tmp").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(Exception, match="could not be written"):
        publish(tmp_path, "S", b"{}")
    assert not (tmp_path / "elsewhere").exists()


# --- reclaiming -------------------------------------------------------------------------------


@pytest.fixture
def boxes(tmp_path: Path) -> tuple[Path, Path]:
    inbox, outbox = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    outbox.mkdir()
    return inbox, outbox


def test_an_unclaimed_request_is_withdrawn_and_never_started(boxes: tuple[Path, Path]) -> None:
    inbox, outbox = boxes
    (inbox / "R.json").write_text("{}")
    found = reclaim(inbox, outbox, "R")
    assert found.outcome == "not_started" and not (inbox / "R.json").exists()


def test_a_claimed_request_is_still_in_flight(boxes: tuple[Path, Path]) -> None:
    inbox, outbox = boxes
    claim = inbox / f"R.processing.{os.getpid()}"
    claim.write_text("{}")
    found = reclaim(inbox, outbox, "R")
    assert found.outcome == "still_in_flight" and found.claims == (claim,)
    assert not claim_settled(inbox, "R")
    claim.unlink()
    assert claim_settled(inbox, "R")


def test_an_orphan_claim_settles(boxes: tuple[Path, Path]) -> None:
    from imsg.sim.bridge import _dead_pid

    inbox, _ = boxes
    dead = inbox / f"R.processing.{_dead_pid()}"
    dead.write_text("{}")
    assert claim_settled(inbox, "R")
    old = inbox / f"S.processing.{os.getpid()}"
    old.write_text("{}")
    assert not claim_settled(inbox, "S")
    stale = time.time() - 601
    os.utime(old, (stale, stale))
    assert claim_settled(inbox, "S")


def test_a_response_wins_and_both_gone_may_have_completed(boxes: tuple[Path, Path]) -> None:
    inbox, outbox = boxes
    (outbox / "R.json").write_text("{}")
    assert reclaim(inbox, outbox, "R").outcome == "response"
    assert reclaim(inbox, outbox, "Q").outcome == "may_have_completed"


def test_an_unreadable_inbox_is_still_in_flight(tmp_path: Path) -> None:
    assert reclaim(tmp_path / "missing", tmp_path, "R").outcome == "still_in_flight"

