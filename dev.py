"""Set up and run sf-assets on a machine that has only Python 3.11+.

    python3 dev.py demo    # install everything, then run the demo against the sandbox org
    python3 dev.py test    # install everything, then run ruff and the whole test suite

The only prerequisite is Python with pip: `uv` is installed into `.uv-bootstrap/` when it is
not on PATH, and `uv` then builds `.venv/` from the committed lock file.
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


def find_uv() -> str:
    local = BOOTSTRAP / "bin" / ("uv.exe" if os.name == "nt" else "uv")
    if local.exists():
        return str(local)
    on_path = shutil.which("uv")
    if on_path:
        return on_path
    print(f"installing {UV_REQUIREMENT} into {BOOTSTRAP.name}/", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(BOOTSTRAP),
            UV_REQUIREMENT,
        ],
        check=True,
    )
    return str(local)


def run(*args: str) -> None:
    shown = ["uv", *args[1:]] if Path(args[0]).stem == "uv" else list(args)
    print("+", " ".join(shown), flush=True)
    completed = subprocess.run(args, cwd=ROOT)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def main() -> None:
    task = sys.argv[1] if len(sys.argv) > 1 else ""
    if task not in ("demo", "test"):
        sys.exit(__doc__)
    uv = find_uv()
    run(uv, "sync", "--locked", "--quiet")
    if task == "demo":
        run(uv, "run", "--locked", "sf-assets", "demo", *sys.argv[2:])
        return
    run(uv, "run", "--locked", "ruff", "check", ".")
    run(uv, "run", "--locked", "ruff", "format", "--check", ".")
    run(uv, "run", "--locked", "dagster", "definitions", "validate", "-w", "workspace.yaml")
    run(uv, "run", "--locked", "pytest", *sys.argv[2:])


if __name__ == "__main__":
    main()
