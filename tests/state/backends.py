"""The state store backends every store test runs against: each entry makes a fresh, empty
store for one test (a file in its temporary folder, or a database of its own on the session's
PostgreSQL server). A new backend is one more entry here."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable

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
