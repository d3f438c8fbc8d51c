"""The state database: the journal and cursor, the pairing store, two processes at once."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest

from imsg.errors import PairingNotFound, StateError
from imsg.gateway.state import (
    CODE_ALPHABET,
    PAIRING_TTL_S,
    TOMBSTONE_CAP,
    TOMBSTONE_S,
    State,
)


@pytest.fixture
def state(tmp_path: Path) -> State:
    return State(str(tmp_path / "state"))


def test_files_are_private(tmp_path: Path) -> None:
    State(str(tmp_path / "state")).close()
    assert oct((tmp_path / "state").stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "state" / "gateway.sqlite").stat().st_mode & 0o777) == "0o600"


def test_admit_is_idempotent_and_moves_the_cursor_forward_only(state: State) -> None:
    assert state.admit("a", [("g1", 1, "{}"), ("g2", 2, "{}")], cursor=2) == [True, True]
    assert state.admit("a", [("g2", 2, "{}"), ("g3", 3, "{}")], cursor=1) == [False, True]
    assert state.cursor("a") == 2
    state.set_cursor("a", 1)
    assert state.cursor("a") == 2
    state.set_cursor("a", 1, lower=True)
    assert state.cursor("a") == 1
    assert state.cursor("other") is None


def test_finish_leaves_a_tombstone_without_the_payload(state: State) -> None:
    state.admit("a", [("g1", 1, '{"text":"secret"}')], cursor=1)
    state.finish("a", ["g1"], "dispatched")
    assert state.pending("a") == []
    row = state.conn.execute("SELECT payload, status, reason FROM ingress").fetchone()
    assert row == (None, "done", "dispatched")
    assert state.admit("a", [("g1", 1, "{}")], cursor=1) == [False]  # a replay is recognized


def test_tombstones_expire_and_are_capped(state: State) -> None:
    rows = [(f"g{i}", i, "{}") for i in range(TOMBSTONE_CAP + 100)]
    state.admit("a", rows, cursor=None, now=0.0)
    state.finish("a", [r[0] for r in rows[:60]], "old", now=0.0)
    state.finish("a", [r[0] for r in rows[60:]], "new", now=TOMBSTONE_S)
    state.admit("a", [("pending", 99_999, "{}")], cursor=None)
    removed = state.prune("a", now=TOMBSTONE_S + 1)
    assert removed == 60 + 40  # 60 too old, then 40 over the cap
    assert state.counts("a") == {"done": TOMBSTONE_CAP, "pending": 1}


def test_accounts_never_share_state(state: State) -> None:
    state.admit("a", [("g1", 1, "{}")], cursor=1)
    assert state.admit("b", [("g1", 1, "{}")], cursor=5) == [True]
    state.request_pairing("a", "+1555", 3)
    assert state.pairing_requests("b") == []
    assert state.accounts() == ["a", "b"]


# --- pairing ---------------------------------------------------------------------------------

def test_codes_are_eight_unambiguous_characters(state: State) -> None:
    codes = set()
    for index in range(3):
        request, created = state.request_pairing("a", f"+1555000000{index}", None)
        assert created and request is not None
        assert len(request.code) == 8 and set(request.code) <= set(CODE_ALPHABET)
        codes.add(request.code)
    assert len(codes) == 3
    assert not set("01IO") & set(CODE_ALPHABET)


def test_same_sender_keeps_its_code_and_gets_no_second_reply(state: State) -> None:
    first, created = state.request_pairing("a", "+1555", 7, now=100.0)
    again, created_again = state.request_pairing("a", "+1555", 7, now=200.0)
    assert created and not created_again
    assert first is not None and again is not None and again.code == first.code
    assert again.last_seen_at == 200.0


def test_at_most_three_pending_per_account(state: State) -> None:
    for index in range(3):
        assert state.request_pairing("a", f"+1{index}", None)[1]
    assert state.request_pairing("a", "+19", None) == (None, False)
    assert state.request_pairing("b", "+19", None)[1]  # another account has its own room


def test_requests_expire_after_an_hour(state: State) -> None:
    request, _ = state.request_pairing("a", "+1555", None, now=0.0)
    assert request is not None
    assert state.pairing_requests("a", now=PAIRING_TTL_S - 1)
    assert state.pairing_requests("a", now=PAIRING_TTL_S + 1) == []
    with pytest.raises(PairingNotFound):
        state.approve(request.code, now=PAIRING_TTL_S + 1)
    assert state.request_pairing("a", "+1555", None, now=PAIRING_TTL_S + 2)[1]


def test_approve_is_case_insensitive_and_adds_the_sender(state: State) -> None:
    request, _ = state.request_pairing("a", "+1555", 4)
    assert request is not None
    approved = state.approve(f"  {request.code.lower()} ")
    assert (approved.account, approved.sender, approved.chat_id) == ("a", "+1555", 4)
    assert state.approved("a") == frozenset({"+1555"})
    assert state.pairing_requests() == []
    with pytest.raises(PairingNotFound, match="No pending pairing request found for code: "):
        state.approve(request.code)


def test_deny_keeps_the_stranger_silent_until_expiry(state: State) -> None:
    request, _ = state.request_pairing("a", "+1555", None, now=0.0)
    assert request is not None
    state.deny(request.code, now=1.0)
    assert state.pairing_requests("a", now=2.0) == []
    assert state.request_pairing("a", "+1555", None, now=3.0) == (None, False)
    assert state.approved("a") == frozenset()
    with pytest.raises(PairingNotFound):
        state.approve(request.code, now=4.0)
    for index in range(3):  # a denial takes no room from others
        assert state.request_pairing("a", f"+1{index}", None, now=5.0)[1]


def test_sends_recorded_for_another_process(state: State) -> None:
    start = state.last_send_id()
    state.record_send("a", "chat_id:3", text="backup done", ids=["G1", None, 9])
    sent = state.sends_after("a", start)
    assert [(s.scope, s.text, s.ids) for s in sent] == [("chat_id:3", "backup done",
                                                         ("G1", "9"))]
    assert state.sends_after("b", start) == []


def test_status_records(state: State) -> None:
    state.record_error("a", "imsg rpc exited (code 1)", now=5.0)
    state.record_probe("a", {"probe": "initialize"}, now=6.0)
    assert state.account_status("a") == {"last_error": "imsg rpc exited (code 1)",
                                         "last_error_at": 5.0,
                                         "probe": {"probe": "initialize"}, "probe_at": 6.0}
    assert state.account_status("b") == {}


# --- failures -----------------------------------------------------------------------------

def test_unusable_state_directory_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StateError, match="cannot create the state directory"):
        State(str(blocker / "state"))


def test_corrupt_database_is_a_state_error(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "gateway.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="open failed: file is not a database"):
        State(str(folder))


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    State(str(tmp_path)).close()
    conn = sqlite3.connect(tmp_path / "gateway.sqlite")
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="newer imsg"):
        State(str(tmp_path))


# --- two processes ----------------------------------------------------------------------------

def _hammer(folder: str, worker: int, count: int) -> None:
    state = State(folder)
    for index in range(count):
        state.admit("a", [(f"w{worker}-{index}", index, "{}")], cursor=worker * 10_000 + index)
        state.record_send("a", "s", text=f"{worker}-{index}", ids=[])
    state.close()


def test_two_processes_never_lose_an_update(tmp_path: Path) -> None:
    folder = str(tmp_path / "state")
    State(folder).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(folder, w, 150)) for w in (1, 2)]
    for process in workers:
        process.start()
    state = State(folder)
    request, _ = state.request_pairing("a", "+1555", None)
    assert request is not None
    state.approve(request.code)  # while the others write
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    assert state.counts("a") == {"pending": 300}
    assert len(state.sends_after("a", 0)) == 300
    assert state.cursor("a") == 2 * 10_000 + 149
    assert state.approved("a") == frozenset({"+1555"})
    assert os.path.exists(os.path.join(folder, "gateway.sqlite-wal"))
