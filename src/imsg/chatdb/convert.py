"""``--convert-attachments`` / ``convert_attachments``: playable and viewable copies of
Apple-only attachment formats, in a per-user cache.

::

    convert_attachment(attachment) -> Attachment          # a copy; never raises
    with_converted_attachments(message) -> Message         # every attachment of one message

=================================  ==========================  =======================
source (UTI, MIME type or suffix)  copy                        converter
=================================  ==========================  =======================
CAF voice note                     M4A, ``audio/mp4``          ffmpeg (AAC 128 kb/s)
GIF                                first frame, ``image/png``  Pillow, else ffmpeg
HEIC/HEIF image                    JPEG, ``image/jpeg``        Pillow + pillow-heif
HEIC/HEIF sticker                  PNG, ``image/png``          Pillow + pillow-heif
=================================  ==========================  =======================

CAF and GIF are converted as the Swift ``imsg`` does (same ffmpeg arguments); HEIC is ours.
Stickers become PNG, not JPEG, to keep their transparency. The copy keeps the image's colour
profile and drops its other metadata (EXIF, location).

**Converters** install with ``pip install 'imsg[convert]'`` (imageio-ffmpeg's bundled ffmpeg,
Pillow, pillow-heif). ffmpeg is ``$IMSG_FFMPEG`` if set, else the first ``ffmpeg`` on ``PATH``
or in ``/opt/homebrew/bin``, ``/usr/local/bin``, ``/usr/bin``, ``/bin``, else imageio-ffmpeg's.
Images are decoded by a child Python process (this interpreter), so a decoder that crashes or
hangs on a hostile file cannot take imsg down. Every child runs in its own process group with
a 60 s deadline (monotonic); then the group gets SIGTERM and, 0.5 s later, SIGKILL. Its
stderr is drained while it runs (stdout goes nowhere), so a chatty converter cannot block.

**Cache**: ``$IMSG_CACHE_DIR/converted-attachments`` if set, else the user cache directory
(``~/Library/Caches/imsg/converted-attachments`` on macOS, as Swift's;
``~/.cache/imsg/converted-attachments`` on Linux), created ``0700``. A copy is named
``<base>-<hash>.<ext>``: ``<base>`` is the source file name without its suffix, runs of
non-alphanumerics collapsed to ``-``, at most 48 characters (``attachment`` if nothing is
left); ``<hash>`` is the first 16 hex digits of the SHA-256 of ``"<path>|<size>|<mtime in
ns>"``, so a changed file gets a new copy. An existing copy is reused without running
anything. A converter writes ``.<uuid>.<ext>`` in the cache directory, which is renamed into
place only after a successful run, so no reader ever sees half a file.

**Failure modes**: nothing raises and no command fails. An attachment that is not one of
these types, is ``missing``, or was converted already comes back unchanged. When a converter
is not installed, fails, times out or writes nothing, or the cache cannot be written, the
attachment comes back without ``converted_*`` and with ``conversion_error``: one line saying
what to install or what went wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec

from imsg.chatdb.models import Attachment, Message

CONVERT_TIMEOUT_S = 60.0
KILL_GRACE_S = 0.5
FFMPEG_DIRS = ("/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin")
INSTALL_HINT = "pip install 'imsg[convert]'"
_BASE_LIMIT = 48
_ERROR_LIMIT = 300

log = logging.getLogger(__name__)

# Runs in a child interpreter: argv is source, destination, Pillow format, "heif" or "".
_IMAGE_SCRIPT = """\
import sys
from PIL import Image
source, destination, fmt, heif = sys.argv[1:5]
if heif:
    import pillow_heif
    pillow_heif.register_heif_opener()
with Image.open(source) as image:
    image.seek(0)
    options = {"icc_profile": image.info["icc_profile"]} if image.info.get("icc_profile") else {}
    if fmt == "JPEG":
        image.convert("RGB").save(destination, fmt, quality=90, **options)
    else:
        image.convert("RGBA").save(destination, fmt, **options)
"""


class _Unavailable(Exception):
    """A converter that is not installed; the message says how to get it."""


Command = Callable[[str, str], list[str]]  # (source, destination) -> argv; may raise _Unavailable


@dataclass(frozen=True, slots=True)
class _Plan:
    extension: str
    mime_type: str
    commands: tuple[Command, ...]  # tried in order until one succeeds


def convert_attachment(attachment: Attachment, *, cache_dir: str | None = None,
                       timeout_s: float = CONVERT_TIMEOUT_S) -> Attachment:
    """A copy of ``attachment`` with ``converted_path``/``converted_mime_type`` set, or with
    ``conversion_error`` set, or ``attachment`` itself when there is nothing to convert.
    Blocks while a converter runs (at most ``timeout_s`` per converter tried)."""
    plan = _plan(attachment)
    if plan is None or attachment.missing or attachment.converted_path:
        return attachment
    source = attachment.original_path
    try:
        st = os.stat(source)
        directory = cache_dir or conversion_cache_dir()
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        return _failed(attachment, f"cannot convert {source}: {exc.strerror or exc}")
    target = os.path.join(directory, output_name(source, st.st_size, st.st_mtime_ns,
                                                 plan.extension))
    if os.path.isfile(target):
        return msgspec.structs.replace(attachment, converted_path=target,
                                       converted_mime_type=plan.mime_type)
    problems = []
    for command in plan.commands:
        problem = _convert(command, source, target, directory, timeout_s)
        if problem is None:
            return msgspec.structs.replace(attachment, converted_path=target,
                                           converted_mime_type=plan.mime_type)
        problems.append(problem)
    log.debug("converting %s failed: %s", source, problems)
    return _failed(attachment, "; ".join(problems))


def with_converted_attachments(message: Message, *, cache_dir: str | None = None,
                               timeout_s: float = CONVERT_TIMEOUT_S) -> Message:
    """``message`` with each attachment passed through ``convert_attachment`` (the same object
    when none changed)."""
    converted = [convert_attachment(a, cache_dir=cache_dir, timeout_s=timeout_s)
                 for a in message.attachments]
    if all(new is old for new, old in zip(converted, message.attachments, strict=True)):
        return message
    return msgspec.structs.replace(message, attachments=converted)


def conversion_cache_dir() -> str:
    """Where copies go: ``$IMSG_CACHE_DIR/converted-attachments``, else the user cache."""
    root = os.environ.get("IMSG_CACHE_DIR")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("imsg", appauthor=False)
    return os.path.join(os.path.abspath(os.path.expanduser(root)), "converted-attachments")


def output_name(path: str, size: int, mtime_ns: int, extension: str) -> str:
    """``<base>-<hash>.<extension>`` for the source file ``path`` (see the module docstring)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    base = re.sub(r"[\W_]+", "-", stem).strip("-")[:_BASE_LIMIT].rstrip("-") or "attachment"
    digest = hashlib.sha256(f"{path}|{size}|{mtime_ns}".encode()).hexdigest()[:16]
    return f"{base}-{digest}.{extension}"


def find_ffmpeg() -> str | None:
    """The ffmpeg to run (see the module docstring), or None. Raises ``_Unavailable`` when
    ``$IMSG_FFMPEG`` names something that cannot run."""
    override = os.environ.get("IMSG_FFMPEG")
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        raise _Unavailable(f"IMSG_FFMPEG={override} is not an executable file")
    found = shutil.which("ffmpeg")
    if found:
        return found
    for folder in FFMPEG_DIRS:
        candidate = os.path.join(folder, "ffmpeg")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return _bundled_ffmpeg()


def _bundled_ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg  # type: ignore[import-untyped]
    except ImportError:
        return None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError:
        return None


# --- what to convert, and how ------------------------------------------------------------------


def _ffmpeg(arguments: Sequence[str]) -> Command:
    def command(source: str, destination: str) -> list[str]:
        exe = find_ffmpeg()
        if exe is None:
            raise _Unavailable(f"ffmpeg not found ({INSTALL_HINT}, or put ffmpeg on PATH)")
        return [exe, "-nostdin", "-y", "-loglevel", "error", "-i", source, *arguments,
                destination]

    return command


def _pillow(fmt: str, *, heif: bool) -> Command:
    def command(source: str, destination: str) -> list[str]:
        for module, name in (("PIL", "Pillow"), ("pillow_heif", "pillow-heif"))[: 1 + heif]:
            if not _module_available(module):
                raise _Unavailable(f"{name} is not installed ({INSTALL_HINT})")
        return [sys.executable, "-c", _IMAGE_SCRIPT, source, destination, fmt,
                "heif" if heif else ""]

    return command


def _module_available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


_CAF = _Plan("m4a", "audio/mp4", (_ffmpeg(["-c:a", "aac", "-b:a", "128k"]),))
_GIF = _Plan("png", "image/png", (_pillow("PNG", heif=False), _ffmpeg(["-vframes", "1"])))
_HEIC = _Plan("jpg", "image/jpeg", (_pillow("JPEG", heif=True),))
_HEIC_STICKER = _Plan("png", "image/png", (_pillow("PNG", heif=True),))

_CAF_TYPES = {"com.apple.coreaudio-format", "audio/x-caf", ".caf"}
_GIF_TYPES = {"com.compuserve.gif", "image/gif", ".gif"}
_HEIC_TYPES = {"public.heic", "public.heif", "public.heics", "public.heifs", "image/heic",
               "image/heif", "image/heic-sequence", "image/heif-sequence", ".heic", ".heif",
               ".heics", ".heifs"}


def _plan(attachment: Attachment) -> _Plan | None:
    names = (attachment.original_path, attachment.transfer_name, attachment.filename)
    kinds = {attachment.uti.lower(), attachment.mime_type.lower()}
    kinds |= {os.path.splitext(name)[1].lower() for name in names if name}
    if kinds & _CAF_TYPES:
        return _CAF
    if kinds & _GIF_TYPES:
        return _GIF
    if kinds & _HEIC_TYPES:
        return _HEIC_STICKER if attachment.is_sticker else _HEIC
    return None


# --- running a converter -----------------------------------------------------------------------


def _convert(command: Command, source: str, target: str, directory: str,
             timeout_s: float) -> str | None:
    """Run one converter into a temporary file and rename it to ``target``; the problem, or
    None on success."""
    temporary = os.path.join(directory, f".{uuid.uuid4().hex}{os.path.splitext(target)[1]}")
    try:
        argv = command(source, temporary)
        problem = _run(argv, directory, timeout_s)
        if problem is None and not _has_content(temporary):
            problem = f"{_tool(argv)} wrote no output"
        if problem is None:
            os.replace(temporary, target)
        return problem
    except _Unavailable as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot convert {source}: {exc.strerror or exc}"
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _run(argv: list[str], cwd: str, timeout_s: float) -> str | None:
    """Run ``argv`` in its own process group; the problem, or None when it exited 0."""
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, cwd=cwd, start_new_session=True)
    except OSError as exc:
        return f"cannot run {_tool(argv)}: {exc.strerror or exc}"
    try:
        _, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop_group(process)
        return f"{_tool(argv)} did not finish within {timeout_s:g}s"
    except BaseException:
        _stop_group(process)
        raise
    if process.returncode != 0:
        return f"{_tool(argv)} failed (exit {process.returncode}): {_last_line(stderr)}"
    return None


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group, SIGKILL it after the grace period, and reap it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.communicate(timeout=KILL_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue
    # Only a descendant that left the group can still hold stderr open: stop reading it.
    if process.stderr is not None:
        process.stderr.close()
    process.wait()


def _has_content(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def _tool(argv: Sequence[str]) -> str:
    if argv[0] == sys.executable:
        return "the image converter"
    name = os.path.basename(argv[0])
    return "ffmpeg" if name.startswith("ffmpeg") else name  # imageio-ffmpeg's is versioned


def _last_line(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    text = lines[-1].strip() if lines else "no error output"
    return text if len(text) <= _ERROR_LIMIT else text[: _ERROR_LIMIT - 1] + "…"


def _failed(attachment: Attachment, problem: str) -> Attachment:
    return msgspec.structs.replace(attachment, conversion_error=problem)
