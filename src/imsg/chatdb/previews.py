"""Link previews: when a URL-balloon row belongs to the text row before it, and folding them.

Messages often stores one "text with a link" as two rows: the text row, then a preview row
(``balloon_bundle_id`` = ``com.apple.messages.URLBalloonProvider``) written a moment later.
imsg shows them as one message: the text row, carrying the preview as ``url_preview`` (which
names the preview row: ``id``, ``guid``, ``balloon_bundle_id``, ``created_at``, plus ``url`` and
``title``). A preview row with no text row it belongs to is shown as itself.

``belongs_to`` is the one rule, used by history, search, unread counts and the watcher, so that
none of them can disagree. Everything here is pure: the caller finds the candidate text row
(the closest earlier row of the same chat that is neither a tapback nor a preview) and passes
Messages with their Unix-nanosecond dates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import msgspec

from imsg.chatdb.models import Message

URL_BALLOON = "com.apple.messages.URLBalloonProvider"
FOLD_WINDOW_NS = 5_000_000_000
_LINK_PREFIXES = ("http://", "https://", "www.")

Dated = tuple[Message, int | None]


def is_url_preview(message: Message) -> bool:
    """A link-preview row (never a tapback)."""
    return message.balloon_bundle_id == URL_BALLOON and not message.is_reaction


def preview_link(preview: Message) -> str | None:
    """The link a preview row stands for, trimmed and casefolded, when its text is one."""
    link = preview.text.strip().casefold()
    return link if link.startswith(_LINK_PREFIXES) else None


def belongs_to(preview: Message, preview_date_ns: int | None,
               text: Message, text_date_ns: int | None) -> bool:
    """True when ``preview`` is the link preview of ``text``. All of these must hold:

    1. ``text`` is a plain row: no balloon, not a tapback, not a group event, not a poll;
    2. same chat; 3. same direction (``is_from_me``); 4. same sender (the handle, so the
       handle rule is implied);
    5. ``preview`` is the later row (higher ROWID), 0 to 5 s after ``text``;
    6. ``preview`` points at ``text`` (its ``reply_to_guid`` is ``text``'s guid), or its text
       is a link (``http://``, ``https://``, ``www.``) that ``text`` contains, compared
       case-insensitively, with or without a trailing ``/``.
    """
    if (text.balloon_bundle_id or text.is_reaction or text.group_event is not None
            or text.poll is not None or not is_url_preview(preview)):
        return False
    if (preview.chat_id != text.chat_id or preview.is_from_me != text.is_from_me
            or preview.sender != text.sender or preview.id <= text.id):
        return False
    if preview_date_ns is None or text_date_ns is None:
        return False
    if not 0 <= preview_date_ns - text_date_ns <= FOLD_WINDOW_NS:
        return False
    if preview.reply_to_guid and text.guid and preview.reply_to_guid == text.guid:
        return True
    link = preview_link(preview)
    if link is None:
        return False
    haystack = text.text.casefold()
    return link in haystack or link.rstrip("/") in haystack


def with_preview(text: Message, preview: Message) -> Message:
    """``text`` carrying ``preview``'s ``url_preview`` (the preview row's keys and link)."""
    return msgspec.structs.replace(text, url_preview=preview.url_preview)


def _key(item: Dated) -> tuple[int, int]:
    message, date_ns = item
    return (date_ns if date_ns is not None else -(2**63), message.id)


def fold_page(
    items: Sequence[Dated],
    partners: Mapping[int, Dated | None],
    admit: Callable[[Message, Dated], bool],
    *,
    exhausted: bool,
) -> tuple[list[Message], int]:
    """Fold the preview rows of a newest-first page into their text rows.

    ``items`` are the rows read so far, newest first (by date, then ROWID); ``partners`` maps
    each preview row's id to its candidate text row (or None). A preview is folded when it
    ``belongs_to`` its candidate and the candidate is in ``items`` or ``admit(preview,
    candidate)`` allows showing it anyway (the candidate then takes its own place in the
    order). Several previews of one text row fold into it; the lowest ROWID names it.

    Returns the logical messages and how many of them are final: a text row placed below the
    last row read might still have unread rows above it, unless the page is ``exhausted``.
    """
    present = {message.id for message, _ in items}
    chosen: dict[int, Message] = {}  # text row id → its preview (lowest ROWID wins)
    injected: dict[int, Dated] = {}
    folded: set[int] = set()
    for message, date_ns in items:
        partner = partners.get(message.id) if is_url_preview(message) else None
        if partner is None:
            continue
        text, text_date = partner
        if not belongs_to(message, date_ns, text, text_date):
            continue
        if text.id not in present:
            if not admit(message, partner):
                continue
            injected.setdefault(text.id, partner)
        folded.add(message.id)
        if text.id not in chosen or message.id < chosen[text.id].id:
            chosen[text.id] = message
    merged = [item for item in items if item[0].id not in folded]
    for partner in injected.values():  # into place, keeping the page's own order intact
        key = _key(partner)
        at = next((i for i, item in enumerate(merged) if _key(item) < key), len(merged))
        merged.insert(at, partner)
    boundary = _key(items[-1]) if items else None
    logical: list[Message] = []
    final = len(merged)
    for index, item in enumerate(merged):
        message = item[0]
        if (final == len(merged) and message.id in injected and not exhausted
                and boundary is not None and _key(item) < boundary):
            final = index
        preview = chosen.get(message.id)
        logical.append(with_preview(message, preview) if preview is not None else message)
    return logical, final
