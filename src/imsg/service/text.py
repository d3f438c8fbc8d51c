"""Putting paths into unit files, plists, C and AppleScript source, safely.

Every path that goes into a generated file is first checked by ``refuse_control``: a newline
in ``--socket`` or ``$XDG_STATE_HOME`` would otherwise start a new systemd directive (or break
a plist, or a string in generated source). Then each format gets its own quoting:

- systemd ``ExecStart=``: words split on whitespace, double quotes with C escapes, ``$``
  expanded (written ``$$``) and ``%`` specifiers (written ``%%``): ``exec_word``;
- systemd ``StandardOutput=append:PATH``: the rest of the line is the path, taken literally
  except for ``%`` specifiers; quotes would become part of the file name: ``setting_path``;
- C string literals (the launcher): ``c_string``; AppleScript strings around a shell
  command: ``applescript_string`` of ``shlex.join``.
"""

from __future__ import annotations

import unicodedata

from imsg.errors import InvalidInput

LINE_BREAKS = {"\u2028", "\u2029", "\x85"}


def refuse_control(value: str, what: str) -> str:
    """``value`` unchanged; InvalidInput when it holds a control character (C0, DEL, C1), a
    Unicode line break or an undecodable byte (a lone surrogate)."""
    for ch in value:
        if ch in LINE_BREAKS or unicodedata.category(ch) in ("Cc", "Cs"):
            raise InvalidInput(f"{what} contains a control character ({ch!r}); refusing to "
                               f"write it into a service file: {value!r}")
    return value


def exec_word(arg: str) -> str:
    """One ``ExecStart=`` word that systemd reads back as exactly ``arg``."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if escaped and not any(ch in escaped for ch in ' \t"\'\\;'):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def setting_path(path: str) -> str:
    """A path as the value of a systemd setting that takes the rest of the line literally
    (``append:``): only ``%`` needs escaping. Refuses what systemd would strip or join."""
    if path != path.strip() or path.endswith("\\"):
        raise InvalidInput(f"log path {path!r} starts or ends with whitespace or a backslash")
    return path.replace("%", "%%")


def c_string(value: str) -> str:
    """A C string literal of ``value``'s UTF-8 bytes (printable ASCII kept, the rest octal)."""
    out = []
    for byte in value.encode("utf-8", "surrogateescape"):
        ch = chr(byte)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def applescript_string(value: str) -> str:
    """An AppleScript string literal of ``value``."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
