"""Ingest cursors: how far each read of a Salesforce object (and each merge of the copies) has
come, kept in sf-assets' state store beside the write ledger.

A cursor moves only after the rows it covers are committed in the warehouse, so a crash between
the two re-reads a little and never skips anything (rows are upserted by Id, so reading them
again is harmless). Every commit is also appended to a history, which the monotonic check and an
on-call engineer read. A cursor is a small JSON document that the reader defines; nothing
secret is ever in it.

The interface is three calls (read, commit several streams in one transaction, list) so that a
state backend other than the embedded DuckDB file only has to provide these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import duckdb

from sf_assets.state.store import StagingStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS ingest_cursors (
    stream VARCHAR NOT NULL, cursor VARCHAR NOT NULL, run_id VARCHAR,
    committed_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS ingest_cursor_history (
    stream VARCHAR NOT NULL, cursor VARCHAR NOT NULL, run_id VARCHAR,
    committed_at TIMESTAMPTZ NOT NULL
);
"""


@dataclass(frozen=True)
class Commit:
    """One past commit of a stream's cursor, for checks and for people investigating a read."""

    cursor: dict[str, Any]
    run_id: str | None
    committed_at: datetime


class CursorStore(Protocol):
    def read(self, stream: str) -> dict[str, Any] | None: ...

    def commit(self, cursors: Mapping[str, Mapping[str, Any]], *, run_id: str) -> None: ...

    def list(self, prefix: str = "") -> dict[str, dict[str, Any]]: ...

    def history(self, stream: str) -> list[Commit]: ...


class StateCursors:
    """Cursors in the state store's DuckDB file, through its own connections."""

    def __init__(self, store: StagingStore) -> None:
        self.store = store

    def read(self, stream: str) -> dict[str, Any] | None:
        with self.store.connect() as connection:
            _prepare(connection)
            rows = connection.execute(
                "SELECT cursor FROM ingest_cursors WHERE stream = ?", [stream]
            ).fetchall()
        return json.loads(rows[0][0]) if rows else None

    def commit(self, cursors: Mapping[str, Mapping[str, Any]], *, run_id: str) -> None:
        """Replace the cursors of every stream given, all or none."""
        if not cursors:
            return
        rows = [
            (stream, json.dumps(dict(value), sort_keys=True)) for stream, value in cursors.items()
        ]
        with self.store.transaction() as connection:
            _prepare(connection)
            for stream, text in rows:
                connection.execute("DELETE FROM ingest_cursors WHERE stream = ?", [stream])
                for table in ("ingest_cursors", "ingest_cursor_history"):
                    connection.execute(
                        f"INSERT INTO {table} VALUES (?, ?, ?, now())", [stream, text, run_id]
                    )

    def list(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        """Every stream whose name starts with `prefix`, with its cursor."""
        with self.store.connect() as connection:
            _prepare(connection)
            rows = connection.execute(
                "SELECT stream, cursor FROM ingest_cursors WHERE starts_with(stream, ?) "
                "ORDER BY stream",
                [prefix],
            ).fetchall()
        return {stream: json.loads(text) for stream, text in rows}

    def history(self, stream: str) -> list[Commit]:
        """Every commit of the stream, oldest first."""
        with self.store.connect() as connection:
            _prepare(connection)
            rows = connection.execute(
                "SELECT cursor, run_id, committed_at FROM ingest_cursor_history "
                "WHERE stream = ? ORDER BY committed_at, rowid",
                [stream],
            ).fetchall()
        return [Commit(json.loads(text), run_id, at) for text, run_id, at in rows]


def _prepare(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute(SCHEMA)
