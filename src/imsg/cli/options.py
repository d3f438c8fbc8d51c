"""What every ``imsg`` command shares: output, error handling, common options, value parsers.

Library errors (``imsg.errors``) become one line on stderr and their exit code; stdout carries
only results (one JSON object per line with ``--json``, flushed per line).
"""

from __future__ import annotations

import errno
import functools
import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from imsg.errors import ImsgError, OutputError

F = TypeVar("F", bound=Callable[..., Any])


class Output:
    """Writes results to stdout, one line at a time, flushed so pipes see them at once."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._out = sys.stdout.buffer

    def line(self, text: str) -> None:
        self._out.write(text.encode("utf-8", "surrogateescape") + b"\n")
        self._out.flush()

    def obj(self, obj: Any) -> None:
        from imsg.chatdb.models import to_json

        self._out.write(to_json(obj) + b"\n")
        self._out.flush()

    def item(self, obj: Any, text: str) -> None:
        """``obj`` as a JSON line in ``--json`` mode, else ``text``."""
        self.obj(obj) if self.as_json else self.line(text)


def fail(err: ImsgError) -> None:
    click.echo(f"imsg: {err.message}", err=True)
    sys.exit(err.exit_code)


def handles_errors(func: F) -> F:
    """Turn library errors into one stderr line + exit code; a closed pipe into a quiet exit;
    an unwritable stdout (``>/dev/full``, a closed descriptor) into one line and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ImsgError as err:
            fail(err)
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): exit quietly, without a traceback.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EBADF, errno.EIO):
                raise
            fail(OutputError(exc.strerror or str(exc)))

    return wrapper  # type: ignore[return-value]


def db_option(func: F) -> F:
    return click.option(
        "--db", "db", envvar="IMSG_DB", type=click.Path(dir_okay=False, readable=False),
        default=None, show_envvar=True,
        help="Path to chat.db (default ~/Library/Messages/chat.db).",
    )(func)


JSON_FLAGS = ("--json", "-j", "--json-output", "--jsonOutput")


def json_option(func: F) -> F:
    return click.option(*JSON_FLAGS, "as_json", is_flag=True,
                        help="One JSON object per line.")(func)


def verbose_option(func: F) -> F:
    return click.option("--verbose", "-v", is_flag=True,
                        help="Say more on stderr.")(func)


def common(func: F) -> F:
    """``--db``, ``--json`` and error handling: what a command reading chat.db needs."""
    return json_option(db_option(handles_errors(func)))


def split_list(values: Iterable[str]) -> list[str]:
    """``--participants a,b --participants c`` → ``[a, b, c]``."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


class GreedyOption(click.Option):
    """A repeatable option that also takes every following value up to the next option, as
    the Swift tool parses ``--participants a b --json``. Values starting with ``-`` end it."""

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        for name in self.opts:
            option = parser._long_opt.get(name) or parser._short_opt.get(name)
            if option is None:
                continue
            process = option.process

            def greedy(value: Any, state: Any, process: Any = process) -> None:
                process(value, state)
                while state.rargs and not str(state.rargs[0]).startswith("-"):
                    process(state.rargs.pop(0), state)

            option.process = greedy


def participants_option(func: F) -> F:
    return click.option(
        "--participants", multiple=True, cls=GreedyOption,
        help="Only messages from these handles (space- or comma-separated, or repeated).",
    )(func)


def filter_options(func: F) -> F:
    func = click.option("--end", help="Only messages before this ISO-8601 time (exclusive).")(func)
    func = click.option("--start", help="Only messages at/after this ISO-8601 time.")(func)
    return participants_option(func)


_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def duration_seconds(value: str) -> float | None:
    """``250ms``, ``1.5s``, ``2m``, ``1h``, compound ``2s500ms``/``1m30s``, or a bare number of
    seconds → seconds; None when it is none of those."""
    text = (value or "").strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def parse_duration(ctx: click.Context | None, param: click.Parameter | None, value: str) -> float:
    """Click callback for duration options; a bad value is Swift's ``Invalid value for
    option: --NAME``."""
    seconds = duration_seconds(value)
    if seconds is None:
        name = param.opts[0] if param is not None and param.opts else "--duration"
        raise click.UsageError(f"Invalid value for option: {name} ({value!r} is not a duration,"
                               " e.g. 250ms, 1s, 2s500ms)", ctx)
    return seconds


INT64_MAX = 2**63 - 1


class Int64(click.ParamType[int]):
    """An integer in the signed 64-bit range (SQLite's), with a lower bound."""

    name = "integer"

    def __init__(self, minimum: int | None = 1) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif re.fullmatch(r"[+-]?\d{1,30}", str(value).strip()):
            number = int(str(value).strip())
        if number is None or not -INT64_MAX - 1 <= number <= INT64_MAX or (
                self.minimum is not None and number < self.minimum):
            name = param.opts[0] if param is not None and param.opts else "value"
            self.fail(f"Invalid value for option: {name} ({value!r})", param, ctx)
        return number


POSITIVE = Int64(1)
NON_NEGATIVE = Int64(0)
ANY_INT = Int64(None)


def chat_id_option(*, required: bool,
                   help: str = "Chat ROWID (see `imsg chats`).") -> Callable[[F], F]:
    # No explicit default: click counts ``default=None`` as a value, even for required options.
    return click.option("--chat-id", required=required, type=POSITIVE, help=help)


def status_to_stderr(text: str) -> None:
    click.echo(f"imsg: {text}", err=True)
