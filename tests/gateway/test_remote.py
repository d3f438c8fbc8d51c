"""Remote Macs, with a fake ``ssh`` and ``scp`` on PATH that log their argv and act locally:
attachment fetching, path safety, retries, outbound staging, and a whole gateway run through
an SSH wrapper ``cliPath``."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from imsg.gateway.config import load_config
from imsg.gateway.remote import RemoteError, fetch, stage_outbound
from imsg.gateway.runner import Gateway
from tests.gateway.kit import (
    FAST,
    Recorder,
    make_fake,
    message,
    run,
    wait_for,
    with_gateway,
    write_config,
)

FAKE_TOOL = '''#!{python} -S
import json, os, shutil, sys
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as fh:
    fh.write(json.dumps([name] + args) + "\\n")
home = os.environ["FAKE_REMOTE_HOME"]
fail = os.environ.get("FAKE_FAIL_FILE")
if fail and os.path.exists(fail):
    left = int(open(fail).read() or 0)
    if left > 0:
        open(fail, "w").write(str(left - 1))
        sys.stderr.write("scp: No such file or directory\\n")
        sys.exit(1)
rest = args[args.index("--") + 1:] if "--" in args else args
if name == "scp":
    source, dest = rest
    def local(spec):
        if ":" in spec and not spec.startswith("/"):
            path = spec.split(":", 1)[1]
            return path if path.startswith("/") else os.path.join(home, path)
        return spec
    shutil.copyfile(local(source), local(dest))
else:  # ssh [options] [--] host command...
    while rest and rest[0].startswith("-"):
        rest = rest[1:]
    host, command = rest[0], rest[1:]
    if command[0] == "imsg":
        os.execv(os.environ["FAKE_IMSG"], [os.environ["FAKE_IMSG"]] + command[1:])
    if command[0] == "mkdir":
        os.makedirs(os.path.join(home, command[-1]), exist_ok=True)
'''


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("ssh", "scp"):
        tool = bin_dir / name
        tool.write_text(FAKE_TOOL.format(python=sys.executable))
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    home = tmp_path / "remote-home"
    (home / "Library" / "Messages" / "Attachments").mkdir(parents=True)
    log = tmp_path / "tools.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_REMOTE_HOME", str(home))
    return {"bin": bin_dir, "home": home, "log": log, "tmp": tmp_path}


def calls(tools: dict[str, Path]) -> list[list[str]]:
    log = tools["log"]
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def attachments(tools: dict[str, Path]) -> Path:
    return tools["home"] / "Library" / "Messages" / "Attachments"


def test_fetch_uses_scp_with_batch_mode_and_strict_host_keys(tools: dict[str, Path]) -> None:
    source = attachments(tools) / "ab" / "IMG_1.jpeg"
    source.parent.mkdir()
    source.write_bytes(b"jpeg")
    dest = tools["tmp"] / "cache"
    roots = [str(attachments(tools))]
    first = asyncio.run(fetch("bot@mac", str(source), str(dest), roots))
    second = asyncio.run(fetch("bot@mac", str(source), str(dest), roots))
    assert Path(first).read_bytes() == b"jpeg"
    assert (Path(first).name, Path(second).name) == ("IMG_1.jpeg", "IMG_1-1.jpeg")
    assert calls(tools)[0] == ["scp", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                               "--", f"bot@mac:{source}", first]


@pytest.mark.parametrize("path,error", [
    ("/etc/passwd", "outside remoteAttachmentRoots"),
    ("Library/Messages/Attachments/a.jpg", "outside remoteAttachmentRoots"),
    ("{root}/../../../etc/passwd", "outside remoteAttachmentRoots"),
    ("{root}/a$(reboot).jpg", "shell metacharacters"),
    ("{root}/a;b.jpg", "shell metacharacters"),
    ("{root}/a`b`.jpg", "shell metacharacters"),
    ("{root}/a\nb.jpg", "shell metacharacters"),
])
def test_unsafe_remote_paths_are_refused_before_any_process(tools: dict[str, Path], path: str,
                                                            error: str) -> None:
    root = str(attachments(tools))
    with pytest.raises(RemoteError, match=error):
        asyncio.run(fetch("mac", path.format(root=root), str(tools["tmp"] / "c"), [root]))
    assert calls(tools) == []


def test_unsafe_host_is_refused(tools: dict[str, Path]) -> None:
    with pytest.raises(RemoteError, match="unsafe remoteHost"):
        asyncio.run(fetch("-oProxyCommand=x", "/a", str(tools["tmp"]), ["/"]))
    assert calls(tools) == []


def test_fetch_retries_while_the_file_materializes(tools: dict[str, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fail = tools["tmp"] / "fail"
    fail.write_text("2")
    monkeypatch.setenv("FAKE_FAIL_FILE", str(fail))
    source = attachments(tools) / "late.heic"
    source.write_bytes(b"heic")
    local = asyncio.run(fetch("mac", str(source), str(tools["tmp"] / "c"),
                              [str(attachments(tools))], delay_s=0.01))
    assert Path(local).read_bytes() == b"heic" and len(calls(tools)) == 3


def test_fetch_gives_up_with_the_reason(tools: dict[str, Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fail = tools["tmp"] / "fail"
    fail.write_text("99")
    monkeypatch.setenv("FAKE_FAIL_FILE", str(fail))
    with pytest.raises(RemoteError, match="after 4 attempts: scp: No such file or directory"):
        asyncio.run(fetch("mac", str(attachments(tools) / "x.jpg"), str(tools["tmp"] / "c"),
                          [str(attachments(tools))], delay_s=0.0))


def test_stage_outbound_makes_a_private_folder_then_copies(tools: dict[str, Path]) -> None:
    local = tools["tmp"] / "chart (final).png"
    local.write_bytes(b"png")
    remote = asyncio.run(stage_outbound("bot@mac", str(local)))
    assert remote.startswith("~/.imsg-gateway/outbound/") and remote.endswith("/chart_final_.png")
    mkdir, copy = calls(tools)
    folder = remote[2:].rsplit("/", 1)[0]
    assert mkdir == ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "--",
                     "bot@mac", "mkdir", "-p", "-m", "700", folder]
    assert copy[:6] == ["scp", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "--"]
    assert (tools["home"] / remote[2:]).read_bytes() == b"png"


def test_gateway_through_an_ssh_wrapper_fetches_and_stages_files(
        tools: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = tools["tmp"]
    fake = make_fake(tmp)
    monkeypatch.setenv("FAKE_IMSG", fake.cli)
    wrapper = tmp / "imsg-over-ssh"
    wrapper.write_text('#!/bin/sh\nexec ssh -T bot@mac-mini imsg "$@"\n')
    wrapper.chmod(0o755)
    photo = attachments(tools) / "IMG_7.jpeg"
    photo.write_bytes(b"a photo")
    reply_file = tmp / "answer.txt"
    reply_file.write_text("attached")
    fake.add(message(1, "old"))
    path = write_config(tmp / "gateway.toml", {
        "cliPath": str(wrapper), "dbPath": fake.db, "dmPolicy": "open", "allowFrom": ["*"],
        "includeAttachments": True, "remoteAttachmentRoots": [str(attachments(tools))], **FAST})
    config = load_config(str(path))
    assert config.account(None).remote_host == "bot@mac-mini"
    recorder = Recorder(reply=lambda env: {"replies": [{"text": "here",
                                                        "files": [str(reply_file)]}]})

    async def body(gateway: Gateway) -> None:
        await wait_for(lambda: gateway.accounts["default"].supervisor.subscribed.is_set())
        fake.add(message(2, "\ufffc", attachments=[
            {"original_path": str(photo), "mime_type": "image/jpeg", "missing": False,
             "transfer_name": "IMG_7.jpeg"}]))
        await wait_for(lambda: len(fake.sends()) == 1)

    run(with_gateway(config, tmp / "state", recorder, body))
    media = recorder.envelopes[0]["media"]
    assert [m["kind"] for m in media] == ["image"]
    assert Path(media[0]["path"]).read_bytes() == b"a photo"
    assert str(tmp / "state" / "media") in media[0]["path"]
    sent = fake.sends()[0]
    assert sent["text"] == "here" and sent["file"].startswith("~/.imsg-gateway/outbound/")
    assert calls(tools)[0][:3] == ["ssh", "-T", "bot@mac-mini"]
