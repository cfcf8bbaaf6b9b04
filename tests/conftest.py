"""Fixtures shared by every test: a sandbox org served over HTTPS on a free port, in-process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sf_sandbox.org import Org
from sf_sandbox.server import SandboxServer
from sf_sandbox.timing import Timing
from simple_salesforce import Salesforce

from resources.https import TrustingSession
from sf_assets.state import StateStore
from tests.state.backends import BACKENDS
from tests.worker import WorkerPool

pytest_plugins = ["tests.support.postgres"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `slow` (minutes of real processes each) start first: started last, one of
    them would run alone at the end while the other workers sit idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def isolated_environment() -> Iterator[None]:
    """Commands under test load `.env` files into the process's environment: put it back
    after each test, so that no test passes only because an earlier one left a variable set."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    """A fresh org for one test: nothing leaks between tests. It answers instantly, so the
    functional suite stays fast; timing tests set the model through `/__admin/timing`."""
    server = SandboxServer(Org(timing=Timing.of("instant")), workdir=tmp_path / "sandbox")
    with server:
        yield server


@pytest.fixture(scope="session")
def workers() -> Iterator[WorkerPool]:
    """Warm child processes for tests that need real processes (tests/worker.py)."""
    pool = WorkerPool()
    yield pool
    pool.close()


@pytest.fixture(params=sorted(BACKENDS))
def state_store(request: pytest.FixtureRequest) -> StateStore:
    """A fresh state store, once per backend (tests/state/backends.py)."""
    return BACKENDS[request.param](request)


@pytest.fixture
def sandbox_info(sandbox: SandboxServer) -> dict[str, Any]:
    return sandbox.info()


@pytest.fixture
def sf(sandbox: SandboxServer) -> Salesforce:
    """The real simple-salesforce client on a session opened directly in the org."""
    info = sandbox.info()
    return Salesforce(
        session_id=sandbox.org.open_session(),
        instance_url=info["instance_url"],
        session=TrustingSession(info["ca_bundle"]),
        version=info["api_version"],
    )


@pytest.fixture
def http(sandbox: SandboxServer) -> Wire:
    """Plain HTTPS to the org, for asserting exact wire shapes."""
    return Wire(sandbox)


class Wire:
    """Plain HTTPS calls to the sandbox with a valid session, the way curl would make them."""

    def __init__(self, server: SandboxServer) -> None:
        info = server.info()
        self.base = info["instance_url"]
        self.version = info["api_version"]
        self.token = server.org.open_session()
        self.session = TrustingSession(info["ca_bundle"])

    def url(self, path: str) -> str:
        if path.startswith("/"):
            return self.base + path
        return f"{self.base}/services/data/v{self.version}/{path}"

    def call(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **kwargs.pop("headers", {})}
        return self.session.request(method, self.url(path), headers=headers, timeout=60, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base}/__admin/{path}", timeout=60, **kwargs)
        response.raise_for_status()
        return response.json()
