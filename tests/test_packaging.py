"""The wheel works when installed, not only from the source tree (schema files included)."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=600, cwd=cwd
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_installed_wheel_runs(tmp_path: Path) -> None:
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        tmp_path / "dist",
        ROOT,
    )
    [wheel] = (tmp_path / "dist").glob("imsg-*.whl")
    venv.create(tmp_path / "venv", with_pip=False, system_site_packages=False)
    bin_dir = tmp_path / "venv" / "bin"
    site = next((tmp_path / "venv" / "lib").glob("python*/site-packages"))
    # Dependencies come from this environment; the package itself only from the wheel.
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "deps.pth").write_text("\n".join(deps) + "\n")
    run(sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, wheel)
    run(
        bin_dir / "python",
        "-c",
        "import imsg, sys; assert 'site-packages' in imsg.__file__",
        cwd=tmp_path,
    )
    assert "Example:" in run(bin_dir / "python", "-m", "imsg", "--help", cwd=tmp_path)
    db = tmp_path / "chat.db"
    run(bin_dir / "python", "-m", "imsg", "sim", "init", db, "--demo", cwd=tmp_path)
    assert "Weekend Trip" in run(
        bin_dir / "python", "-m", "imsg", "chats", "--db", db, cwd=tmp_path
    )
