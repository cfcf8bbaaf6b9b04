"""Running `sf-assets` as a user does: a subprocess in a project folder, with its settings in
the project's `.env` or in the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SF_ASSETS = str(Path(sys.executable).parent / "sf-assets")


def base_environment() -> dict[str, str]:
    """The test process's environment without anyone's connection settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SF_", "EMARSYS_"))}


def org_settings(info: dict[str, Any], prefix: str = "SF_") -> dict[str, str]:
    return {
        f"{prefix}LOGIN_URL": info["login_url"],
        f"{prefix}USERNAME": info["username"],
        f"{prefix}PASSWORD": info["password"],
        f"{prefix}SECURITY_TOKEN": info["security_token"],
        f"{prefix}CA_BUNDLE": info["ca_bundle"],
    }


def write_env_file(project: Path, settings: dict[str, str]) -> None:
    lines = [f"{name}={value}" for name, value in settings.items()]
    (project / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")


def sf_assets(
    project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SF_ASSETS, *args],
        cwd=project,
        env={**base_environment(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
