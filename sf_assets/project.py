"""The project folder: where `syncs/`, `.env`, the DuckDB state file and every relative path of
a spec live.

Dagster starts code servers, runs and steps in working directories of its own choosing (a
container's, a pod's, the daemon's), so no process may take its working directory for the
project. The folder is `$SF_ASSETS_PROJECT_DIR` when set; else, for a project that installs
sf-assets from its own checkout (an editable or in-repo install), the folder above the
`sf_assets` package that holds its `pyproject.toml` or `syncs/`; else nothing is guessed and
the error names the variable to set. The `sf-assets` commands act on the folder they are run
in, and set the variable for everything they start.
"""

from __future__ import annotations

import os
from pathlib import Path

import sf_assets

PROJECT_VARIABLE = "SF_ASSETS_PROJECT_DIR"
MARKERS = ("pyproject.toml", "syncs")


class ProjectNotFound(Exception):
    """Where the project folder is cannot be told; the message says what to set."""


def project_dir() -> Path:
    """The project folder, absolute."""
    configured = os.environ.get(PROJECT_VARIABLE)
    if configured:
        folder = Path(configured).expanduser().resolve()
        if not folder.is_dir():
            raise ProjectNotFound(f"{PROJECT_VARIABLE}={configured} is not a folder")
        return folder
    checkout = Path(sf_assets.__file__).resolve().parent.parent
    if any((checkout / marker).exists() for marker in MARKERS):
        return checkout
    raise ProjectNotFound(
        "cannot tell which folder is the sf-assets project (sf-assets is installed as a "
        f"package, away from any project): set {PROJECT_VARIABLE} to the folder that holds "
        "syncs/ and .env"
    )


def in_project(path: str | Path) -> Path:
    """`path` as given when absolute, else inside the project folder (never the process's
    working directory)."""
    given = Path(path).expanduser()
    return given if given.is_absolute() else project_dir() / given
