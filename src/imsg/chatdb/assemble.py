"""Turning message rows into Messages: text, tapbacks, replies, edits, events, previews, polls,
read state, contact names, attachments.

Every extra is fetched in batches (attachments, tapbacks, reply parents, poll sources, contact
names): the number of queries does not grow with the number of rows, and the work per row is
bounded (a row claiming 10^8 parts is looked up as at most ``MAX_PARTS`` tapback targets).
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from imsg.chatdb.chats import UNJOINED, ChatRef
from imsg.chatdb.dates import APPLE_EPOCH_UNIX, iso_from_apple, iso_from_unix_ns
from imsg.chatdb.models import Attachment, Message, Poll, Reaction, URLPreview
from imsg.chatdb.previews import URL_BALLOON
from imsg.chatdb.queries import FIELD as _F

if TYPE_CHECKING:
    from imsg.chatdb.reader import ChatDB

T = TypeVar("T")
BATCH = 500
MAX_PARTS = 256  # tapback targets looked up per message: p:0/ … p:255/
_APPLE_EPOCH_ISO = iso_from_unix_ns(APPLE_EPOCH_UNIX * 1_000_000_000)


def chunks(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def small_int(value: Any) -> int:
    """An integer column as an int (0 for NULL, text or a float out of range)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(slots=True)
class _Extras:
    attachments: dict[int, list[Attachment]] = field(default_factory=dict)
    transcripts: dict[int, str] = field(default_factory=dict)
    reactions: dict[str, list[Reaction]] = field(default_factory=dict)
    parents: dict[str, tuple[str, str]] = field(default_factory=dict)
    polls: dict[int, Poll] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)


def build(
    db: ChatDB,
    rows: list[tuple[Any, ...]],
    refs: dict[int, ChatRef] | None = None,
    *,
    edit_history: bool = False,
    attachments: bool = True,
    convert: bool = False,
) -> list[Message]:
    """Messages for rows of ``MESSAGE_FIELDS`` + chat id (NULL/0: not joined yet).

    ``attachments=False`` leaves ``attachments`` empty (voice transcripts are still read);
    ``convert`` adds converted copies (``imsg.chatdb.convert``) to the attachments.
    """
    if not rows:
        return []
    chat_ids = {row[-1] for row in rows if row[-1]}
    refs = dict(refs or {})
    missing = chat_ids - refs.keys()
    if missing:
        refs.update(db.chat_refs(missing))
    extras = _Extras()
    _load_attachments(db, rows, extras, wanted=attachments)
    _load_reactions(db, rows, extras)
    _load_parents(db, rows, extras)
    _load_polls(db, rows, extras)
    handles = {row[_F["sender"]] or row[_F["destination_caller_id"]] or ""
               for row in rows if not row[_F["is_from_me"]]}
    handles |= {r.sender for found in extras.reactions.values() for r in found
                if not r.is_from_me}
    extras.names = db.contact_names(handles)
    if extras.names:
        extras.reactions = {guid: [_named(r, extras.names) for r in found]
                            for guid, found in extras.reactions.items()}
    messages = [_message(row, refs.get(row[-1] or 0, UNJOINED), extras, edit_history)
                for row in rows]
    if convert:
        from imsg.chatdb.convert import with_converted_attachments

        messages = [with_converted_attachments(m) if m.attachments else m for m in messages]
    return messages


def _named(reaction: Reaction, names: dict[str, str]) -> Reaction:
    """``reaction`` with its sender's contact name; never for my own tapbacks (in a direct chat
    Messages files them under the other party's handle)."""
    name = None if reaction.is_from_me else names.get(reaction.sender)
    if name is None:
        return reaction
    return Reaction(id=reaction.id, type=reaction.type, emoji=reaction.emoji,
                    sender=reaction.sender, sender_name=name, is_from_me=reaction.is_from_me,
                    created_at=reaction.created_at)


def _load_attachments(db: ChatDB, rows: list[tuple[Any, ...]], extras: _Extras, *,
                      wanted: bool) -> None:
    from imsg.chatdb import decode

    ids = [r[_F["rowid"]] for r in rows
           if r[_F["has_attachments"]] and (wanted or r[_F["is_audio"]])]
    for chunk in chunks(ids):
        sql = db.q.attachments(len(chunk))
        if sql is None:
            return
        for mid, fname, tname, uti, mime, size, sticker, info in db.rows(sql, chunk):
            transcript = decode.audio_transcription(info) if isinstance(info, bytes) else None
            if transcript and mid not in extras.transcripts:
                extras.transcripts[mid] = transcript
            if not wanted:
                continue
            fname = fname if isinstance(fname, str) else ""
            path = os.path.expanduser(fname) if fname else ""
            extras.attachments.setdefault(mid, []).append(
                Attachment(
                    filename=fname,
                    transfer_name=tname if isinstance(tname, str) else "",
                    uti=uti if isinstance(uti, str) else "",
                    mime_type=mime if isinstance(mime, str) else "",
                    total_bytes=small_int(size),
                    is_sticker=bool(sticker),
                    original_path=path,
                    missing=not path or not os.path.isfile(path),
                    transcription=transcript,
                )
            )


def _load_parents(db: ChatDB, rows: list[tuple[Any, ...]], extras: _Extras) -> None:
    """Texts and senders of what rows reply to: the thread originator, else a non-tapback
    associated message (never the ``reply_to_guid`` column: Messages sets it on ordinary
    messages too, to the previous message of the chat)."""
    from imsg.chatdb import decode

    parents = {r[_F["thread_originator_guid"]] for r in rows if r[_F["thread_originator_guid"]]}
    parents |= {
        decode.target_guid(r[_F["assoc_guid"]])
        for r in rows
        if r[_F["assoc_guid"]] and not decode.is_reaction_type(r[_F["assoc_type"]])
    }
    for chunk in chunks(sorted(p for p in parents if isinstance(p, str))):
        sql = db.q.parents(len(chunk))
        if sql is None:
            return
        for guid, text, body, sender, caller in db.rows(sql, chunk):
            extras.parents[guid] = (decode.row_text(text, body), sender or caller or "")


def _load_reactions(db: ChatDB, rows: list[tuple[Any, ...]], extras: _Extras) -> None:
    """Aggregate tapbacks per target in date order: one per sender; remove deletes."""
    from imsg.chatdb import decode

    variants: list[str] = []
    for r in rows:
        guid = r[_F["guid"]]
        if not guid or not isinstance(guid, str) or decode.is_reaction_type(r[_F["assoc_type"]]):
            continue
        # A tapback names its part (p:N/GUID): every part Messages counted and one more, in
        # case the count is off by one; four when it counted none (old rows).
        counted = small_int(r[_F["part_count"]])
        parts = min(counted + 1 if counted else 4, MAX_PARTS)
        variants.extend([guid, f"bp:{guid}", *(f"p:{i}/{guid}" for i in range(parts))])
    state: dict[str, dict[tuple[bool, str], Reaction]] = {}
    for chunk in chunks(variants, 900):
        sql = db.q.reactions(len(chunk))
        if sql is None:
            return
        for rid, assoc, kind, emoji_col, text, body, handle, caller, from_me, date in db.rows(
            sql, chunk
        ):
            tap = decode.tapback(kind, assoc, emoji_col, decode.row_text(text, body))
            if tap is None:
                continue
            sender = handle or caller or ""
            key = (bool(from_me), "" if from_me else sender)
            per_target = state.setdefault(tap.target_guid, {})
            emoji = tap.emoji or ""
            if tap.is_add:
                per_target[key] = Reaction(
                    id=rid,
                    type=tap.kind,
                    emoji=emoji,
                    sender=sender,
                    is_from_me=bool(from_me),
                    created_at=iso_from_apple(date) or "",
                )
            else:
                current = per_target.get(key)
                if (
                    current
                    and current.type == tap.kind
                    and (tap.kind != "custom" or not emoji or current.emoji == emoji)
                ):
                    del per_target[key]
    extras.reactions = {guid: list(per.values()) for guid, per in state.items() if per}


def _load_polls(db: ChatDB, rows: list[tuple[Any, ...]], extras: _Extras) -> None:
    """Decode poll rows; name the options votes picked (from the poll and its "Add Choice"
    rows); give an untitled poll the question of the caption row that answers it."""
    from imsg.chatdb import polls

    for r in rows:
        if not polls.is_candidate(r[_F["balloon"]], r[_F["assoc_type"]]):
            continue
        poll = polls.decode_poll(
            balloon=r[_F["balloon"]], assoc_type=r[_F["assoc_type"]],
            assoc_guid=r[_F["assoc_guid"]], guid=r[_F["guid"]] or "",
            sender=r[_F["sender"]] or r[_F["destination_caller_id"]] or "",
            payload=r[_F["payload"]], summary=r[_F["summary"]],
        )
        if poll is not None:
            extras.polls[r[_F["rowid"]]] = poll
    if not extras.polls:
        return
    voted = sorted({p.poll_guid for p in extras.polls.values() if p.kind == "vote" and p.poll_guid})
    texts = _option_texts(db, voted)
    untitled = [(r[-1], r[_F["rowid"]], extras.polls[r[_F["rowid"]]].poll_guid or "")
                for r in rows
                if r[_F["rowid"]] in extras.polls and r[-1]
                and extras.polls[r[_F["rowid"]]].kind == "created"
                and not extras.polls[r[_F["rowid"]]].question]
    questions = _captions(db, untitled)
    for rowid, poll in list(extras.polls.items()):
        if poll.kind == "vote" and poll.poll_guid in texts:
            extras.polls[rowid] = polls.with_option_texts(poll, texts[poll.poll_guid])
        elif poll.kind == "created" and not poll.question and poll.poll_guid in questions:
            extras.polls[rowid] = polls.with_question(poll, questions[poll.poll_guid])


def _option_texts(db: ChatDB, poll_guids: list[str]) -> dict[str, dict[str, str]]:
    """poll guid → option id → label, from the poll row and its "Add Choice" rows."""
    from imsg.chatdb import decode, polls

    found: dict[str, dict[str, str]] = {}
    for chunk in chunks(poll_guids, 200):
        guids = list(chunk)
        targets = [form for g in guids for form in (g, f"p:0/{g}", f"bp:{g}")]
        sql = db.q.poll_sources(len(guids), len(targets))
        if sql is None:
            return found
        params = guids + targets if db.q.has_tapbacks else guids
        for guid, assoc, assoc_type, balloon, payload, summary, sender, _ in db.rows(sql, params):
            poll = polls.decode_poll(balloon=balloon, assoc_type=assoc_type, assoc_guid=assoc,
                                     guid=guid or "", sender=sender or "", payload=payload,
                                     summary=summary)
            target = decode.target_guid(assoc) if assoc_type == polls.UPDATE_TYPE else guid
            if poll is not None and target:
                labels = found.setdefault(target, {})
                for option in poll.options:
                    labels.setdefault(option.id, option.text)
    return found


def _captions(db: ChatDB, polls_found: list[tuple[int, int, str]]) -> dict[str, str]:
    """poll guid → the text of the earliest plain row of its chat answering it (within the
    next 20 rows)."""
    from imsg.chatdb import decode

    questions: dict[str, str] = {}
    for chunk in chunks(polls_found, 300):
        sql = db.q.poll_captions(len(chunk))
        if sql is None:
            return questions
        for guid, text, body in db.rows(sql, [value for triple in chunk for value in triple]):
            caption = decode.row_text(text, body).strip()
            if caption and guid not in questions:
                questions[guid] = caption
    return questions


_MESSAGE_NAMES = (
    "assoc_emoji",
    "assoc_guid",
    "assoc_type",
    "balloon",
    "body",
    "date",
    "date_edited",
    "date_read",
    "date_retracted",
    "destination_caller_id",
    "group_action",
    "group_title",
    "guid",
    "is_audio",
    "is_from_me",
    "is_read",
    "item_type",
    "other_handle",
    "payload",
    "reply_to_guid",
    "rowid",
    "sender",
    "service",
    "summary",
    "text",
    "thread_originator_guid",
    "thread_originator_part",
)
# One C call picks every column _message reads (a row is MESSAGE_FIELDS + the chat id).
_MESSAGE_COLUMNS = operator.itemgetter(*(_F[name] for name in _MESSAGE_NAMES))


def _message(
    row: tuple[Any, ...], ref: ChatRef, extras: _Extras, edit_history: bool
) -> Message:
    from imsg.chatdb import decode

    (  # c_*: the row's raw column values, as stored
        c_assoc_emoji, c_assoc_guid, c_assoc_type, c_balloon, c_body, c_date, c_date_edited,
        c_date_read, c_date_retracted, c_destination_caller_id, c_group_action, c_group_title,
        c_guid, c_is_audio, c_is_from_me, c_is_read, c_item_type, c_other_handle, c_payload,
        c_reply_to_guid, c_rowid, c_sender, c_service, c_summary, c_text,
        c_thread_originator_guid, c_thread_originator_part
    ) = _MESSAGE_COLUMNS(row)
    rowid = c_rowid
    guid = c_guid or ""
    text = decode.row_text(c_text, c_body)
    sender = c_sender or c_destination_caller_id or ""
    is_from_me = bool(c_is_from_me)
    created_at = iso_from_apple(c_date) or _APPLE_EPOCH_ISO
    if c_is_audio and text.strip("\ufffc ") == "":
        text = extras.transcripts.get(rowid, text)
    fields: dict[str, Any] = {}
    tap = decode.tapback(
        c_assoc_type, c_assoc_guid, c_assoc_emoji, text
    )
    if tap is not None:
        fields.update(
            is_reaction=True, is_reaction_add=tap.is_add, reacted_to_guid=tap.target_guid
        )
        if tap.emoji:
            fields.update(reaction_type=tap.kind, reaction_emoji=tap.emoji)
    else:
        reply_to = decode.target_guid(c_reply_to_guid)
        if not reply_to and c_assoc_guid:
            reply_to = decode.target_guid(c_assoc_guid)
        if reply_to:
            fields["reply_to_guid"] = reply_to
        if c_thread_originator_part:
            fields["thread_originator_part"] = str(c_thread_originator_part)
    originator = c_thread_originator_guid if tap is None else None
    parent = extras.parents.get(originator or "")
    if parent is None and tap is None and c_assoc_guid:
        parent = extras.parents.get(decode.target_guid(c_assoc_guid))
    if parent:
        fields.update(reply_to_text=parent[0], reply_to_sender=parent[1])
    edited, retracted = c_date_edited, c_date_retracted
    if edited or retracted or c_summary:
        info = decode.summary_info(c_summary)
        unsent = bool(retracted) or (bool(info.retracted_parts) and not text.strip("\ufffc"))
        if unsent:
            text = ""
            fields["retracted_at"] = iso_from_apple(retracted or edited)
        elif edited:
            fields["edited_at"] = iso_from_apple(edited)
        if edit_history and info.history:
            fields["edit_history"] = info.history
    event = decode.group_event(
        small_int(c_item_type),
        small_int(c_group_action),
        c_other_handle,
        c_group_title,
    )
    if event is not None:
        # The sentence Messages shows is not something the person typed: ``text`` stays "".
        actor = "You" if is_from_me else sender
        fields["group_event"] = decode.with_description(event, actor)
        text = ""
    balloon = c_balloon
    if isinstance(balloon, str) and balloon:
        fields["balloon_bundle_id"] = balloon
        if balloon == URL_BALLOON:
            found = decode.url_preview(c_payload, text)
            fields["url_preview"] = URLPreview(
                id=rowid, guid=guid, balloon_bundle_id=balloon, created_at=created_at,
                url=found.url if found else "", title=found.title if found else None)
    if rowid in extras.polls:
        fields["poll"] = extras.polls[rowid]
    if not is_from_me:
        is_read = c_is_read
        if is_read is not None:
            fields["is_read"] = bool(is_read)
            if is_read and c_date_read:
                fields["date_read"] = iso_from_apple(c_date_read)
        if sender in extras.names:
            fields["sender_name"] = extras.names[sender]
    return Message(
        id=rowid,
        chat_id=ref.id,
        guid=guid,
        thread_originator_guid=originator or None,
        sender=sender,
        is_from_me=is_from_me,
        text=text,
        created_at=created_at,
        attachments=extras.attachments.get(rowid, []),
        reactions=extras.reactions.get(guid, []),
        destination_caller_id=c_destination_caller_id or None,
        chat_identifier=ref.identifier,
        chat_guid=ref.guid,
        chat_name=ref.display_name,
        participants=ref.participants,
        is_group=ref.is_group,
        service=c_service or None,
        **fields,
    )
