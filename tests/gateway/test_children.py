"""A zoo of misbehaving children: the gateway stays up, says what happened in one clear line,
restarts the child, and handles the next message."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from imsg.gateway.runner import Gateway
from tests.gateway.kit import Recorder, fake_config, make_fake, message, run, wait_for, with_gateway


def restarts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "restarting in" in r.getMessage()]


async def recovers(fake: Any, recorder: Recorder, gateway: Gateway, *, starts: int) -> None:
    """Once the child has been started ``starts`` times and subscribed, a message gets
    through."""
    acct = gateway.accounts["default"]
    await wait_for(lambda: fake.starts >= starts and acct.supervisor.subscribed.is_set(),
                   what=f"{starts} starts and a subscription")
    fake.add(message(100, "still there?"))
    await wait_for(lambda: recorder.texts == ["still there?"], what="the message")


def survives(tmp_path: Path, caplog: pytest.LogCaptureFixture, *modes: dict[str, Any],
             starts: int, level: int = logging.INFO, **keys: Any) -> None:
    """Run the gateway over a fake child started in ``modes`` until a message gets through
    after ``starts`` starts."""
    caplog.set_level(level, logger="imsg.gateway")
    fake = make_fake(tmp_path, *modes)
    fake.add(message(1, "old"))
    recorder = Recorder()
    config = fake_config(tmp_path, fake, **keys)
    run(with_gateway(config, tmp_path / "state",
                     recorder, lambda gw: recovers(fake, recorder, gw, starts=starts)))


def check(tmp_path: Path, caplog: pytest.LogCaptureFixture, modes: list[dict[str, Any]],
          *, starts: int, reason: str, **keys: Any) -> list[str]:
    survives(tmp_path, caplog, *modes, starts=starts, level=logging.DEBUG, **keys)
    lines = restarts(caplog)
    assert lines and reason in lines[0], lines
    return lines


def test_child_that_hangs_is_restarted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    check(tmp_path, caplog, [{"hang": True}, {}], starts=2, probeTimeoutMs=300,
          reason="imsg rpc did not answer the probe within 0.3s")


def test_child_that_never_answers_initialize(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    check(tmp_path, caplog, [{"no_init": True}, {}], starts=2, probeTimeoutMs=300,
          reason="did not answer the probe")


def test_child_that_exits_mid_request(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = check(tmp_path, caplog, [{"exit_on": "watch.subscribe"}, {}], starts=2,
                  reason="imsg rpc [default] exited (code 3)")
    assert len(lines) == 1


def test_garbage_lines_are_logged_grouped_and_ignored(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    survives(tmp_path, caplog, {"garbage": 5}, starts=1)
    noise = [r.getMessage() for r in caplog.records if "non-JSON" in r.getMessage()]
    assert noise and len(noise) <= 3, noise
    assert "Welcome to imsg! line 0" in noise[0] or "noise" in noise[0]
    assert not restarts(caplog)


def test_stderr_flood_is_rate_limited(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    survives(tmp_path, caplog, {"stderr_flood": 20_000}, starts=1)
    stderr = [r for r in caplog.records if "stderr:" in r.getMessage()]
    assert 1 <= len(stderr) <= 25
    assert not restarts(caplog)


def test_slow_answers_within_the_timeout_are_fine(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    survives(tmp_path, caplog, {"slow_ms": 150}, starts=1)
    assert not restarts(caplog)


def test_wedged_child_is_caught_by_the_health_check(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    # Answers initialize, chats.list, messages.history, messages.after, watch.subscribe,
    # then nothing: the health check's status times out.
    check(tmp_path, caplog, [{"hang_after": 5}, {}], starts=2, healthIntervalMs=100,
          probeTimeoutMs=300, reason="imsg rpc is not answering (status timed out after 0.3s)")


def test_full_disk_access_banner_is_one_clear_line_and_a_long_wait(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="imsg.gateway")
    fake = make_fake(tmp_path, {"fda": True, "exit_on": "initialize"})

    async def body(gateway: Gateway) -> None:
        await wait_for(lambda: bool(restarts(caplog)), what="a restart line")

    run(with_gateway(fake_config(tmp_path, fake, restartMaxMs=60_000), tmp_path / "state",
                     Recorder(), body))
    line = restarts(caplog)[0]
    assert "reports a permission problem: imsg needs Full Disk Access" in line
    assert "restarting in 6" in line  # the longest delay, not a respawn loop
    assert fake.starts == 1


def test_v0_child_without_initialize_is_probed_with_status(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="imsg.gateway")
    fake = make_fake(tmp_path, {"v1": False})
    fake.add(message(1, "old"))
    recorder = Recorder()

    async def body(gateway: Gateway) -> None:
        await recovers(fake, recorder, gateway, starts=1)
        info = gateway.accounts["default"].supervisor.info
        assert info is not None and info.probe_method == "status"
        assert not info.catch_up and not info.bridge("typing")

    run(with_gateway(fake_config(tmp_path, fake), tmp_path / "state", recorder, body))
    assert [r["method"] for r in fake.requests()][:2] == ["initialize", "status"]
    assert not fake.requests("messages.after")


def test_database_not_ready_restarts_with_the_reason(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    check(tmp_path, caplog, [{"db_ready": False}, {}], starts=2,
          reason="database unavailable: The configured Messages database does not exist")


def test_missing_executable_is_retried_with_backoff(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="imsg.gateway")
    fake = make_fake(tmp_path)
    config = fake_config(tmp_path, fake, cliPath=str(tmp_path / "no-such-imsg"))

    async def body(gateway: Gateway) -> None:
        await wait_for(lambda: len(restarts(caplog)) >= 3, what="three restart lines")

    run(with_gateway(config, tmp_path / "state", Recorder(), body))
    lines = restarts(caplog)
    assert "cannot start" in lines[0] and "No such file or directory" in lines[0]
    delays = [float(line.rsplit("restarting in ", 1)[1].rstrip("s")) for line in lines[:3]]
    assert delays[0] < delays[1] < delays[2]  # doubling


def test_one_failing_account_never_stops_another(tmp_path: Path) -> None:
    good = make_fake(tmp_path, name="good")
    good.add(message(1, "old"))
    bad = make_fake(tmp_path, {"hang": True}, name="bad")
    from imsg.gateway.config import load_config
    from tests.gateway.kit import FAST, write_config

    path = write_config(tmp_path / "two.toml", {
        "dmPolicy": "open", "allowFrom": ["*"], **FAST, "probeTimeoutMs": 200,
        "accounts": {"good": {"cliPath": good.cli, "dbPath": good.db},
                     "bad": {"cliPath": bad.cli, "dbPath": bad.db}}})
    recorder = Recorder()

    async def body(gateway: Gateway) -> None:
        await wait_for(lambda: gateway.accounts["good"].supervisor.subscribed.is_set())
        good.add(message(2, "for the good one"))
        await wait_for(lambda: recorder.texts == ["for the good one"])
        await wait_for(lambda: bad.starts >= 2, what="the bad account restarting")

    run(with_gateway(load_config(str(path)), tmp_path / "state", recorder, body))
    assert recorder.envelopes[0]["account"] == "good"
