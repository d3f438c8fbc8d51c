"""``imsg stats`` / RPC ``messages.stats``: message counts by chat, sender, service and day.

Counted are *logical* messages: tapback rows are left out, and a link-preview row that belongs
to its text row (``imsg.chatdb.previews``) is not counted on its own. A message joined to
several chats counts once in the totals and once in each of its chats. Days are calendar days
in ``time_zone`` (an IANA name; default: this machine's zone). Everything is read in one read
transaction, so the numbers agree with each other even while Messages writes.

List orders: chats by count (descending), then chat id; senders by count, then handle;
services by count, then name; days ascending; media types by count, bytes, UTI, MIME type;
media chats by count, bytes, chat id. Senders are inbound messages only; an empty handle or
service reads ``unknown``, as does an empty UTI or MIME type.

Failure modes: an unknown chat id raises ChatNotFound (never a widening to every chat); a time
zone that is not an IANA name raises InvalidInput.
"""

from __future__ import annotations

import os
import zoneinfo
from collections import Counter
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from imsg.chatdb.dates import APPLE_EPOCH_UNIX
from imsg.chatdb.models import (
    MediaChat,
    MediaStats,
    MediaType,
    Stats,
    StatsChat,
    StatsDate,
    StatsSender,
    StatsService,
)
from imsg.chatdb.previews import belongs_to
from imsg.errors import InvalidInput

if TYPE_CHECKING:
    from imsg.chatdb.reader import ChatDB

_QUARTER_S = 900
_EPOCH = datetime.fromtimestamp(APPLE_EPOCH_UNIX, UTC)


def local_zone_name() -> str:
    """This machine's IANA zone: ``$TZ`` if it names one, else where ``/etc/localtime``
    points (``…/zoneinfo/Europe/Paris``), else ``UTC``."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        if name and _zone(name) is not None:
            return name
    return "UTC"


def _zone(name: str) -> tzinfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


def compute_stats(db: ChatDB, *, chat_id: int | None = None, time_zone: str | None = None,
                  include_media: bool = False) -> Stats:
    zone_name = time_zone.strip() if time_zone else local_zone_name()
    zone = _zone(zone_name)
    if zone is None:
        raise InvalidInput(f"Invalid time zone: {time_zone} (use an IANA name such as"
                           " Europe/Paris or America/New_York)")
    chat = chat_id is not None
    params: tuple[Any, ...] = (chat_id,) if chat else ()
    with db.snapshot():
        if chat_id is not None:
            db.chat_ref(chat_id)
        groups = db.rows(db.q.stats_messages(chat=chat), params)
        per_chat = Counter({cid: n for cid, n in db.rows(db.q.stats_chats(chat=chat), params)})
        folded = _folded(db, chat, params)
        facts = _facts(db, sorted({rowid for _, rowid in folded}))
        media = _media(db, chat, params) if include_media else None
        refs = db.chat_refs(per_chat)
    for chat_of, _ in folded:
        per_chat[chat_of] -= 1
    messages: Counter[tuple[int, str, str, int | None]] = Counter()
    for from_me, handle, service, bucket, count in groups:
        messages[(1 if from_me else 0, handle, service, bucket)] += count
    for fact in facts.values():
        messages[fact] -= 1
    return Stats(
        total_messages=sum(messages.values()),
        sent_messages=sum(n for key, n in messages.items() if key[0]),
        received_messages=sum(n for key, n in messages.items() if not key[0]),
        time_zone=zone_name,
        chats=sorted(
            (StatsChat(chat_id=cid, identifier=refs[cid].identifier if cid in refs else "",
                       name=refs[cid].name if cid in refs else "",
                       service=refs[cid].service if cid in refs else "", message_count=n)
             for cid, n in per_chat.items() if n > 0),
            key=lambda c: (-c.message_count, c.chat_id)),
        senders=_ranked(_sum(messages, lambda key: None if key[0] else key[1] or "unknown"),
                        StatsSender, "handle"),
        services=_ranked(_sum(messages, lambda key: key[2] or "unknown"), StatsService,
                         "service"),
        dates=_days(messages, zone),
        media=_media_stats(media, refs) if media is not None else None,
    )


def _sum(messages: Counter[Any], key: Any) -> Counter[str]:
    totals: Counter[str] = Counter()
    for group, count in messages.items():
        name = key(group)
        if name is not None and count:
            totals[name] += count
    return totals


def _ranked(counts: Counter[str], model: Any, field: str) -> list[Any]:
    ranked = sorted(((name, n) for name, n in counts.items() if n > 0),
                    key=lambda item: (-item[1], item[0]))
    return [model(**{field: name, "message_count": n}) for name, n in ranked]


def _days(messages: Counter[tuple[int, str, str, int | None]], zone: tzinfo) -> list[StatsDate]:
    per_bucket: Counter[int] = Counter()
    for (_, _, _, bucket), count in messages.items():
        if bucket is not None and count:
            per_bucket[bucket] += count
    per_day: Counter[date] = Counter()
    for bucket, count in per_bucket.items():
        try:
            moment = _EPOCH + timedelta(seconds=bucket * _QUARTER_S)
            per_day[moment.astimezone(zone).date()] += count
        except (OverflowError, ValueError):
            continue  # a date outside what a calendar can show
    return [StatsDate(date=day.isoformat(), message_count=n)
            for day, n in sorted(per_day.items()) if n > 0]


def _folded(db: ChatDB, chat: bool, params: tuple[Any, ...]) -> list[tuple[int, int]]:
    """(chat id, ROWID) of preview rows that belong to their text row."""
    sql = db.q.stats_previews(chat=chat)
    previews = [(c, r) for c, r in db.rows(sql, params)] if sql else []
    folded: list[tuple[int, int]] = []
    for start in range(0, len(previews), 450):
        chunk = previews[start:start + 450]
        partners = db.preceding_text_rows(chunk)
        dated = db.dated_in_chats([*chunk, *((c, t) for (c, _), t in partners.items())])
        for pair, text_id in partners.items():
            preview, text = dated.get(pair), dated.get((pair[0], text_id))
            if preview and text and belongs_to(preview[0], preview[1], text[0], text[1]):
                folded.append(pair)
    return folded


def _facts(db: ChatDB, rowids: list[int]) -> dict[int, tuple[int, str, str, int | None]]:
    facts: dict[int, tuple[int, str, str, int | None]] = {}
    for start in range(0, len(rowids), 900):
        chunk = rowids[start:start + 900]
        for rowid, from_me, handle, service, bucket in db.rows(db.q.stats_row_facts(len(chunk)),
                                                               chunk):
            facts[rowid] = (1 if from_me else 0, handle, service, bucket)
    return facts


def _media(db: ChatDB, chat: bool, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    sql = db.q.stats_media(chat=chat)
    return db.rows(sql, params) if sql else []


def _media_stats(rows: list[tuple[Any, ...]], refs: dict[int, Any]) -> MediaStats:
    seen: dict[int, tuple[str, str, int]] = {}
    per_chat: dict[int, dict[int, int]] = {}
    for attachment, uti, mime, size, chat_of in rows:
        size = size if isinstance(size, int) and size > 0 else 0
        seen[attachment] = (uti or "unknown", mime or "unknown", size)
        per_chat.setdefault(chat_of, {})[attachment] = size
    types: dict[tuple[str, str], list[int]] = {}
    for uti, mime, size in seen.values():
        entry = types.setdefault((uti, mime), [0, 0])
        entry[0] += 1
        entry[1] += size
    return MediaStats(
        total_attachments=len(seen),
        total_bytes=sum(size for _, _, size in seen.values()),
        types=[MediaType(uti=uti, mime_type=mime, attachment_count=n, total_bytes=b)
               for (uti, mime), (n, b) in sorted(types.items(),
                                                 key=lambda t: (-t[1][0], -t[1][1], t[0]))],
        chats=sorted(
            (MediaChat(chat_id=cid, identifier=refs[cid].identifier if cid in refs else "",
                       name=refs[cid].name if cid in refs else "",
                       attachment_count=len(found), total_bytes=sum(found.values()))
             for cid, found in per_chat.items()),
            key=lambda c: (-c.attachment_count, -c.total_bytes, c.chat_id)),
    )
