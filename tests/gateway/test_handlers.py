"""Handlers: the answer grammar, and the command, webhook and python kinds with their
failures (exit codes, timeouts, refused connections, HTTP errors, exceptions)."""

from __future__ import annotations

import asyncio
import http.server
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imsg.gateway.config import HandlerConfig
from imsg.gateway.handlers import (
    Answer,
    HandlerError,
    Reply,
    load_python_target,
    make_handler,
    parse_answer,
)

ENVELOPE = {"account": "default", "text": "hello", "message": {"guid": "IN-1"}}


@pytest.mark.parametrize("raw,answer", [
    (None, Answer()),
    ("", Answer()),
    ("  \n", Answer()),
    ("hi there\n", Answer((Reply("hi there"),))),
    ('{"not": "an answer"}', Answer((Reply('{"not": "an answer"}'),))),
    ('{"replies": []}', Answer()),
    ('{"replies": ["one", {"text": "two"}]}', Answer((Reply("one"), Reply("two")))),
    ('{"replies": [{"text": "t", "reply_to": true}]}', Answer((Reply("t", (), "IN-1"),))),
    ('{"replies": [{"text": "t", "reply_to": "P-9"}]}', Answer((Reply("t", (), "P-9"),))),
    ('{"react": "like"}', Answer((), "like")),
    ({"replies": [{"files": ["out.png"]}]}, Answer((Reply("", ("/base/out.png",)),))),
    ({"replies": [{"files": ["/abs/x.pdf"], "text": "see"}]},
     Answer((Reply("see", ("/abs/x.pdf",)),))),
])
def test_answers(raw: Any, answer: Answer) -> None:
    assert parse_answer(raw, inbound_guid="IN-1", base_dir="/base") == answer


@pytest.mark.parametrize("raw,error", [
    ('{"replies": [], "extra": 1}', "unknown key 'extra'"),
    ('{"replies": "text"}', "answer.replies must be a list"),
    ('{"replies": [5]}', r"answer.replies\[0\] must be an object or a string"),
    ('{"replies": [{"txt": "x"}]}', r"answer.replies\[0\] has unknown key 'txt'"),
    ('{"replies": [{"files": "a.png"}]}', r"answer.replies\[0\].files must be a list"),
    ('{"replies": [{"text": 3}]}', r"answer.replies\[0\].text must be a string"),
    ('{"replies": [{"text": "x", "reply_to": 5}]}', "reply_to must be true or a GUID"),
    ('{"react": 1}', "answer.react must be a string"),
    (42, "answer must be text, a JSON object or nothing"),
])
def test_malformed_answers(raw: Any, error: str) -> None:
    with pytest.raises(HandlerError, match=error):
        parse_answer(raw, inbound_guid="IN-1")


# --- command --------------------------------------------------------------------------------

def command(tmp_path: Path, script: str, timeout_s: float = 10.0) -> Any:
    (tmp_path / "bot.py").write_text(script)
    return make_handler(HandlerConfig("command", command=(sys.executable, "bot.py"),
                                      timeout_s=timeout_s, base_dir=str(tmp_path)))


def test_command_gets_the_envelope_on_stdin_in_the_config_directory(tmp_path: Path) -> None:
    handler = command(tmp_path, "import json, os, sys\n"
                                "env = json.load(sys.stdin)\n"
                                "print(os.path.basename(os.getcwd()), env['text'])\n")
    answer = asyncio.run(handler(ENVELOPE))
    assert answer == Answer((Reply(f"{tmp_path.name} hello"),))


def test_command_failure_is_logged_not_sent(tmp_path: Path) -> None:
    handler = command(tmp_path, "import sys\nprint('partial')\n"
                                "sys.stderr.write('Traceback: boom\\n')\nsys.exit(3)\n")
    with pytest.raises(HandlerError, match="exited with code 3: Traceback: boom"):
        asyncio.run(handler(ENVELOPE))


def test_command_timeout_kills_it(tmp_path: Path) -> None:
    handler = command(tmp_path, "import time\ntime.sleep(30)\n", timeout_s=0.3)
    with pytest.raises(HandlerError, match=r"timed out after 0\.3s"):
        asyncio.run(handler(ENVELOPE))


def test_command_output_is_capped(tmp_path: Path) -> None:
    handler = command(tmp_path, "import sys\nsys.stdout.write('x' * (5 * 1024 * 1024))\n")
    with pytest.raises(HandlerError, match="wrote more than"):
        asyncio.run(handler(ENVELOPE))


def test_command_that_cannot_start(tmp_path: Path) -> None:
    handler = make_handler(HandlerConfig("command", command=("/no/such/bot",),
                                         base_dir=str(tmp_path)))
    with pytest.raises(HandlerError, match="cannot start /no/such/bot"):
        asyncio.run(handler(ENVELOPE))


# --- webhook --------------------------------------------------------------------------------

class Server:
    """A local HTTP server answering POSTs with ``status`` and ``body``."""

    def __init__(self) -> None:
        self.status = 200
        self.body = "hi from the webhook"
        self.requests: list[tuple[dict[str, str], Any]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                owner.requests.append((dict(self.headers), json.loads(self.rfile.read(length))))
                data = owner.body.encode()
                self.send_response(owner.status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/imessage"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    serving = Server()
    yield serving
    serving.httpd.shutdown()


def webhook(url: str, **kw: Any) -> Any:
    return make_handler(HandlerConfig("webhook", webhook=url, **kw))


def test_webhook_posts_the_envelope_and_reads_the_answer(server: Server) -> None:
    answer = asyncio.run(webhook(server.url, headers=(("Authorization", "Bearer t"),))(ENVELOPE))
    assert answer == Answer((Reply("hi from the webhook"),))
    headers, body = server.requests[0]
    assert body == ENVELOPE and headers["Authorization"] == "Bearer t"


def test_webhook_http_error_is_not_retried(server: Server) -> None:
    server.status, server.body = 500, "oops"
    with pytest.raises(HandlerError, match="webhook answered HTTP 500: oops"):
        asyncio.run(webhook(server.url)(ENVELOPE))
    assert len(server.requests) == 1


def test_webhook_connection_refused_is_retried_then_fails(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("imsg.gateway.handlers.WEBHOOK_RETRY_S", 0.0)
    with pytest.raises(HandlerError, match="webhook unreachable after 3 attempts"):
        asyncio.run(webhook("http://127.0.0.1:1/imessage")(ENVELOPE))


def test_webhook_timeout(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            time.sleep(1.0)

        def log_message(self, *args: Any) -> None:
            pass

    server.httpd.RequestHandlerClass = Slow
    with pytest.raises(HandlerError, match=r"webhook timed out after 0\.2s"):
        asyncio.run(webhook(server.url, timeout_s=0.2)(ENVELOPE))


# --- python ---------------------------------------------------------------------------------

def python(tmp_path: Path, module: str, code: str, function: str = "handle",
           timeout_s: float = 5.0) -> Any:
    (tmp_path / f"{module}.py").write_text(code)
    return make_handler(HandlerConfig("python", python=f"{module}:{function}",
                                      timeout_s=timeout_s, base_dir=str(tmp_path)))


def test_python_sync_and_async_functions(tmp_path: Path) -> None:
    sync = python(tmp_path, "gw_sync_bot", "def handle(env):\n    return 'sync ' + env['text']\n")
    async_ = python(tmp_path, "gw_async_bot", "async def handle(env):\n"
                                              "    return {'replies': ['async'], "
                                              "'react': 'love'}\n")
    assert asyncio.run(sync(ENVELOPE)) == Answer((Reply("sync hello"),))
    assert asyncio.run(async_(ENVELOPE)) == Answer((Reply("async"),), "love")


def test_python_exception_becomes_a_handler_error(tmp_path: Path) -> None:
    handler = python(tmp_path, "gw_raising_bot", "def handle(env):\n    raise KeyError('x')\n")
    with pytest.raises(HandlerError, match="raised KeyError"):
        asyncio.run(handler(ENVELOPE))


def test_python_timeout(tmp_path: Path) -> None:
    handler = python(tmp_path, "gw_slow_bot", "import asyncio\nasync def handle(env):\n"
                                              "    await asyncio.sleep(5)\n", timeout_s=0.2)
    with pytest.raises(HandlerError, match=r"timed out after 0\.2s"):
        asyncio.run(handler(ENVELOPE))


@pytest.mark.parametrize("target,error", [
    ("gw_no_such_module:handle", "cannot import gw_no_such_module"),
    ("json:no_such_function", "no function no_such_function in json"),
])
def test_python_target_errors(tmp_path: Path, target: str, error: str) -> None:
    with pytest.raises(HandlerError, match=error):
        load_python_target(target, str(tmp_path))
