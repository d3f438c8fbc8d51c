"""``imsg sim``: make and feed simulated Messages databases (for tests, CI and demos)."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import click

from imsg.sim.schema import SCHEMAS

# The writer and the demo are imported by the commands that use them: `imsg sim` is registered
# on every `imsg` start, and that start should not pay for them.


@click.group()
def sim() -> None:
    """Simulate Messages on any OS: build a chat.db and write messages into it.

    \b
    Example:
      imsg sim init /tmp/chat.db --demo
      imsg sim receive /tmp/chat.db --from +15555550123 --text "hi"
      imsg chats --db /tmp/chat.db
    """


@sim.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--schema", type=click.Choice(SCHEMAS), default="ventura", show_default=True,
              help="Apple's DDL to use: macOS 13 Ventura or macOS 26 Tahoe.")
@click.option("--demo", is_flag=True, help="Fill it with a small realistic history.")
@click.option("--contacts", "contacts_dir", is_flag=False, flag_value="", default=None,
              metavar="[DIR]",
              help="Also write an AddressBook naming the demo's handles: into the AddressBook "
                   "directory DIR (read it with IMSG_ADDRESSBOOK_DIR=DIR), or, without DIR, "
                   "into the home of PATH's user (<home> for <home>/Library/Messages/chat.db, "
                   "else $HOME), where imsg looks by default.")
def init(path: str, schema: str, demo: bool, contacts_dir: str | None) -> None:
    """Create a new, empty chat.db at PATH from Apple's real schema.

    \b
    Example:
      imsg sim init ./chat.db --schema tahoe --demo
      imsg sim init ./chat.db --demo --contacts ./AddressBook
    """
    from imsg.sim.demo import fill_demo
    from imsg.sim.messages import SimDB

    if os.path.exists(path):
        raise click.ClickException(f"{path} already exists")
    if contacts_dir is not None:
        from imsg.sim.addressbook import STORE_NAME, home_addressbook, home_of_database

        contacts_dir = os.path.abspath(contacts_dir or home_addressbook(home_of_database(path)))
        if os.path.exists(os.path.join(contacts_dir, STORE_NAME)):
            raise click.ClickException(f"{contacts_dir} already has an address book")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        db = SimDB.create(path, schema)
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(f"cannot create {path}: {exc}") from None
    try:
        if demo:
            fill_demo(db)
    finally:
        db.close()
    click.echo(f"created {path} ({schema}{', demo history' if demo else ''})", err=True)
    if contacts_dir is not None:
        from imsg.sim.addressbook import SimAddressBook, fill_demo_contacts

        fill_demo_contacts(SimAddressBook.create_at(contacts_dir))
        click.echo(f"created an address book in {contacts_dir}", err=True)


@sim.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--from", "sender", required=True, help="Sender handle (phone or email).")
@click.option("--text", required=True, help="Message text.")
@click.option("--chat-id", type=int, default=None,
              help="Chat to post in (default: the sender's direct chat, created if needed).")
@click.option("--service", type=click.Choice(["iMessage", "SMS"]), default="iMessage",
              show_default=True)
def receive(path: str, sender: str, text: str, chat_id: int | None, service: str,
            **_: Any) -> None:
    """Write an incoming message into PATH as Messages would, and print its ROWID.

    \b
    Example:
      imsg sim receive ./chat.db --from +15555550123 --text "on my way"
    """
    from imsg.sim.messages import SimDB

    db = SimDB(path)
    try:
        chat = chat_id if chat_id is not None else db.chat([sender], service=service)
        try:
            rowid = db.receive(chat, sender, text)
        except KeyError:
            raise click.ClickException(f"no chat {chat_id} in {path}") from None
    finally:
        db.close()
    click.echo(rowid)


@sim.command(context_settings={"ignore_unknown_options": True,
                               "allow_interspersed_args": False})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def osascript(args: tuple[str, ...]) -> None:
    """Act as osascript driving Messages, for imsg's own scripts, on the chat.db in IMSG_SIM_DB.

    Takes `-l AppleScript -`, the script on stdin and its values as arguments, exactly as imsg
    runs /usr/bin/osascript. IMSG_SIM_FAIL=automation|accessibility|not-running|unknown-chat|
    no-imessage|ghost-row|timeout makes it fail as Messages does. The same program is installed
    as `imsg-sim-osascript` (faster to start) for IMSG_OSASCRIPT.

    \b
    Example:
      IMSG_SIM_DB=./chat.db IMSG_OSASCRIPT=imsg-sim-osascript imsg send --db ./chat.db \\
        --to +15555550123 --text hi
    """
    from imsg.sim.osascript import main

    raise SystemExit(main(list(args)))


@sim.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--container", type=click.Path(file_okay=False), default=None,
              help="The container to serve (default: $IMSG_BRIDGE_CONTAINER, else a "
                   "'container' directory next to PATH).")
@click.option("--interval", type=click.FloatRange(min=0.001), default=0.1, show_default=True,
              help="Seconds between inbox scans (the real helper scans every 100 ms).")
@click.option("--without", multiple=True, metavar="SELECTOR",
              help="Report this selector false in status (repeatable); also 'registry', 'v2', "
                   "'attachment_metadata', 'clientMessageGuid'.")
@click.option("--timing", is_flag=True, hidden=True,
              help="Add claim/answer times to every response (for benchmarks).")
def bridge(path: str, container: str | None, interval: float, without: tuple[str, ...],
           timing: bool) -> None:
    """Serve the IMCore bridge's file protocol against the chat.db at PATH, as the injected
    helper does in Messages.app, until interrupted.

    Sends, tapbacks, edits, unsends, read state, chats, groups and polls change PATH as
    Messages would; typing goes to the event log. IMSG_SIM_BRIDGE_FAIL=never-ready|
    unresponsive|malformed|crash|slow[=S]|wrong-id|error|symlink-inbox[:ACTION,…] makes it
    fail on demand. It prints the environment that points imsg at it.

    \b
    Example:
      imsg sim bridge ./chat.db --container ./container &
      export IMSG_BRIDGE_CONTAINER=./container IMSG_CSRUTIL=imsg-sim-csrutil \\
        IMSG_BRIDGE_DYLIB=./container/imsg-bridge-helper.dylib
      imsg status --json
      imsg tapback --chat 'iMessage;-;+15555550123' --message GUID --kind like --db ./chat.db
    """
    from pathlib import Path

    from imsg.sim.bridge import Failure, placeholder_dylib, run

    folder = Path(os.path.abspath(container or os.environ.get("IMSG_BRIDGE_CONTAINER", "")
                                  or os.path.join(os.path.dirname(os.path.abspath(path)),
                                                  "container")))
    try:
        failure = Failure.parse(os.environ.get("IMSG_SIM_BRIDGE_FAIL", ""))
    except ValueError as exc:
        raise click.ClickException(f"IMSG_SIM_BRIDGE_FAIL: {exc}") from None
    folder.mkdir(parents=True, exist_ok=True)
    dylib = placeholder_dylib(folder)
    click.echo(f"imsg sim bridge: serving {folder} for {path}", err=True)
    click.echo(f"export IMSG_BRIDGE_CONTAINER={folder} IMSG_CSRUTIL=imsg-sim-csrutil "
               f"IMSG_BRIDGE_DYLIB={dylib}", err=True)
    run(path, folder, interval_s=interval, failure=failure, without=frozenset(without),
        timing=timing)


@sim.command(name="echo-twin")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--rowid", type=int, required=True, help="The outgoing message to twin.")
def echo_twin(path: str, rowid: int) -> None:
    """Write the echo twin of outgoing message ROWID (is_from_me 0, another GUID), as Messages
    sometimes does, and print its ROWID.

    \b
    Example:
      imsg sim echo-twin ./chat.db --rowid 42
    """
    from imsg.sim.messages import SimDB
    from imsg.sim.traffic import echo_twin as write_twin

    db = SimDB(path)
    try:
        click.echo(write_twin(db, rowid))
    except KeyError as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    finally:
        db.close()


@sim.command(name="late-from-me")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--chat-id", type=int, required=True, help="Chat the outgoing message is in.")
@click.option("--text", required=True, help="Message text.")
@click.option("--correct-after", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Seconds before is_from_me is corrected to 1.")
def late_from_me(path: str, chat_id: int, text: str, correct_after: float) -> None:
    """Write our own message with is_from_me 0, print its ROWID, and correct it later.

    \b
    Example:
      imsg sim late-from-me ./chat.db --chat-id 1 --text "on it" --correct-after 2
    """
    import time

    from imsg.sim.messages import SimDB
    from imsg.sim.traffic import correct_from_me, unflagged_outgoing

    db = SimDB(path)
    try:
        try:
            rowid = unflagged_outgoing(db, chat_id, text)
        except KeyError:
            raise click.ClickException(f"no chat {chat_id} in {path}") from None
        click.echo(rowid)
        time.sleep(correct_after)
        correct_from_me(db, rowid)
    finally:
        db.close()


@sim.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--chat-id", type=int, required=True, help="Chat the old messages go in.")
@click.option("--count", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--age-hours", type=click.FloatRange(min=0), default=72.0, show_default=True,
              help="How old the first message is.")
def backlog(path: str, chat_id: int, count: int, age_hours: float) -> None:
    """Write a burst of old, back-dated incoming messages (an iCloud sync); print the ROWIDs.

    \b
    Example:
      imsg sim backlog ./chat.db --chat-id 2 --count 200 --age-hours 48
    """
    from imsg.sim.messages import SimDB
    from imsg.sim.traffic import icloud_backlog

    db = SimDB(path)
    try:
        rowids = icloud_backlog(db, chat_id, count, age_s=age_hours * 3600)
    except KeyError:
        raise click.ClickException(f"no chat {chat_id} in {path}") from None
    finally:
        db.close()
    click.echo(" ".join(map(str, rowids)))


@sim.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--from", "sender", required=True, help="The SMS sender's phone number.")
@click.option("--text", "texts", multiple=True, required=True, help="A text (repeatable).")
def sms(path: str, sender: str, texts: tuple[str, ...]) -> None:
    """Write an SMS conversation: the sender's SMS chat and their texts; print the chat id.

    \b
    Example:
      imsg sim sms ./chat.db --from +15555550199 --text "is this the bot?"
    """
    from imsg.sim.messages import SimDB
    from imsg.sim.traffic import sms_conversation

    db = SimDB(path)
    try:
        chat_id, _ = sms_conversation(db, sender, texts)
    finally:
        db.close()
    click.echo(chat_id)
