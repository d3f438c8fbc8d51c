"""``send_status``: the send state of one message from chat.db alone, in the Swift shape."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from imsg.chatdb.reader import ChatDB
from imsg.errors import InvalidInput
from imsg.send.status import send_status
from imsg.sim.messages import SimDB

from .conftest import ALICE

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
FIELDS = ["is_sent", "is_delivered", "is_finished", "error", "date_delivered", "date_read",
          "is_delayed", "is_prepared", "is_pending_satellite_send", "was_downgraded"]


@pytest.fixture
def chat(sim: SimDB) -> int:
    return sim.chat([ALICE])


@pytest.fixture
def db(sim: SimDB) -> Iterator[ChatDB]:
    with ChatDB(sim.path) as reader:
        yield reader


def sent(sim: SimDB, chat: int, **columns: object) -> str:
    defaults: dict[str, object] = {"is_delivered": 0, "date_delivered": 0, "is_sent": 0,
                                   "is_finished": 0, "error": 0}
    return sim.guid_of(sim.send(chat, "hi", **{**defaults, **columns}))


@pytest.mark.parametrize(("columns", "state"), [
    ({"error": 22, "is_delivered": 1, "is_sent": 1}, "failed"),
    ({"is_delivered": 1}, "delivered"),
    ({"date_delivered": 700_000_000_000_000_000}, "delivered"),
    ({"is_sent": 1}, "sent"),
    ({}, "pending"),
])
def test_send_states(sim: SimDB, db: ChatDB, chat: int, columns: dict[str, object],
                     state: str) -> None:
    assert send_status(db, sent(sim, chat, **columns))["send_state"] == state


def test_the_whole_shape_of_a_delivered_message(sim: SimDB, db: ChatDB, chat: int) -> None:
    guid = sent(sim, chat, is_sent=1, is_delivered=1, is_finished=1,
                date_delivered=700_000_000_000_000_000, date_read=0)
    result = send_status(db, f"  {guid.lower()} ")
    assert list(result) == ["ok", "guid", "send_state", "service", "checked_at", "delivered_at",
                            "status_fields"]
    assert (result["ok"], result["guid"], result["send_state"], result["service"]) == (
        True, guid, "delivered", "iMessage")
    assert ISO.fullmatch(result["checked_at"])
    assert result["delivered_at"] == "2023-03-08T20:26:40.000Z"  # 2001 + 7e8 s
    fields = result["status_fields"]
    assert list(fields) == FIELDS
    assert fields["date_delivered"] == result["delivered_at"] and fields["date_read"] is None
    assert (fields["is_sent"], fields["is_delivered"], fields["is_finished"], fields["error"]) == (
        True, True, True, 0)
    assert all(isinstance(fields[name], bool) for name in FIELDS
               if name.startswith(("is_", "was_")))


def test_an_unknown_guid_is_pending_without_fields(db: ChatDB) -> None:
    result = send_status(db, "8DF0-NOT-THERE")
    assert (result["guid"], result["send_state"], result["service"],
            result["status_fields"]) == ("8DF0-NOT-THERE", "pending", None, None)
    assert "delivered_at" not in result


@pytest.mark.parametrize("guid", ["", "   ", None, 42])
def test_a_guid_is_required(db: ChatDB, guid: object) -> None:
    with pytest.raises(InvalidInput, match="guid is required"):
        send_status(db, guid)  # type: ignore[arg-type]


def test_damaged_values_read_as_unknown(sim: SimDB, db: ChatDB, chat: int) -> None:
    guid = sent(sim, chat, is_sent="yes", error="bad", date_delivered=1e30,
                date_read="yesterday")
    result = send_status(db, guid)
    assert result["send_state"] == "pending"
    assert result["status_fields"]["date_delivered"] is None
    assert result["status_fields"]["date_read"] is None


@pytest.mark.parametrize("schema", ["ventura"])
def test_columns_a_database_lacks_read_as_zero(sim: SimDB, db: ChatDB, chat: int) -> None:
    assert not db.schema.has("message", "is_pending_satellite_send")  # macOS 26 added it
    fields = send_status(db, sent(sim, chat, is_sent=1))["status_fields"]
    assert (fields["is_pending_satellite_send"], fields["is_sent"]) == (False, True)
