"""The inbound decision: ``decide(message, account, snapshot, now) -> Drop | Pair | Dispatch``.

Pure: it reads the snapshot (pairing approvals, echo and self-chat caches, pending group
history, loop breaker) and returns a value; what must be remembered because of it (a self-chat
row, a history entry, a warning, an echo hit) travels in the decision's ``effects`` for the
caller to apply. The order (each step can end it):

0. A system row (tapback, group event, edit/unsend update) → drop. A ``sender`` equal to our
   own ``destination_caller_id`` on a row not from us, outside a self-chat, is repaired from
   the direct chat's identifier or its only participant (a Messages race that made other
   gateways challenge their owner with a pairing code), or dropped when neither differs.
1. No sender → drop.
2. Group = ``is_group`` or an explicit ``groups[chat_id]`` entry (two-person "groups" that
   imsg reports with ``is_group = false``).
3. From me: in a true self-chat (identifier = sender = ``destination_caller_id``) a row that
   is our own reply's echo is dropped, anything else typed there goes on; in an ambiguous self
   thread (no ``destination_caller_id``) the row is remembered and dropped; every other
   from-me row is dropped.
4. A group row without ``chat_id`` → drop.
5. Access. Groups: ``disabled`` drops; ``allowlist`` drops on an empty list (warned once per
   chat) or a sender/chat not listed; ``open`` passes; pairing approvals never count. Direct:
   ``disabled`` drops; ``open`` passes; a sender in ``allowFrom`` ∪ approvals (approvals not
   with ``allowlist``) passes; ``pairing`` → Pair (never for ourselves); ``allowlist`` drops.
6. Registry: when ``groups`` lists chats, a group neither listed nor covered by ``"*"`` drops
   (warned once per chat); without ``groups`` the sender allowlist alone decides.
7. Empty body (no text, no usable attachment) → drop.
8. Self-chat mirror of a remembered from-me row → drop (counts as an echo).
9. Echo of our own send (``EchoCache``) → drop (counts as an echo).
10. Assistant-internal markers outside code → drop.
11. Quote (``reply_to_text``), hidden in groups under ``contextVisibility = allowlist`` when
    its sender is not in the group allowlist.
12. Mentions: any ``mentionPatterns`` regex; ``requireMention`` from ``groups[chat_id]``, then
    ``groups["*"]``, then true. Control commands (``/word``) are authorized by an explicit
    (not ``"*"``) match: ``allowFrom`` or the group allowlist in groups, the DM allowlist with
    approvals in direct chats. An unauthorized command in a group drops.
13. A group message that needs a mention and has none (and is not an authorized command)
    drops, and is kept as pending history (``historyLimit``). No patterns: no gating.
14. The conversation's loop breaker is tripped → drop.
15. Dispatch.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from imsg.gateway.config import AccountConfig
from imsg.gateway.envelope import Envelope, HistoryEntry, Media, Quote, format_body, line
from imsg.gateway.envelope import media_kind as kind_of
from imsg.gateway.guards import EchoCache, LoopBreaker, SelfChatCache, reflection_marker
from imsg.gateway.handles import normalize_handle
from imsg.gateway.inbound import Inbound
from imsg.gateway.remote import under_roots

OBJECT_REPLACEMENT = "\ufffc"
_COMMAND = re.compile(r"/[A-Za-z][\w-]*")


@dataclass(frozen=True)
class EchoKey:
    """The arguments of an echo-cache look-up."""

    scopes: tuple[str, ...]
    ids: tuple[object, ...]
    text: str
    file_names: tuple[str, ...]


@dataclass(frozen=True)
class Effects:
    """What the caller records after a decision."""

    remember_self_chat: str | None = None  # a SelfChatCache key
    history: HistoryEntry | None = None  # append to the chat's pending history
    warn: tuple[str, str] | None = None  # (once-key, message) for a configuration problem
    echo_hit: bool = False  # proof our own output came back: counts for the loop breaker
    absorb: EchoKey | None = None  # the echo-cache look-up that matched, to use it up


NO_EFFECTS = Effects()


@dataclass(frozen=True)
class Drop:
    reason: str
    effects: Effects = NO_EFFECTS
    conversation: str = ""


@dataclass(frozen=True)
class Pair:
    sender: str
    chat_id: int | None
    effects: Effects = NO_EFFECTS
    conversation: str = ""


@dataclass(frozen=True)
class Dispatch:
    envelope: Envelope
    effects: Effects = NO_EFFECTS

    @property
    def conversation(self) -> str:
        return self.envelope.conversation


Decision = Drop | Pair | Dispatch


@dataclass
class Snapshot:
    """Everything ``decide`` may read besides the message and the configuration."""

    approved: frozenset[str] = frozenset()
    echo: EchoCache = field(default_factory=EchoCache)
    self_chat: SelfChatCache = field(default_factory=SelfChatCache)
    loop: LoopBreaker = field(default_factory=LoopBreaker)
    history: Callable[[int], Sequence[HistoryEntry]] = lambda _chat: ()


def repair_sender(message: Inbound, region: str) -> str:
    """The sender, unless it is our own ``destination_caller_id`` on a row not from us: then
    the direct chat's identifier or its only participant (or "" when neither differs)."""
    sender = message.sender
    if message.is_from_me or not sender or not message.destination_caller_id:
        return sender
    ours = normalize_handle(message.destination_caller_id, region)
    if normalize_handle(sender, region) != ours:
        return sender
    if not message.is_group and message.chat_identifier and \
            normalize_handle(message.chat_identifier, region) == ours:
        return sender  # a real self-chat: the self-chat rules below apply
    candidates = []
    if not message.is_group and message.chat_identifier:
        candidates.append(message.chat_identifier)
    if len(message.participants) == 1:
        candidates.append(message.participants[0])
    for candidate in candidates:
        if normalize_handle(candidate, region) != ours:
            return candidate
    return ""


def usable_media(message: Inbound, account: AccountConfig) -> tuple[Media, ...]:
    """Attachments the handler may get: present, with a path under the allowed roots."""
    if not account.include_attachments:
        return ()
    roots = account.remote_attachment_roots if account.remote_host else account.attachment_roots
    kept = []
    for item in message.attachments:
        path = item.original_path
        if not path or item.missing:
            continue
        if path.startswith("~") and not account.remote_host:
            path = os.path.expanduser(path)
        if under_roots(path, roots):
            kept.append(Media(path, item.mime_type, kind_of(item.mime_type)))
    return tuple(kept)


def decide(message: Inbound, account: AccountConfig, snap: Snapshot, now: float) -> Decision:
    """The decision for one message (see the module docstring for the order)."""
    region = account.region
    if message.system:
        return Drop("system event (tapback, group event or edit)")
    sender = repair_sender(message, region)
    if not sender:
        return Drop("missing sender" if not message.sender else "sender is ourselves")
    chat_id = message.chat_id
    norm = normalize_handle(sender, region)
    entry = account.groups.get(str(chat_id)) if chat_id is not None else None
    is_group = message.is_group or entry is not None
    conversation = f"group:{chat_id}" if is_group else f"dm:{norm}"
    ours = normalize_handle(message.destination_caller_id, region) \
        if message.destination_caller_id else ""
    ident = normalize_handle(message.chat_identifier, region) if message.chat_identifier else ""
    self_thread = not is_group and ident == norm
    true_self_chat = self_thread and bool(ours) and ours == norm
    self_scope = (f"{account.id}:chat_id:{chat_id}:imessage:{norm}" if is_group
                  else f"{account.id}:imessage:{norm}")
    text = message.text.replace(OBJECT_REPLACEMENT, "").strip()
    self_key = snap.self_chat.key(self_scope, message.created_at, text)
    echo_scopes = [f"chat_id:{chat_id}"] if chat_id is not None else []
    if not is_group:
        echo_scopes.append(f"imessage:{norm}")
    file_names = tuple(a.transfer_name for a in message.attachments if a.transfer_name)
    ids = (message.id, message.guid)
    echo_key = EchoKey(tuple(echo_scopes), ids, text, file_names)

    def drop(reason: str, effects: Effects = NO_EFFECTS) -> Drop:
        return Drop(reason, effects, conversation)

    user_in_self_chat = False
    if message.is_from_me:
        remember = Effects(remember_self_chat=self_key)
        if self_thread and not ours:
            return drop("from me (self thread without destination)", remember)
        if true_self_chat:
            if snap.echo.is_echo(echo_scopes, ids=ids, text=text, file_names=file_names,
                                 now=now):
                return drop("agent echo in self-chat",
                            Effects(remember_self_chat=self_key, echo_hit=True,
                                    absorb=echo_key))
            user_in_self_chat = True
        else:
            return drop("from me")
    if is_group and chat_id is None:
        return drop("group message without chat_id")

    approvals = snap.approved if account.dm_policy != "allowlist" else frozenset()
    dm_allow = account.allow.union(approvals)
    chat_fields: dict[str, Any] = {"chat_id": chat_id, "chat_guid": message.chat_guid,
                                   "chat_identifier": message.chat_identifier}
    if is_group:
        if account.group_policy == "disabled":
            return drop("group policy disabled")
        if account.group_policy == "allowlist":
            if account.group_allow.empty:
                return drop("group allowlist is empty", Effects(warn=(
                    f"empty-group-allowlist:{chat_id}",
                    f"group chat {chat_id} dropped: groupPolicy is allowlist and "
                    "groupAllowFrom (or allowFrom) is empty")))
            if not account.group_allow.allows(norm, **chat_fields):
                return drop("sender not in group allowlist")
    elif account.dm_policy == "disabled":
        return drop("dm policy disabled")
    elif account.dm_policy != "open" and not dm_allow.allows(norm, **chat_fields):
        if account.dm_policy == "pairing" and norm != ours:
            return Pair(norm, chat_id, NO_EFFECTS, conversation)
        return drop("sender not in allowFrom")

    if is_group and account.registry and entry is None and "*" not in account.groups:
        return drop("group not in groups registry", Effects(warn=(
            f"registry:{chat_id}",
            f"group chat {chat_id} dropped: `groups` lists chats but not this one "
            f"(add groups.{chat_id} or groups.\"*\")")))

    media = usable_media(message, account)
    body_text = text or (f"<media:{media[0].kind}>" if media else "")
    if not body_text:
        return drop("empty body")

    if not message.is_from_me and snap.self_chat.seen(self_key, now):
        return drop("self-chat echo", Effects(echo_hit=True))
    if not user_in_self_chat and snap.echo.is_echo(echo_scopes, ids=ids, text=text,
                                                   file_names=file_names, now=now):
        return drop("echo of our own reply", Effects(echo_hit=True, absorb=echo_key))
    marker = reflection_marker(text)
    if marker:
        return drop(f"reflected assistant content ({marker})")

    quote = None
    if message.reply_to_text:
        quote_id = message.thread_originator_guid or message.reply_to_guid or ""
        quote = Quote(quote_id, message.reply_to_text, message.reply_to_sender)
        if (is_group and account.context_visibility == "allowlist"
                and not account.group_allow.allows(
                    normalize_handle(message.reply_to_sender or "", region))):
            quote = None

    was_mentioned = any(p.search(text) for p in account.mention_patterns)
    require_mention = True
    wildcard = account.groups.get("*")
    if entry is not None and entry.require_mention is not None:
        require_mention = entry.require_mention
    elif wildcard is not None and wildcard.require_mention is not None:
        require_mention = wildcard.require_mention
    is_command = bool(_COMMAND.match(text))
    if is_group:
        authorized = (account.allow.allows(norm, **chat_fields, explicit=True)
                      or account.group_allow.allows(norm, **chat_fields, explicit=True))
    else:
        authorized = dm_allow.allows(norm, **chat_fields, explicit=True)
    if is_group and is_command and not authorized:
        return drop("control command (unauthorized)")
    if (is_group and require_mention and account.mention_patterns and not was_mentioned
            and not (is_command and authorized)):
        history = None
        if account.history_limit > 0:
            history = HistoryEntry(norm, body_text, message.created_at, message.id)
        return drop("no mention", Effects(history=history))
    if snap.loop.tripped(conversation, now):
        return drop("loop breaker: too many echoes of our own replies in this conversation")

    label = (f"{message.chat_name or 'Group'} id:{chat_id}" if is_group
             else norm if norm == sender else f"{norm} id:{sender}")
    history_entries: tuple[HistoryEntry, ...] = ()
    if is_group and chat_id is not None:
        history_entries = tuple(snap.history(chat_id))
        if account.context_visibility != "all":
            history_entries = tuple(h for h in history_entries
                                    if account.group_allow.allows(h.sender))
    current = line(label, message.created_at, body_text, norm if is_group else None)
    envelope = Envelope(
        account=account.id,
        session=f"imessage:group:{chat_id}" if is_group else f"imessage:{norm}",
        chat_type="group" if is_group else "direct",
        chat_id=chat_id,
        reply_to=f"chat_id:{chat_id}" if chat_id is not None else f"imessage:{norm}",
        sender=norm,
        text=body_text,
        body=format_body(current, quote=quote, history=history_entries, label=label),
        was_mentioned=was_mentioned or (is_command and authorized and is_group),
        command_authorized=authorized,
        guid=message.guid,
        conversation=conversation,
        sender_name=message.sender_name,
        quote=quote,
        history=history_entries,
        media=media,
        message=message.raw,
        chat_guid=message.chat_guid,
    )
    return Dispatch(envelope, Effects(remember_self_chat=self_key if user_in_self_chat
                                      else None))

