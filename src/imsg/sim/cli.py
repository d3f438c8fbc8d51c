"""``imsg sim``: make and feed simulated Messages databases (for tests, CI and demos)."""

from __future__ import annotations

import os
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
    db = SimDB.create(path, schema)
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
