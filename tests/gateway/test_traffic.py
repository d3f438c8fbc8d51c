"""The simulator's gateway traffic: echo twins, late is_from_me corrections, iCloud backlogs,
SMS conversations, as library functions and ``imsg sim`` commands."""

from __future__ import annotations

import time
from typing import Any

import pytest
from click.testing import CliRunner

from imsg.chatdb.reader import ChatDB
from imsg.cli import main
from imsg.gateway.inbound import parse_time
from imsg.sim.messages import ME, SimDB
from imsg.sim.traffic import (
    correct_from_me,
    echo_twin,
    icloud_backlog,
    sms_conversation,
    unflagged_outgoing,
)

ALICE = "+15555550123"


def newest(sim: SimDB, chat: int, count: int = 1) -> list[Any]:
    with ChatDB(sim.path) as reader:
        return list(reader.history(chat, limit=count))


def test_echo_twin_is_incoming_with_another_guid(sim: SimDB) -> None:
    chat = sim.chat([ALICE])
    ours = sim.send(chat, "on my way")
    twin = echo_twin(sim, ours)
    message = newest(sim, chat)[0]
    assert message.id == twin and not message.is_from_me
    assert message.text == "on my way" and message.sender == ALICE
    assert message.guid != sim.guid_of(ours)


def test_echo_twin_in_a_group_comes_from_our_own_address(sim: SimDB) -> None:
    group = sim.chat([ALICE, "bob@example.com"], name="Trip")
    twin = echo_twin(sim, sim.send(group, "booked"))
    assert newest(sim, group)[0].sender == ME
    assert twin > 0
    with pytest.raises(KeyError):
        echo_twin(sim, 9999)


def test_late_correction(sim: SimDB) -> None:
    chat = sim.chat([ALICE])
    rowid = unflagged_outgoing(sim, chat, "sent from the bot")
    assert not newest(sim, chat)[0].is_from_me
    correct_from_me(sim, rowid)
    assert newest(sim, chat)[0].is_from_me


def test_icloud_backlog_is_back_dated_with_high_rowids(sim: SimDB) -> None:
    chat = sim.chat([ALICE])
    fresh = sim.receive(chat, ALICE, "new")
    rows = icloud_backlog(sim, chat, 5, age_s=86400, sender=ALICE)
    assert min(rows) > fresh
    messages = newest(sim, chat, 10)
    assert messages[0].id == fresh  # newest by date is still the fresh one
    dates = [parse_time(m.created_at) for m in messages if m.id in rows]
    assert len(dates) == 5 and all(d is not None and d < time.time() - 23 * 3600
                                   for d in dates)


def test_sms_conversation(sim: SimDB) -> None:
    chat, rows = sms_conversation(sim, "+15555550199", ["one", "two"])
    with ChatDB(sim.path) as reader:
        listed = next(c for c in reader.chats(limit=10) if c.id == chat)
    assert listed.service == "SMS" and len(rows) == 2


def test_sim_commands(sim: SimDB) -> None:
    chat = sim.chat([ALICE])
    ours = sim.send(chat, "hello")
    runner = CliRunner()
    twin = runner.invoke(main, ["sim", "echo-twin", sim.path, "--rowid", str(ours)])
    assert twin.exit_code == 0 and int(twin.output) > ours
    late = runner.invoke(main, ["sim", "late-from-me", sim.path, "--chat-id", str(chat),
                                "--text", "bot text", "--correct-after", "0"])
    assert late.exit_code == 0
    backlog = runner.invoke(main, ["sim", "backlog", sim.path, "--chat-id", str(chat),
                                   "--count", "3", "--age-hours", "5"])
    assert len(backlog.output.split()) == 3
    sms = runner.invoke(main, ["sim", "sms", sim.path, "--from", "+15555550199", "--text", "a"])
    assert sms.exit_code == 0 and int(sms.output) > chat
    missing = runner.invoke(main, ["sim", "late-from-me", sim.path, "--chat-id", "999",
                                   "--text", "x"])
    assert missing.exit_code == 1 and "no chat 999" in missing.output
