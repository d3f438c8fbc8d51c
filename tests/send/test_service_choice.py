"""``service: auto`` decides from working history, as the Swift tool does: a number whose
iMessages all failed (it moved to another phone) is sent SMS, not iMessage again."""

from __future__ import annotations

from imsg.chatdb.reader import ChatDB
from imsg.send.service import choose_service
from imsg.sim.messages import SimDB

NUMBER = "+15555550199"


def test_failed_imessages_do_not_count(sim: SimDB) -> None:
    sms = sim.chat([NUMBER], service="SMS")
    sim.receive(sms, NUMBER, "texting you from my new phone")
    sim.message(sms, "did this arrive?", from_me=True, error=22, service="iMessage",
                handle_id=sim.handle(NUMBER, "iMessage"))
    with ChatDB(sim.path) as db:
        assert choose_service(db, NUMBER, "auto", text_only=True).service == "sms"


def test_working_imessage_history_wins(sim: SimDB) -> None:
    sms = sim.chat([NUMBER], service="SMS")
    sim.receive(sms, NUMBER, "once by SMS")
    sim.message(sms, "and this one arrived", from_me=True, service="iMessage",
                handle_id=sim.handle(NUMBER, "iMessage"))
    with ChatDB(sim.path) as db:
        assert choose_service(db, NUMBER, "auto", text_only=True).service == "imessage"
