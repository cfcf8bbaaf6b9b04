"""The DuckDB staging store: staged batches, the write ledger, open write jobs and watermarks.

One file holds the pipeline's state so that a run, a retry in another process or an on-call
engineer with a SQL shell all see the same truth. DuckDB lets one process at a time open a
file for writing and Dagster may run steps in separate processes, so every operation opens its
own short-lived connection, retries while another process holds the lock, and keeps its
transaction short. Nothing secret is ever stored here: no session ids, passwords or tokens.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
from pydantic import Field
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from sf_assets.sql import first_row, quote_identifier

KINDS = ("source", "mapped", "mapping_rejects", "rejects")  # usual kinds; any lowercase name works
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Statuses that settle a key: a re-run sends nothing for it.
SUCCESS_STATUSES = ("created", "updated", "deleted", "not_found")
BATCH_COLUMN = "_batch"
LOCK_WAIT_SECONDS = 120

LEDGER_COLUMNS = {
    "sync": "VARCHAR NOT NULL",
    "batch": "VARCHAR NOT NULL",
    "source_key": "VARCHAR NOT NULL",
    "target_id": "VARCHAR",
    "operation": "VARCHAR",
    "api": "VARCHAR",
    "status": "VARCHAR NOT NULL",
    "error_code": "VARCHAR",
    "error_message": "VARCHAR",
    "hint": "VARCHAR",
    "content_hash": "VARCHAR",
    "run_id": "VARCHAR",
    "attempt": "INTEGER NOT NULL",
    "job_id": "VARCHAR",
    "written_at": "TIMESTAMPTZ NOT NULL",
}
# Columns a caller of record_outcomes provides; the store adds sync, batch, run, attempt, time.
OUTCOME_COLUMNS = (
    "source_key",
    "target_id",
    "operation",
    "api",
    "status",
    "error_code",
    "error_message",
    "hint",
    "content_hash",
    "job_id",
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS write_ledger ({", ".join(f"{c} {t}" for c, t in LEDGER_COLUMNS.items())});
CREATE TABLE IF NOT EXISTS write_jobs (
    sync VARCHAR NOT NULL, batch VARCHAR NOT NULL, job_id VARCHAR NOT NULL, api VARCHAR NOT NULL,
    operation VARCHAR, state VARCHAR, keys VARCHAR[], run_id VARCHAR,
    created_at TIMESTAMPTZ NOT NULL, closed_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS watermarks (
    sync VARCHAR NOT NULL, batch VARCHAR NOT NULL, updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS staged_batches (
    sync VARCHAR NOT NULL, kind VARCHAR NOT NULL, batch VARCHAR NOT NULL,
    columns VARCHAR[] NOT NULL, row_count BIGINT NOT NULL, staged_at TIMESTAMPTZ NOT NULL
);
"""

_prepared: set[str] = set()
_prepared_lock = threading.Lock()


@dataclass(frozen=True)
class OpenJob:
    """A write sent (or about to be sent) whose outcome is not in the ledger yet."""

    job_id: str
    api: str  # "bulk": a Bulk API 2.0 ingest job; "rest": a window of collections calls
    operation: str
    state: str
    keys: list[str]
    run_id: str
    created_at: datetime


class StagingStore(dg.ConfigurableResource):
    """Staged batches and the write ledger in one DuckDB file."""

    path: str = Field(description="DuckDB file; its folder is created on demand.")

    # -- connections ------------------------------------------------------------------------

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection; waits (with backoff) while another process holds the file."""
        connection = self._open()
        try:
            connection.execute("SET TimeZone = 'UTC'")
            self._prepare(connection)
            yield connection
        finally:
            connection.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.connect() as connection:
            connection.begin()
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    def _open(self) -> duckdb.DuckDBPyConnection:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        retrying = Retrying(
            retry=retry_if_exception_type(duckdb.IOException),
            wait=wait_random_exponential(multiplier=0.02, max=1.0),
            stop=stop_after_delay(LOCK_WAIT_SECONDS),
            reraise=True,
        )
        return retrying(duckdb.connect, self.path)

    def _prepare(self, connection: duckdb.DuckDBPyConnection) -> None:
        key = str(Path(self.path).resolve())
        with _prepared_lock:
            if key in _prepared:
                return
            connection.execute(SCHEMA)
            _prepared.add(key)

    # -- staged batches ---------------------------------------------------------------------

    def replace_batch(self, sync: str, kind: str, batch: str, frame: pl.DataFrame) -> None:
        """Store `frame` as this batch of `<sync>__<kind>`, replacing what was there.

        The batch's own column list is kept, so that a batch loads back with its columns even
        when it is empty or when later batches widened the table.
        """
        table = _table(sync, kind)
        if BATCH_COLUMN in frame.columns:
            raise ValueError(f"a staged frame may not have a column named {BATCH_COLUMN!r}")
        frame = frame.with_columns(
            pl.col(c).cast(pl.Utf8) for c, t in frame.schema.items() if t == pl.Null
        )
        with self.transaction() as connection:
            if frame.width:
                connection.register("incoming", frame.to_arrow())
                self._widen(connection, table)
                connection.execute(
                    f"DELETE FROM {quote_identifier(table)} WHERE {BATCH_COLUMN} = ?", [batch]
                )
                connection.execute(
                    f"INSERT INTO {quote_identifier(table)} BY NAME "
                    f"SELECT ?::VARCHAR AS {BATCH_COLUMN}, * FROM incoming",
                    [batch],
                )
            elif _exists(connection, table):
                connection.execute(
                    f"DELETE FROM {quote_identifier(table)} WHERE {BATCH_COLUMN} = ?", [batch]
                )
            connection.execute(
                "DELETE FROM staged_batches WHERE sync = ? AND kind = ? AND batch = ?",
                [sync, kind, batch],
            )
            connection.execute(
                "INSERT INTO staged_batches VALUES (?, ?, ?, ?, ?, now())",
                [sync, kind, batch, frame.columns, frame.height],
            )

    def _widen(self, connection: duckdb.DuckDBPyConnection, table: str) -> None:
        """Create the table from the incoming frame, or add the columns it brings."""
        if not _exists(connection, table):
            connection.execute(
                f"CREATE TABLE {quote_identifier(table)} AS "
                f"SELECT NULL::VARCHAR AS {BATCH_COLUMN}, * FROM incoming LIMIT 0"
            )
            return
        present = {
            row[0].lower()
            for row in connection.execute(f"DESCRIBE {quote_identifier(table)}").fetchall()
        }
        for name, sql_type, *_ in connection.execute("DESCRIBE SELECT * FROM incoming").fetchall():
            if name.lower() not in present:
                connection.execute(
                    f"ALTER TABLE {quote_identifier(table)} ADD COLUMN {quote_identifier(name)} {sql_type}"
                )

    def load_batch(self, sync: str, kind: str, batch: str) -> pl.DataFrame:
        """The batch as stored (without `_batch`); an empty frame without columns if never staged."""
        table = _table(sync, kind)
        with self.connect() as connection:
            found = first_row(
                connection.execute(
                    "SELECT columns FROM staged_batches WHERE sync = ? AND kind = ? AND batch = ?",
                    [sync, kind, batch],
                )
            )
            if found is None or not found[0]:
                return pl.DataFrame()
            selected = ", ".join(quote_identifier(c) for c in found[0])
            return connection.sql(
                f"SELECT {selected} FROM {quote_identifier(table)} WHERE {BATCH_COLUMN} = ?",
                params=[batch],
            ).pl()

    # -- ledger and watermarks ----------------------------------------------------------------

    def watermark(self, sync: str) -> str | None:
        """The highest batch id (string order) whose write finished with every row answered."""
        with self.connect() as connection:
            found = first_row(
                connection.execute("SELECT max(batch) FROM watermarks WHERE sync = ?", [sync])
            )
        return found[0] if found else None

    def ledger(self, sync: str, batch: str | None = None) -> pl.DataFrame:
        """Every write attempt of the sync (or of one batch), newest last."""
        where, params = _scope(sync, batch)
        with self.connect() as connection:
            return connection.sql(
                f"SELECT * FROM write_ledger WHERE {where} "
                "ORDER BY written_at, attempt, source_key",
                params=params,
            ).pl()

    def latest_outcomes(self, sync: str, batch: str) -> pl.DataFrame:
        """One row per key of the batch: its latest attempt."""
        with self.connect() as connection:
            return connection.sql(
                "SELECT * FROM write_ledger WHERE sync = ? AND batch = ? "
                "QUALIFY row_number() OVER (PARTITION BY source_key ORDER BY attempt DESC) = 1 "
                "ORDER BY source_key",
                params=[sync, batch],
            ).pl()

    def successful_keys(self, sync: str, batch: str) -> pl.Series:
        """Keys of the batch that Salesforce has confirmed as written."""
        with self.connect() as connection:
            frame = connection.sql(
                "SELECT DISTINCT source_key FROM write_ledger "
                "WHERE sync = ? AND batch = ? AND status IN "
                f"({', '.join(repr(s) for s in SUCCESS_STATUSES)})",
                params=[sync, batch],
            ).pl()
        return frame["source_key"]

    def written_hashes(self, sync: str, batch: str) -> pl.DataFrame:
        """Per key of the batch, the content hash of its latest successful write: what
        Salesforce holds now, so change detection can skip rows whose hash is the same."""
        with self.connect() as connection:
            return connection.sql(
                "SELECT source_key, content_hash FROM write_ledger "
                "WHERE sync = ? AND batch = ? AND status IN ('created', 'updated') "
                "QUALIFY row_number() OVER (PARTITION BY source_key ORDER BY attempt DESC) = 1",
                params=[sync, batch],
            ).pl()

    def record_outcomes(
        self,
        sync: str,
        batch: str,
        outcomes: pl.DataFrame,
        *,
        run_id: str,
        close_jobs: Sequence[tuple[str, str]] = (),
        watermark: bool = False,
    ) -> None:
        """Append outcomes, close the jobs they came from and move the watermark, all at once.

        `outcomes` has the columns of OUTCOME_COLUMNS; each row's attempt number follows the
        key's previous attempts. `close_jobs` holds (job_id, final state) pairs.
        """
        missing = set(OUTCOME_COLUMNS) - set(outcomes.columns)
        if missing:
            raise ValueError(f"outcomes lack columns: {', '.join(sorted(missing))}")
        incoming = outcomes.select(pl.col(c).cast(pl.Utf8) for c in OUTCOME_COLUMNS)
        with self.transaction() as connection:
            if incoming.height:
                self._append_ledger(connection, sync, batch, incoming, run_id)
            for job_id, state in close_jobs:
                connection.execute(
                    "UPDATE write_jobs SET state = ?, closed_at = now() "
                    "WHERE job_id = ? AND closed_at IS NULL",
                    [state, job_id],
                )
            if watermark:
                self._raise_watermark(connection, sync, batch)

    def _append_ledger(
        self,
        connection: duckdb.DuckDBPyConnection,
        sync: str,
        batch: str,
        incoming: pl.DataFrame,
        run_id: str,
    ) -> None:
        connection.register("incoming", incoming.to_arrow())
        connection.execute(
            """
            INSERT INTO write_ledger BY NAME
            SELECT incoming.*, $sync AS sync, $batch AS batch, $run_id AS run_id,
                   (coalesce(previous.attempt, 0) + 1)::INTEGER AS attempt, now() AS written_at
            FROM incoming
            LEFT JOIN (
                SELECT source_key, max(attempt) AS attempt FROM write_ledger
                WHERE sync = $sync AND batch = $batch
                  AND source_key IN (SELECT source_key FROM incoming)
                GROUP BY source_key
            ) AS previous USING (source_key)
            """,
            {"sync": sync, "batch": batch, "run_id": run_id},
        )

    def raise_watermark(self, sync: str, batch: str) -> None:
        """Move the watermark to `batch` unless it is already there or beyond (targets whose
        outcomes are not rows of this ledger, such as Emarsys uploads, call this directly)."""
        with self.transaction() as connection:
            self._raise_watermark(connection, sync, batch)

    def _raise_watermark(
        self, connection: duckdb.DuckDBPyConnection, sync: str, batch: str
    ) -> None:
        current = first_row(
            connection.execute("SELECT max(batch) FROM watermarks WHERE sync = ?", [sync])
        )[0]
        if current is not None and current >= batch:
            return
        connection.execute("DELETE FROM watermarks WHERE sync = ?", [sync])
        connection.execute("INSERT INTO watermarks VALUES (?, ?, now())", [sync, batch])

    # -- write jobs --------------------------------------------------------------------------

    def start_job(
        self,
        sync: str,
        batch: str,
        *,
        job_id: str,
        api: str,
        operation: str,
        keys: Sequence[str] | pl.Series,
        run_id: str,
        state: str,
    ) -> None:
        """Remember a write before its data leaves, so a crash can be resolved from it later."""
        record = pl.DataFrame(
            {
                "sync": [sync],
                "batch": [batch],
                "job_id": [job_id],
                "api": [api],
                "operation": [operation],
                "state": [state],
                "keys": [pl.Series(keys, dtype=pl.Utf8)],
                "run_id": [run_id],
            }
        )
        with self.transaction() as connection:
            connection.register("incoming", record.to_arrow())
            connection.execute(
                "INSERT INTO write_jobs BY NAME SELECT *, now() AS created_at FROM incoming"
            )

    def open_jobs(self, sync: str, batch: str) -> list[OpenJob]:
        """Writes of this batch whose outcome has not been recorded yet, oldest first."""
        with self.connect() as connection:
            rows = connection.execute(
                "SELECT job_id, api, operation, state, keys, run_id, created_at FROM write_jobs "
                "WHERE sync = ? AND batch = ? AND closed_at IS NULL ORDER BY created_at",
                [sync, batch],
            ).fetchall()
        return [OpenJob(*row[:4], list(row[4] or []), *row[5:]) for row in rows]

    def jobs(self, sync: str, batch: str | None = None) -> pl.DataFrame:
        """Every write job of the sync (or batch), without the keys they carried."""
        where, params = _scope(sync, batch)
        with self.connect() as connection:
            return connection.sql(
                "SELECT * EXCLUDE (keys), len(keys) AS key_count FROM write_jobs "
                f"WHERE {where} ORDER BY created_at",
                params=params,
            ).pl()


def _table(sync: str, kind: str) -> str:
    if not KIND_PATTERN.match(kind) or not KIND_PATTERN.match(sync):
        raise ValueError(
            f"sync and kind must be lowercase names (e.g. {', '.join(KINDS)}), "
            f"not {sync!r} and {kind!r}"
        )
    return f"{sync}__{kind}"


def _exists(connection: duckdb.DuckDBPyConnection, table: str) -> bool:
    found = first_row(
        connection.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'",
            [table],
        )
    )
    return bool(found and found[0])


def _scope(sync: str, batch: str | None) -> tuple[str, list[Any]]:
    if batch is None:
        return "sync = ?", [sync]
    return "sync = ? AND batch = ?", [sync, batch]
