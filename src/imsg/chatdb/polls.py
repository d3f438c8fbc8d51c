"""Native Messages polls (macOS 26 / iOS 26): poll rows, votes and added choices, decoded.

What is publicly known of the format, and all this module relies on:

- a poll is a balloon row of the Polls extension: ``balloon_bundle_id`` is
  ``com.apple.messages.Polls`` or ends with ``:com.apple.messages.Polls``;
- a vote is a row with ``associated_message_type`` 4000 whose ``associated_message_guid`` is
  the poll's guid (possibly ``p:N/``-prefixed); a choice added later ("Add Choice") is a row
  with ``associated_message_type`` 2 pointing at the poll the same way;
- ``payload_data`` is an NSKeyedArchiver plist of the balloon's template layout whose URL
  carries base64-encoded JSON: the options (``orderedPollOptions``: ``optionIdentifier``,
  ``text``, ``creatorHandle``) of a poll, or the votes (``votes``: ``voteOptionIdentifier``,
  ``participantHandle``) of a vote row.

The JSON is found wherever it sits (a ``data:`` URL body or a query value, base64 or plain),
within fixed bounds on depth, node count and size. Anything else decodes to ``kind: unknown``
with ``metadata`` saying what was seen. Every function is total: malformed input never raises.
"""

from __future__ import annotations

import base64
import binascii
import json
import plistlib
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from imsg.chatdb.decode import target_guid
from imsg.chatdb.models import Poll, PollOption, PollVote

POLLS_BUNDLE = "com.apple.messages.Polls"
VOTE_TYPE = 4000
UPDATE_TYPE = 2
_MAX_DEPTH = 24
_MAX_NODES = 20_000
_MAX_BYTES = 1 << 20
_BASE64 = re.compile(r"[A-Za-z0-9+/_=-]{8,}")
_QUESTION_KEYS = ("question", "title", "pollQuestion")
_OPTION_LISTS = ("orderedPollOptions", "pollOptions", "options")
_VOTE_LISTS = ("votes", "pollVotes")
_CREATOR_KEYS = ("creatorHandle", "creator")
_POLL_GUID_KEYS = ("pollGUID", "pollGuid", "pollIdentifier")


def is_polls_bundle(balloon: str | None) -> bool:
    return bool(balloon) and (balloon == POLLS_BUNDLE
                              or str(balloon).rsplit(":", 1)[-1] == POLLS_BUNDLE)


def is_candidate(balloon: str | None, assoc_type: int | None) -> bool:
    """Rows worth decoding: Polls balloons and vote rows."""
    return is_polls_bundle(balloon) or assoc_type == VOTE_TYPE


@dataclass(slots=True)
class _Facts:
    question: str | None = None
    options: list[PollOption] = field(default_factory=list)
    votes: list[PollVote] = field(default_factory=list)
    empty_votes: bool = False
    creator: str | None = None
    poll_guid: str | None = None
    participants: list[str] = field(default_factory=list)
    url_scheme: str | None = None
    url_host: str | None = None
    query_keys: set[str] = field(default_factory=set)
    nodes: int = 0


def decode_poll(
    *,
    balloon: str | None,
    assoc_type: int | None,
    assoc_guid: str | None,
    guid: str,
    sender: str,
    payload: bytes | None,
    summary: bytes | None,
) -> Poll | None:
    """The poll a row carries, or None when the row is not a poll candidate."""
    if not is_candidate(balloon, assoc_type):
        return None
    facts = _Facts()
    for blob in (payload, summary):
        if isinstance(blob, bytes) and 0 < len(blob) <= _MAX_BYTES:
            _scan_blob(blob, facts, 0)
    original = target_guid(assoc_guid) or None
    votes = [v if v.participant else _with_participant(v, sender) for v in facts.votes]
    people = [*facts.participants, *(v.participant for v in votes)]
    metadata = _metadata(balloon, assoc_type, payload, summary, facts)
    if assoc_type == VOTE_TYPE or votes:
        kind = "vote" if votes or facts.empty_votes else "unknown"
        return _poll(kind, facts.poll_guid or original or guid, facts, votes=votes,
                     original=original, creator=facts.creator, people=people, meta=metadata)
    if facts.question or facts.options:
        creator = facts.creator or sender or None
        return _poll("created", facts.poll_guid or guid, facts, votes=[],
                     original=original if assoc_type == UPDATE_TYPE else None,
                     creator=creator, people=[*people, creator or ""], meta=metadata)
    return _poll("unknown", facts.poll_guid or original or guid, facts, votes=[],
                 original=original, creator=facts.creator, people=people, meta=metadata)


def with_option_texts(poll: Poll, texts: dict[str, str]) -> Poll:
    """``poll`` with every vote's ``option_text`` filled from ``texts`` (option id → label)."""
    def named(vote: PollVote) -> PollVote:
        text = vote.option_text or texts.get(vote.option_id)
        return vote if text == vote.option_text else _replace_vote(vote, option_text=text)

    votes = [named(v) for v in poll.votes]
    return Poll(kind=poll.kind, event=poll.event, poll_guid=poll.poll_guid,
                question=poll.question, options=poll.options, vote=votes[0] if votes else None,
                votes=votes, original_guid=poll.original_guid, creator=poll.creator,
                participants=poll.participants, metadata=poll.metadata)


def with_question(poll: Poll, question: str) -> Poll:
    return Poll(kind=poll.kind, event=poll.event, poll_guid=poll.poll_guid, question=question,
                options=poll.options, vote=poll.vote, votes=poll.votes,
                original_guid=poll.original_guid, creator=poll.creator,
                participants=poll.participants, metadata=poll.metadata)


def display_text(poll: Poll) -> str:
    """One line for humans: ``poll: Dinner? [Pizza, Sushi]`` or ``voted: Pizza``."""
    if poll.kind == "created":
        options = ", ".join(option.text for option in poll.options)
        return f"poll: {poll.question or '(no question)'} [{options}]"
    if poll.kind == "vote":
        picked = [v.option_text or v.option_id for v in poll.votes]
        return f"voted: {', '.join(picked)}" if picked else "removed their vote"
    return "poll update"


# --- building ---------------------------------------------------------------------------------

_EVENTS = {"created": "imessage.poll.created", "vote": "imessage.poll.voted"}


def _poll(kind: str, poll_guid: str, facts: _Facts, *, votes: list[PollVote],
          original: str | None, creator: str | None, people: list[str],
          meta: dict[str, Any]) -> Poll:
    return Poll(
        kind=kind,
        event=_EVENTS.get(kind, "imessage.poll.unknown"),
        poll_guid=poll_guid or None,
        question=facts.question,
        options=facts.options,
        vote=votes[0] if votes else None,
        votes=votes,
        original_guid=original,
        creator=creator,
        participants=sorted({p.strip() for p in people if p and p.strip()}),
        metadata=meta,
    )


def _metadata(balloon: str | None, assoc_type: int | None, payload: bytes | None,
              summary: bytes | None, facts: _Facts) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "bundle_id": balloon or None,
        "associated_message_type": assoc_type,
        "payload_bytes": len(payload) if isinstance(payload, bytes) and payload else None,
        "summary_bytes": len(summary) if isinstance(summary, bytes) and summary else None,
        "url_scheme": facts.url_scheme,
        "url_host": facts.url_host,
        "query_keys": sorted(facts.query_keys) or None,
    }
    return {key: value for key, value in meta.items() if value is not None}


def _with_participant(vote: PollVote, participant: str) -> PollVote:
    return _replace_vote(vote, participant=participant)


def _replace_vote(vote: PollVote, **changes: Any) -> PollVote:
    values = {"option_id": vote.option_id, "option_text": vote.option_text,
              "participant": vote.participant, "event_type": vote.event_type,
              "server_time": vote.server_time, **changes}
    return PollVote(**values)


# --- scanning ---------------------------------------------------------------------------------
# ``layer`` counts decodings (plist → URL → base64 → JSON …), bounded by _MAX_LAYERS; ``depth``
# is the nesting inside one decoded value, bounded by _MAX_DEPTH; ``facts.nodes`` bounds both.

_MAX_LAYERS = 6


def _scan_blob(blob: bytes, facts: _Facts, layer: int) -> None:
    """A plist (keyed archive or plain), JSON, or text that may hold URLs/base64."""
    if layer > _MAX_LAYERS:
        return
    try:
        value: Any = plistlib.loads(blob)
    except Exception:
        value = None
    if value is not None:
        _walk(_unarchive(value), facts, layer, 0)
        return
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        return
    _scan_text(text, facts, layer)


def _scan_text(text: str, facts: _Facts, layer: int) -> None:
    stripped = text.strip()
    if not stripped or len(stripped) > _MAX_BYTES or layer > _MAX_LAYERS:
        return
    if stripped[0] in "{[":
        try:
            _walk(json.loads(stripped), facts, layer + 1, 0)
            return
        except ValueError:
            pass
    if ":" in stripped and _scan_url(stripped, facts, layer):
        return
    if _BASE64.fullmatch(stripped):
        data = _from_base64(stripped)
        if data is not None:
            _scan_blob(data, facts, layer + 1)


def _scan_url(text: str, facts: _Facts, layer: int) -> bool:
    """Scan ``text`` as a URL (a ``data:`` body, query values); False if it is none."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    if not parts.scheme or not (parts.netloc or parts.query or parts.scheme.lower() == "data"):
        return False
    facts.url_scheme = facts.url_scheme or parts.scheme
    facts.url_host = facts.url_host or parts.hostname
    if parts.scheme.lower() == "data" and "," in parts.path:
        body = parts.path.split(",", 1)[1]
        if body:
            _scan_text(unquote(body), facts, layer + 1)
    for key, value in parse_qsl(parts.query, keep_blank_values=False):
        facts.query_keys.add(key)
        _scan_text(value, facts, layer + 1)
    return True


def _from_base64(text: str) -> bytes | None:
    normalized = text.replace("-", "+").replace("_", "/")
    normalized += "=" * (-len(normalized) % 4)
    try:
        return base64.b64decode(normalized, validate=True)
    except (binascii.Error, ValueError):
        return None


def _unarchive(value: Any) -> Any:
    """An NSKeyedArchiver plist as plain dicts/lists/strings (UIDs followed, bounded)."""
    if not (isinstance(value, dict) and isinstance(value.get("$objects"), list)):
        return value
    objects: list[Any] = value["$objects"]
    top = value.get("$top")
    root = top.get("root") if isinstance(top, dict) else None
    budget = [_MAX_NODES]

    def resolve(item: Any, depth: int) -> Any:
        budget[0] -= 1
        if depth > _MAX_DEPTH or budget[0] < 0:
            return None
        if isinstance(item, plistlib.UID):
            if not 0 < item.data < len(objects):
                return None
            return resolve(objects[item.data], depth + 1)
        if isinstance(item, list):
            return [resolve(child, depth + 1) for child in item]
        if isinstance(item, dict):
            return resolve_dict(item, depth)
        return None if item == "$null" else item

    def resolve_dict(item: dict[str, Any], depth: int) -> Any:
        for key in ("NS.relative", "NS.string"):
            if key in item:
                return resolve(item[key], depth + 1)
        if "NS.objects" in item:
            values = resolve(item["NS.objects"], depth + 1)
            keys = resolve(item["NS.keys"], depth + 1) if "NS.keys" in item else None
            if isinstance(keys, list) and isinstance(values, list):
                return {str(k): v for k, v in zip(keys, values, strict=False)}
            return values
        if "NS.bytes" in item:
            return item["NS.bytes"]
        return {key: resolve(child, depth + 1) for key, child in item.items()
                if key != "$class"}

    return resolve(root if root is not None else objects, 0)


def _walk(value: Any, facts: _Facts, layer: int, depth: int) -> None:
    facts.nodes += 1
    if depth > _MAX_DEPTH or facts.nodes > _MAX_NODES:
        return
    if isinstance(value, dict):
        _collect(value, facts)
        for child in value.values():
            _walk(child, facts, layer, depth + 1)
    elif isinstance(value, list):
        for child in value:
            _walk(child, facts, layer, depth + 1)
    elif isinstance(value, str):
        _scan_text(value, facts, layer)
    elif isinstance(value, bytes) and len(value) <= _MAX_BYTES:
        _scan_blob(value, facts, layer + 1)


def _string(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _first(data: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        found = _string(data.get(key))
        if found:
            return found
    return None


def _collect(data: dict[str, Any], facts: _Facts) -> None:
    facts.question = facts.question or _first(data, _QUESTION_KEYS)
    facts.creator = facts.creator or _first(data, _CREATOR_KEYS)
    facts.poll_guid = facts.poll_guid or _first(data, _POLL_GUID_KEYS)
    for key in _OPTION_LISTS:
        options = data.get(key)
        if isinstance(options, list):
            known = {option.id for option in facts.options}
            for raw in options:
                option = _option(raw)
                if option is not None and option.id not in known:
                    facts.options.append(option)
                    known.add(option.id)
    for key in _VOTE_LISTS:
        votes = data.get(key)
        if isinstance(votes, list):
            if not votes:
                facts.empty_votes = True
            seen = {(v.option_id, v.participant) for v in facts.votes}
            for raw in votes:
                vote = _vote(raw)
                if vote is not None and (vote.option_id, vote.participant) not in seen:
                    facts.votes.append(vote)
                    seen.add((vote.option_id, vote.participant))
    if "voteOptionIdentifier" in data and not any(isinstance(data.get(k), list)
                                                  for k in _VOTE_LISTS):
        vote = _vote(data)
        if vote is not None and all(v.option_id != vote.option_id for v in facts.votes):
            facts.votes.append(vote)
    people = data.get("participants")
    if isinstance(people, list):
        facts.participants.extend(p for p in (_string(x) for x in people) if p)


def _option(raw: Any) -> PollOption | None:
    if isinstance(raw, str):
        text = raw.strip()
        return PollOption(id=text, text=text) if text else None
    if not isinstance(raw, dict):
        return None
    label = _first(raw, ("text", "pollOptionText", "title"))
    if not label:
        return None
    return PollOption(id=_first(raw, ("optionIdentifier", "identifier", "id")) or label,
                      text=label)


def _vote(raw: Any) -> PollVote | None:
    if not isinstance(raw, dict):
        return None
    option_id = _first(raw, ("voteOptionIdentifier", "optionIdentifier", "optionID"))
    if not option_id:
        return None
    removed = any(raw.get(key) is True for key in ("removed", "isRemoved"))
    return PollVote(
        option_id=option_id,
        participant=_first(raw, ("participantHandle", "participant", "handle")) or "",
        event_type=_first(raw, ("eventType", "type")) or ("removed" if removed else "selected"),
        server_time=_first(raw, ("serverVoteTime", "serverTime", "timestamp")),
    )
