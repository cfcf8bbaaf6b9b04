"""Fixtures shared by every test: a sandbox org served over HTTPS on a free port, in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.org import Org
from sandbox.server import SandboxServer


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    """A fresh org for one test: nothing leaks between tests."""
    server = SandboxServer(Org(), workdir=tmp_path / "sandbox")
    with server:
        yield server


@pytest.fixture
def sandbox_info(sandbox: SandboxServer) -> dict[str, Any]:
    return sandbox.info()
