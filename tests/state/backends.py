"""The state store backends every store test runs against: each entry makes a fresh, empty
store for one test (a file in its temporary folder, or a database of its own on the session's
PostgreSQL server). A new backend is one more entry here."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import duckdb
import psycopg
import pytest

from sf_assets.state import DuckDBStateStore, PostgresStateStore, StateStore


def duckdb_store(request: pytest.FixtureRequest) -> StateStore:
    folder = request.getfixturevalue("tmp_path")
    return DuckDBStateStore(path=str(folder / "state" / "staging.duckdb"))


def postgres_store(request: pytest.FixtureRequest) -> StateStore:
    return PostgresStateStore(url=request.getfixturevalue("postgres_url"))


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], StateStore]] = {
    "duckdb": duckdb_store,
    "postgres": postgres_store,
}

# What each backend raises when a row breaks a NOT NULL or unique constraint.
CONSTRAINT_VIOLATIONS: dict[str, type[Exception]] = {
    "duckdb": duckdb.ConstraintException,
    "postgres": psycopg.errors.IntegrityError,
}


def store_spec(store: StateStore) -> str:
    """The store as text another process can rebuild it from (`store_from_spec`)."""
    kind = type(store)
    return json.dumps(
        {"class": f"{kind.__module__}:{kind.__qualname__}", "config": store.model_dump()}
    )


def store_from_spec(text: str) -> StateStore:
    spec = json.loads(text)
    module, name = spec["class"].split(":")
    return getattr(importlib.import_module(module), name)(**spec["config"])


@contextmanager
def writes_held(store: StateStore) -> Iterator[None]:
    """Make every change to the store wait while this lasts, as someone else's long
    transaction would: a writer pauses at its next change (a ledger commit, staging a batch).
    DuckDB: the file held open by this process (as a DuckDB shell would); PostgreSQL: every
    table of the store locked against writes (plain reads still go through)."""
    if isinstance(store, DuckDBStateStore):
        with _file_held(store.path):
            yield
        return
    assert isinstance(store, PostgresStateStore)
    with store.connect() as connection, connection.transaction():
        tables = connection.execute(
            "SELECT format('%%I.%%I', schemaname, tablename) FROM pg_tables WHERE schemaname = %s",
            [store.db_schema],
        ).fetchall()
        connection.execute(
            "LOCK TABLE " + ", ".join(row[0] for row in tables) + " IN EXCLUSIVE MODE"
        )
        yield


@contextmanager
def _file_held(path: str) -> Iterator[None]:
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = duckdb.connect(path)
            break
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)
    try:
        yield
    finally:
        connection.close()


def every_value(store: StateStore) -> list[str]:
    """Every row of every table of the store as text (staged batches as their frames), for
    tests that look for what must never be stored."""
    if isinstance(store, DuckDBStateStore):
        with duckdb.connect(store.path, read_only=True) as connection:
            tables = [r[0] for r in connection.execute("SHOW TABLES").fetchall()]
            return [repr(connection.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables]
    assert isinstance(store, PostgresStateStore)
    with store.connect() as connection:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> "
            "'staged_chunks'",
            [store.db_schema],
        ).fetchall()
        texts = [
            repr(connection.execute(f'SELECT row_to_json(t)::text FROM "{t}" AS t').fetchall())
            for (t,) in tables
        ]
        staged = connection.execute("SELECT sync, kind, batch FROM staged_batches").fetchall()
    return texts + [repr(store.load_batch(*row).rows()) for row in staged]
