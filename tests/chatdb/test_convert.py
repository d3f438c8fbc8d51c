"""Attachment conversion on real files made here: CAF with ffmpeg, GIF with Pillow, HEIC with
pillow-heif; plus every way a converter can be missing, fail, hang or flood its stderr."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import platformdirs
import pytest
from PIL import Image

from imsg.chatdb import convert
from imsg.chatdb.convert import (
    conversion_cache_dir,
    convert_attachment,
    find_ffmpeg,
    output_name,
    with_converted_attachments,
)
from imsg.chatdb.models import Attachment, Message


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("IMSG_FFMPEG", raising=False)
    monkeypatch.setenv("IMSG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "converted-attachments"


def attachment(path: Path, uti: str = "", mime: str = "", *, sticker: bool = False,
               missing: bool = False) -> Attachment:
    return Attachment(filename=str(path), transfer_name=path.name, uti=uti, mime_type=mime,
                      total_bytes=path.stat().st_size if path.exists() else 0,
                      is_sticker=sticker, original_path=str(path), missing=missing)


def ffmpeg() -> str:
    exe = find_ffmpeg()
    assert exe is not None
    return exe


def make_caf(path: Path) -> Path:
    subprocess.run([ffmpeg(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=0.3", "-c:a", "pcm_s16le", str(path)],
                   check=True)
    return path


def make_gif(path: Path) -> Path:
    frames = [Image.new("RGB", (20, 10), color) for color in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=100,
                   loop=0)
    return path


def make_heic(path: Path, mode: str = "RGB") -> Path:
    import pillow_heif

    pillow_heif.register_heif_opener()
    color = (0, 160, 0) if mode == "RGB" else (0, 0, 255, 96)
    Image.new(mode, (64, 48), color).save(path, format="HEIF")
    return path


def fake_tool(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-ffmpeg"
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# --- real conversions --------------------------------------------------------------------------


def test_caf_voice_note_becomes_m4a(tmp_path: Path, cache: Path) -> None:
    source = make_caf(tmp_path / "Audio Message.caf")
    result = convert_attachment(attachment(source, "com.apple.coreaudio-format", "audio/x-caf"))
    assert result.converted_mime_type == "audio/mp4" and result.conversion_error is None
    converted = Path(result.converted_path or "")
    assert converted.parent == cache and converted.name.startswith("Audio-Message-")
    assert converted.suffix == ".m4a"
    head = converted.read_bytes()[:12]
    assert head[4:8] == b"ftyp" and head[8:11] == b"M4A"
    assert leftovers(cache) == [converted.name]
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700


def test_gif_becomes_its_first_frame_as_png(tmp_path: Path) -> None:
    source = make_gif(tmp_path / "party.gif")
    result = convert_attachment(attachment(source, "com.compuserve.gif", "image/gif"))
    assert result.converted_mime_type == "image/png"
    with Image.open(result.converted_path or "") as image:
        assert image.format == "PNG" and image.size == (20, 10)
        assert image.convert("RGB").getpixel((5, 5)) == (255, 0, 0)


def test_heic_photo_becomes_jpeg(tmp_path: Path) -> None:
    source = make_heic(tmp_path / "IMG_0042.HEIC")
    result = convert_attachment(attachment(source, "public.heic", "image/heic"))
    assert result.converted_mime_type == "image/jpeg"
    assert result.converted_path and result.converted_path.endswith(".jpg")
    with Image.open(result.converted_path) as image:
        assert image.format == "JPEG" and image.size == (64, 48)
        red, green, blue = image.getpixel((30, 20))
        assert green > 120 and red < 60 and blue < 60


def test_heic_sticker_keeps_its_transparency_as_png(tmp_path: Path) -> None:
    source = make_heic(tmp_path / "sticker.heic", mode="RGBA")
    result = convert_attachment(attachment(source, "public.heic", "image/heic", sticker=True))
    assert result.converted_mime_type == "image/png"
    with Image.open(result.converted_path or "") as image:
        assert image.mode == "RGBA" and image.getpixel((10, 10))[3] < 255


def test_types_are_recognised_by_uti_mime_or_suffix(tmp_path: Path) -> None:
    source = make_gif(tmp_path / "no-suffix")
    assert convert_attachment(attachment(source, mime="image/gif")).converted_path
    renamed = tmp_path / "clip.GIF"
    source.rename(renamed)
    assert convert_attachment(attachment(renamed)).converted_path


def test_gif_falls_back_to_ffmpeg_without_pillow(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(convert, "_module_available", lambda name: False)
    result = convert_attachment(attachment(make_gif(tmp_path / "a.gif"), "com.compuserve.gif"))
    assert result.conversion_error is None and result.converted_mime_type == "image/png"
    with Image.open(result.converted_path or "") as image:
        assert image.format == "PNG" and image.size == (20, 10)


def test_an_existing_copy_is_reused_and_a_changed_file_gets_a_new_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_gif(tmp_path / "a.gif")
    first = convert_attachment(attachment(source))
    monkeypatch.setenv("IMSG_FFMPEG", str(tmp_path / "absent"))
    monkeypatch.setattr(convert, "_module_available", lambda name: False)
    assert convert_attachment(attachment(source)).converted_path == first.converted_path
    os.utime(source, ns=(time.time_ns(), time.time_ns() + 10**9))
    again = convert_attachment(attachment(source))
    assert again.converted_path is None and again.conversion_error


def test_message_level_helper(tmp_path: Path) -> None:
    gif = attachment(make_gif(tmp_path / "a.gif"))
    jpeg_path = tmp_path / "b.jpeg"
    Image.new("RGB", (4, 4)).save(jpeg_path)
    jpeg = attachment(jpeg_path, "public.jpeg", "image/jpeg")
    message = Message(id=1, chat_id=1, guid="G", sender="+15555550123", is_from_me=False,
                      text="", created_at="2026-01-01T00:00:00.000Z", attachments=[gif, jpeg],
                      reactions=[], chat_identifier="+15555550123", chat_guid="any;-;+1555",
                      chat_name="", participants=[], is_group=False)
    converted = with_converted_attachments(message)
    assert converted.attachments[0].converted_mime_type == "image/png"
    assert converted.attachments[1] is jpeg
    plain = Message(**{**message.to_dict(), "attachments": [jpeg]})
    assert with_converted_attachments(plain) is plain


# --- nothing to do -----------------------------------------------------------------------------


def test_other_types_missing_files_and_converted_ones_come_back_unchanged(
        tmp_path: Path, cache: Path) -> None:
    jpeg = tmp_path / "photo.jpeg"
    Image.new("RGB", (4, 4)).save(jpeg)
    plain = attachment(jpeg, "public.jpeg", "image/jpeg")
    assert convert_attachment(plain) is plain
    missing = attachment(tmp_path / "gone.caf", "com.apple.coreaudio-format", missing=True)
    assert convert_attachment(missing) is missing
    done = Attachment(**{**attachment(make_gif(tmp_path / "a.gif")).to_dict(),
                         "converted_path": "/x.png", "converted_mime_type": "image/png"})
    assert convert_attachment(done) is done
    assert leftovers(cache) == []


def test_a_file_that_vanished_since_it_was_read_is_a_note(tmp_path: Path) -> None:
    source = make_gif(tmp_path / "a.gif")
    item = attachment(source)
    source.unlink()
    result = convert_attachment(item)
    assert result.converted_path is None
    assert result.conversion_error and "a.gif" in result.conversion_error


# --- converters missing, failing, hanging ------------------------------------------------------


def test_missing_converters_are_a_note_naming_the_extra(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    caf_source, heic_source = make_caf(tmp_path / "v.caf"), make_heic(tmp_path / "p.heic")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(convert, "FFMPEG_DIRS", ())
    monkeypatch.setattr(convert, "_bundled_ffmpeg", lambda: None)
    monkeypatch.setattr(convert, "_module_available", lambda name: name == "PIL")
    caf = convert_attachment(attachment(caf_source, "com.apple.coreaudio-format"))
    assert caf.converted_path is None and caf.converted_mime_type is None
    assert caf.conversion_error == ("ffmpeg not found (pip install 'imsg[convert]', or put ffmpeg "
                                    "on PATH)")
    heic = convert_attachment(attachment(heic_source, "public.heic"))
    assert heic.conversion_error == "pillow-heif is not installed (pip install 'imsg[convert]')"
    assert "conversion_error" in heic.to_dict() and "converted_path" not in heic.to_dict()


def test_a_bad_ffmpeg_override_is_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_caf(tmp_path / "v.caf")
    monkeypatch.setenv("IMSG_FFMPEG", str(tmp_path / "nope"))
    with pytest.raises(convert._Unavailable):
        find_ffmpeg()
    result = convert_attachment(attachment(source, "com.apple.coreaudio-format"))
    assert result.conversion_error == f"IMSG_FFMPEG={tmp_path / 'nope'} is not an executable file"


def test_a_corrupt_file_is_a_note_and_leaves_nothing_behind(tmp_path: Path, cache: Path) -> None:
    bad = tmp_path / "broken.caf"
    bad.write_bytes(b"caff" + os.urandom(2000))
    caf = convert_attachment(attachment(bad, "com.apple.coreaudio-format"))
    assert caf.converted_path is None
    assert caf.conversion_error and caf.conversion_error.startswith("ffmpeg failed (exit ")
    heic = tmp_path / "broken.heic"
    heic.write_bytes(b"\0\0\0\x18ftypheic" + os.urandom(500))
    image = convert_attachment(attachment(heic, "public.heic"))
    assert image.conversion_error and image.conversion_error.startswith(
        "the image converter failed (exit 1):")
    assert leftovers(cache) == []


def test_chatty_stderr_cannot_block_the_converter(tmp_path: Path, cache: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_caf(tmp_path / "v.caf")
    monkeypatch.setenv("IMSG_FFMPEG", fake_tool(tmp_path, (
        "import sys\n"
        "for i in range(20000):\n"
        "    sys.stderr.write('noise line %d with padding to make it long enough\\n' % i)\n"
        "sys.stderr.write('the last word\\n')\n"
        "sys.exit(3)\n")))
    result = convert_attachment(attachment(source, "com.apple.coreaudio-format"))
    assert result.conversion_error == "fake-ffmpeg failed (exit 3): the last word"
    assert leftovers(cache) == []


def test_a_converter_that_writes_nothing_is_a_note(tmp_path: Path, cache: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_caf(tmp_path / "v.caf")
    monkeypatch.setenv("IMSG_FFMPEG", fake_tool(tmp_path, "import sys\nsys.exit(0)\n"))
    result = convert_attachment(attachment(source, "com.apple.coreaudio-format"))
    assert result.conversion_error == "fake-ffmpeg wrote no output"
    assert leftovers(cache) == []


def test_a_hung_converter_is_killed_with_its_process_group(tmp_path: Path, cache: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_caf(tmp_path / "v.caf")
    pid_file = tmp_path / "grandchild.pid"
    monkeypatch.setenv("IMSG_FFMPEG", fake_tool(tmp_path, (
        "import subprocess, sys, time\n"
        "out = sys.argv[-1]\n"
        "open(out, 'wb').write(b'partial')\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n")))
    result = convert_attachment(attachment(source, "com.apple.coreaudio-format"), timeout_s=1.0)
    assert result.conversion_error == "fake-ffmpeg did not finish within 1s"
    assert result.converted_path is None
    assert leftovers(cache) == []
    grandchild = int(pid_file.read_text())

    def gone() -> bool:
        try:
            with open(f"/proc/{grandchild}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    deadline = time.monotonic() + 10
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gone()


# --- names and places --------------------------------------------------------------------------


def test_output_names() -> None:
    name = output_name("/a/Audio Message.caf", 10, 5, "m4a")
    assert name.startswith("Audio-Message-") and name.endswith(".m4a")
    assert len(name.rsplit("-", 1)[1]) == len("0123456789abcdef.m4a")
    assert output_name("/a/Audio Message.caf", 10, 5, "m4a") == name
    assert output_name("/a/Audio Message.caf", 10, 6, "m4a") != name
    assert output_name("/a/Audio Message.caf", 11, 5, "m4a") != name
    assert output_name("/b/Audio Message.caf", 10, 5, "m4a") != name
    assert output_name("/a/___.gif", 1, 1, "png").startswith("attachment-")
    assert output_name("/a/" + "x" * 80 + ".gif", 1, 1, "png").startswith("x" * 48 + "-")
    assert output_name("/a/--héllo wörld!!.heic", 1, 1, "jpg").startswith("héllo-wörld-")


def test_cache_dir_is_per_user(monkeypatch: pytest.MonkeyPatch, isolated_home: Path,
                               tmp_path: Path) -> None:
    assert conversion_cache_dir() == str(tmp_path / "cache" / "converted-attachments")
    monkeypatch.delenv("IMSG_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    expected = os.path.join(platformdirs.user_cache_dir("imsg", appauthor=False),
                            "converted-attachments")
    assert conversion_cache_dir() == expected
    assert expected.startswith(str(isolated_home))


def test_an_unwritable_cache_is_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("IMSG_CACHE_DIR", str(blocker))
    result = convert_attachment(attachment(make_gif(tmp_path / "a.gif")))
    assert result.converted_path is None and result.conversion_error
