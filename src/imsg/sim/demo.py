"""A small, realistic history for ``imsg sim init --demo`` and ``make demo``."""

from __future__ import annotations

import time

from imsg.sim.messages import SimAttachment, SimDB

ALICE = "+15555550123"
BOB = "bob@example.com"
CAROL = "+15555550188"


def fill_demo(sim: SimDB, now: float | None = None) -> dict[str, int]:
    """Three chats (iMessage, SMS, a named group) with replies, tapbacks, an edit, an unsend,
    a photo, a voice note, a link preview and group events. Returns the chat ids by name."""
    start = (now or time.time()) - 3600
    clock = iter(start + 60 * i for i in range(1000))

    alice = sim.chat([ALICE])
    hello = sim.receive(alice, ALICE, "Hey! Are we still on for dinner tonight? 🍝", at=next(clock))
    sim.send(alice, "Yes! 7pm at Luigi's?", at=next(clock))
    sim.react(alice, hello, "love", from_me=True, at=next(clock))
    late = sim.receive(alice, ALICE, "Perfect, see you there", at=next(clock))
    sim.react(alice, late, "like", from_me=True, at=next(clock))
    sim.receive(alice, ALICE, "Running 10 min late 🏃‍♀️", at=next(clock), thread_originator=late)
    typo = sim.send(alice, "No worries, I'll grab a tabel", at=next(clock))
    sim.edit(typo, "No worries, I'll grab a table", at=next(clock))
    oops = sim.send(alice, "wrong chat sorry", at=next(clock))
    sim.unsend(oops, at=next(clock))
    sim.receive(alice, ALICE, "", at=next(clock), attachments=[SimAttachment("IMG_0042.jpeg")])

    bob_sms = sim.chat([CAROL], service="SMS")
    sim.receive(bob_sms, CAROL, "Your package arrives tomorrow between 9-11am", at=next(clock))
    sim.send(bob_sms, "Thanks!", at=next(clock))

    trip = sim.chat([ALICE, BOB], name="Weekend Trip")
    sim.group_event(trip, "renamed", title="Weekend Trip", at=next(clock))
    sim.group_event(trip, "added", other=CAROL, at=next(clock))
    plan = sim.receive(trip, BOB, "Cabin is booked for Friday–Sunday", at=next(clock))
    sim.react(trip, plan, "emphasis", sender=ALICE, at=next(clock))
    sim.react(trip, plan, "custom", sender=BOB, emoji="🎉", at=next(clock))
    sim.url_preview(
        trip, "https://example.com/cabin", sender=BOB, title="Lakeside Cabin", at=next(clock)
    )
    sim.receive(
        trip,
        ALICE,
        "",
        at=next(clock),
        is_audio_message=1,
        attachments=[
            SimAttachment(
                "Audio Message.caf",
                mime_type="audio/x-caf",
                uti="com.apple.coreaudio-format",
                transcription="I'll bring the snacks",
            )
        ],
    )
    sim.send(trip, "Can't wait!\nPacking list soon.", at=next(clock), thread_originator=plan)
    return {"alice": alice, "sms": bob_sms, "trip": trip}
