"""Set up and run sf-assets on a machine that has only Python 3.11+.

    python3 dev.py demo    # install everything, then run the demo against the sandbox org
    python3 dev.py test    # install everything, then run ruff and the whole test suite

The only prerequisite is Python with pip: `uv` is installed into `.uv-bootstrap/` when it is
not on PATH, and `uv` then builds `.venv/` from the committed lock file. The test suite also
drives a real browser: Debian's Chromium is installed with apt-get when it is missing and the
command runs as root; elsewhere the command says what to install.

Each thing a task needs is one small `ensure_*` function, so a new prerequisite (a database
server, say) is one more function called beside the others.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BOOTSTRAP = ROOT / ".uv-bootstrap"
UV_REQUIREMENT = "uv>=0.9,<1"
CHROMIUM = Path(os.environ.get("SF_ASSETS_CHROMIUM", "/usr/bin/chromium"))


def run(*args: str, env: dict[str, str] | None = None) -> None:
    shown = ["uv", *args[1:]] if Path(args[0]).stem == "uv" else list(args)
    print("+", " ".join(shown), flush=True)
    completed = subprocess.run(args, cwd=ROOT, env=env)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def ensure_uv() -> str:
    """uv on PATH, or installed with pip into .uv-bootstrap/."""
    local = BOOTSTRAP / "bin" / ("uv.exe" if os.name == "nt" else "uv")
    if local.exists():
        return str(local)
    on_path = shutil.which("uv")
    if on_path:
        return on_path
    print(f"installing {UV_REQUIREMENT} into {BOOTSTRAP.name}/", flush=True)
    run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
        str(BOOTSTRAP),
        UV_REQUIREMENT,
    )
    return str(local)


def ensure_environment(uv: str) -> None:
    """.venv/ exactly as the lock file says (development tools included)."""
    run(uv, "sync", "--locked", "--quiet")


def ensure_chromium() -> None:
    """The browser tests drive the system's Chromium through Playwright (Playwright's own
    browser download needs internet access a build machine may not have)."""
    if CHROMIUM.exists():
        return
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if is_root and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "update", "-qq", env=env)
        run("apt-get", "install", "-y", "-qq", "chromium", env=env)
        if CHROMIUM.exists():
            return
    sys.exit(
        f"The browser tests need Chromium at {CHROMIUM}. Install it, e.g. "
        "`sudo apt-get install -y chromium` on Debian or Ubuntu, or point SF_ASSETS_CHROMIUM "
        "at a Chromium or Chrome binary, then run `python3 dev.py test` again."
    )


def main() -> None:
    task = sys.argv[1] if len(sys.argv) > 1 else ""
    if task not in ("demo", "test"):
        sys.exit(__doc__)
    uv = ensure_uv()
    ensure_environment(uv)
    if task == "demo":
        run(uv, "run", "--locked", "sf-assets", "demo", *sys.argv[2:])
        return
    ensure_chromium()
    run(uv, "run", "--locked", "ruff", "check", ".")
    run(uv, "run", "--locked", "ruff", "format", "--check", ".")
    run(uv, "run", "--locked", "dg", "check", "defs")
    # Most tests wait on a sandbox, a child process or a browser rather than the CPU, so
    # more workers than cores shortens the run; each browser-test group stays on one worker.
    workers = os.environ.get("SF_ASSETS_TEST_WORKERS", "4")
    run(uv, "run", "--locked", "pytest", "-n", workers, "--dist", "loadgroup", *sys.argv[2:])


if __name__ == "__main__":
    main()
