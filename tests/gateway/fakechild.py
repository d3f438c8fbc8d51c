"""A fake ``imsg rpc`` for gateway tests: stdlib only, fast to start, misbehaving on request.

Run as ``fakechild.py rpc --db DIR/chat.db``. Everything lives in DIR:

- ``messages.jsonl``: the "database": message objects the test appends (``id`` ascending);
  ``watch.subscribe`` tails it, ``messages.after``/``chats.list``/``messages.history`` read it;
- ``requests.jsonl``: every request received, one JSON line each (``method``, ``params``,
  ``start``: which spawn of the child got it);
- ``starts``: one line per spawn (the pid);
- ``mode.json``: behaviour, a JSON list indexed by spawn number (the last entry repeats),
  each an object of: ``v1`` (default true: answers ``initialize`` and lists ``methods``),
  ``after`` (lists ``messages.after``), ``bridge`` (bridge ready; lists typing/read/tapback),
  ``db_ready`` (default true), ``hang`` (answer nothing), ``no_init`` (ignore ``initialize``),
  ``garbage`` (N non-JSON lines on stdout at start and before each answer), ``fda`` (a Full
  Disk Access banner on stdout), ``stderr_flood`` (N stderr lines at start), ``slow_ms``
  (delay each answer), ``exit_on`` (a method name: exit with code 3 instead of answering),
  ``hang_after`` (answer this many requests, then nothing), ``send_error`` (the error object
  ``send`` answers), ``send_errors`` (a list: one per send, then successes), ``echo_sends``
  (each send appends its from-me row to ``messages.jsonl``; ``"twin"`` also an echo twin:
  ``is_from_me`` false, another GUID), ``overflow_after`` (after N notifications send a
  terminal ``watch.overflow`` resuming at the last one), ``skip`` (a list of ROWIDs reported as
  ``watch.skipped`` instead of delivered).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

out_lock = threading.Lock()


def write(obj: object) -> None:
    data = (json.dumps(obj) + "\n").encode()
    with out_lock:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def raw(text: str) -> None:
    with out_lock:
        sys.stdout.buffer.write(text.encode() + b"\n")
        sys.stdout.buffer.flush()


def append(path: str, obj: object) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(obj) + "\n")


def read_messages(path: str) -> list[dict]:
    try:
        with open(path) as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []


class Fake:
    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.messages_path = os.path.join(folder, "messages.jsonl")
        self.requests_path = os.path.join(folder, "requests.jsonl")
        starts = os.path.join(folder, "starts")
        with open(starts, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        with open(starts) as fh:
            self.start = sum(1 for _ in fh) - 1
        try:
            with open(os.path.join(folder, "mode.json")) as fh:
                modes = json.load(fh)
        except FileNotFoundError:
            modes = [{}]
        self.mode = modes[min(self.start, len(modes) - 1)]
        self.answered = 0
        self.subs = 0
        self.sends = 0
        self.send_errors = list(self.mode.get("send_errors", []))

    def snapshot(self) -> dict:
        methods = ["initialize", "status", "chats.list", "messages.history", "watch.subscribe",
                   "watch.unsubscribe", "send"]
        if self.mode.get("after", True):
            methods.append("messages.after")
        bridge = bool(self.mode.get("bridge"))
        if bridge:
            methods += ["typing", "read", "tapback"]
        db_ready = self.mode.get("db_ready", True)
        database = {"path": "x", "ready": db_ready}
        missing = "The configured Messages database does not exist."
        database.update({"features": {}} if db_ready else {"error": missing})
        return {"version": "fake", "protocol_version": 1, "database": database,
                "bridge": {"ready": bridge}, "methods": methods, "supported_methods": methods}

    def answer(self, rid: object, method: str, params: dict) -> dict | None:
        mode = self.mode
        if method == "initialize":
            if not mode.get("v1", True):
                return {"error": {"code": -32601, "message": "Method not found", "data": method}}
            return {"result": self.snapshot()}
        if method == "status":
            snap = self.snapshot()
            if not mode.get("v1", True):
                snap = {"version": "old", "rpc_methods": ["chats.list", "send",
                                                          "watch.subscribe"]}
            return {"result": snap}
        messages = read_messages(self.messages_path)
        if method == "chats.list":
            return {"result": {"chats": [{"id": 1}] if messages else []}}
        if method == "messages.history":
            newest = max((m["id"] for m in messages), default=None)
            return {"result": {"messages": [{"id": newest}] if newest else []}}
        if method == "messages.after":
            since = params["since_rowid"]
            limit = params.get("limit", 100)
            later = [m for m in messages if m["id"] > since]
            page = later[:limit]
            following = page[-1]["id"] if page else since
            return {"result": {"messages": page, "next_rowid": following,
                               "has_more": len(later) > limit}}
        if method == "watch.subscribe":
            self.subs += 1
            since = params.get("since_rowid") or max((m["id"] for m in messages), default=0)
            sub = self.subs
            threading.Thread(target=self.tail, args=(sub, since), daemon=True).start()
            return {"result": {"subscription": sub, "buffer_limit": 256}}
        if method == "watch.unsubscribe":
            return {"result": {"ok": True}}
        if method == "send":
            return self.send(params)
        if method in ("typing", "read", "tapback"):
            return {"result": {"ok": True}}
        return {"error": {"code": -32601, "message": "Method not found", "data": method}}

    def send(self, params: dict) -> dict:
        self.sends += 1
        if self.send_errors:
            return {"error": self.send_errors.pop(0)}
        if self.mode.get("send_error"):
            return {"error": self.mode["send_error"]}
        guid = f"SENT-{os.getpid()}-{self.sends}"
        echo = self.mode.get("echo_sends")
        messages = read_messages(self.messages_path) if echo else []
        # Without echo rows the sent row lives nowhere the test writes: a ROWID of its own.
        rowid = max((m["id"] for m in messages), default=0) + 1 if echo else 10**6 + self.sends
        if echo:
            base = {"chat_id": params.get("chat_id", 1), "sender": "+15550001111",
                    "text": params.get("text", ""), "created_at": now_iso(),
                    "destination_caller_id": "me@icloud.com", "is_group": False,
                    "chat_identifier": "+15550001111", "attachments": []}
            append(self.messages_path, {**base, "id": rowid, "guid": guid, "is_from_me": True})
            if echo == "twin":
                append(self.messages_path, {**base, "id": rowid + 1, "guid": guid + "-TWIN",
                                            "is_from_me": False})
        return {"result": {"ok": True, "transport": "applescript", "id": rowid, "guid": guid,
                           "message_id": guid, "service": "iMessage"}}

    def tail(self, sub: int, since: int) -> None:
        cursor = since
        sent = 0
        skip = set(self.mode.get("skip", []))
        overflow_after = self.mode.get("overflow_after")
        while True:
            for message in read_messages(self.messages_path):
                if message["id"] <= cursor:
                    continue
                cursor = message["id"]
                if cursor in skip:
                    write({"jsonrpc": "2.0", "method": "watch.skipped",
                           "params": {"subscription": sub, "rowid": cursor,
                                      "guid": message.get("guid")}})
                    continue
                write({"jsonrpc": "2.0", "method": "message",
                       "params": {"subscription": sub, "message": message}})
                sent += 1
                if overflow_after and sent >= overflow_after:
                    write({"jsonrpc": "2.0", "method": "watch.overflow",
                           "params": {"subscription": sub, "resume_after_rowid": cursor - 1,
                                      "reason": "buffer_limit_exceeded", "terminal": True}})
                    return
            time.sleep(0.005)

    def run(self) -> int:
        mode = self.mode
        for _ in range(mode.get("stderr_flood", 0)):
            sys.stderr.write("imsg: something noisy happened\n")
        sys.stderr.flush()
        if mode.get("fda"):
            raw("imsg needs Full Disk Access to read chat.db. Open System Settings…")
        for index in range(mode.get("garbage", 0)):
            raw(f"Welcome to imsg! line {index}")
        for line in sys.stdin:
            try:
                request = json.loads(line)
            except ValueError:
                continue
            method = request.get("method", "")
            params = request.get("params") or {}
            append(self.requests_path, {"method": method, "params": params,
                                        "start": self.start})
            if mode.get("hang"):
                continue
            if mode.get("no_init") and method == "initialize":
                continue
            hang_after = mode.get("hang_after")
            if hang_after is not None and self.answered >= hang_after:
                continue
            if mode.get("exit_on") == method:
                return 3
            if mode.get("slow_ms"):
                time.sleep(mode["slow_ms"] / 1000)
            for index in range(mode.get("garbage", 0)):
                raw(f"noise {index}")
            reply = self.answer(request.get("id"), method, params)
            self.answered += 1
            if reply is not None and "id" in request:
                write({"jsonrpc": "2.0", "id": request["id"], **reply})
        return 0


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def main() -> int:
    args = sys.argv[1:]
    if not args or args[0] != "rpc":
        print("usage: fakechild rpc --db DIR/chat.db", file=sys.stderr)
        return 2
    db = args[args.index("--db") + 1]
    return Fake(os.path.dirname(db)).run()


if __name__ == "__main__":
    sys.exit(main())
