"""The PostgreSQL state schema, by numbered migrations.

PostgreSQL starts at the tables of the DuckDB file's version 3 (`duckdb_backend.migrations`;
there were never older PostgreSQL stores to adopt); later versions are PostgreSQL's own: the
indexes that its ledger's write speed and lookups need, and what they rely on. Migrating takes
a transaction-level advisory lock first, so many processes starting at once (a daemon, a code
server, the steps of a run) apply each migration exactly once; DDL is transactional in
PostgreSQL, so a store is always at one known version.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from sf_assets.state.model import StateError


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str


# Staged batches are kept as Arrow IPC chunks (see store.py for why), one row per chunk.
MIGRATIONS = (
    Migration(
        3,
        "staged batches, write ledger, write jobs, leases, batch status, Emarsys uploads in "
        "parts with a unique line key, ingest cursors",
        """
        CREATE TABLE write_ledger (
            sync TEXT NOT NULL, batch TEXT NOT NULL, source_key TEXT NOT NULL,
            target_id TEXT, operation TEXT, api TEXT, status TEXT NOT NULL,
            error_code TEXT, error_message TEXT, hint TEXT, content_hash TEXT,
            run_id TEXT, attempt INTEGER NOT NULL, job_id TEXT,
            written_at TIMESTAMPTZ NOT NULL, object TEXT, match_value TEXT
        );
        CREATE INDEX write_ledger_batch ON write_ledger (sync, batch, source_key, attempt);
        CREATE INDEX write_ledger_key ON write_ledger (sync, source_key) WHERE status = 'created';
        CREATE INDEX write_ledger_target ON write_ledger (target_id);
        CREATE INDEX write_ledger_match ON write_ledger (object, lower(match_value))
            WHERE status = 'created';
        CREATE TABLE write_jobs (
            sync TEXT NOT NULL, batch TEXT NOT NULL, job_id TEXT NOT NULL,
            api TEXT NOT NULL, operation TEXT, state TEXT, keys TEXT[],
            run_id TEXT, created_at TIMESTAMPTZ NOT NULL, closed_at TIMESTAMPTZ,
            match_field TEXT, matches TEXT[]
        );
        CREATE INDEX write_jobs_batch ON write_jobs (sync, batch, created_at);
        CREATE TABLE staged_batches (
            sync TEXT NOT NULL, kind TEXT NOT NULL, batch TEXT NOT NULL,
            columns TEXT[] NOT NULL, row_count BIGINT NOT NULL,
            staged_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (sync, kind, batch)
        );
        CREATE TABLE staged_chunks (
            sync TEXT NOT NULL, kind TEXT NOT NULL, batch TEXT NOT NULL, chunk INTEGER NOT NULL,
            payload BYTEA NOT NULL,
            PRIMARY KEY (sync, kind, batch, chunk)
        );
        ALTER TABLE staged_chunks ALTER COLUMN payload SET STORAGE EXTERNAL;
        CREATE TABLE leases (
            sync TEXT NOT NULL, batch TEXT NOT NULL, token TEXT NOT NULL,
            run_id TEXT NOT NULL, host TEXT NOT NULL, pid BIGINT NOT NULL,
            process_started DOUBLE PRECISION, acquired_at TIMESTAMPTZ NOT NULL,
            heartbeat_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (sync, batch)
        );
        CREATE TABLE batches (
            sync TEXT NOT NULL, batch TEXT NOT NULL, status TEXT NOT NULL,
            rows BIGINT, refused BIGINT NOT NULL, run_id TEXT,
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (sync, batch)
        );
        CREATE TABLE emarsys_uploads (
            sync TEXT NOT NULL, batch TEXT NOT NULL, part INTEGER NOT NULL,
            state TEXT NOT NULL, line_count BIGINT NOT NULL, first_order TEXT,
            run_id TEXT, updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (sync, batch, part)
        );
        CREATE TABLE emarsys_sent_lines (
            sync TEXT NOT NULL, line_key TEXT NOT NULL, batch TEXT NOT NULL,
            part INTEGER NOT NULL,
            PRIMARY KEY (sync, line_key)
        );
        CREATE INDEX emarsys_sent_lines_part ON emarsys_sent_lines (sync, batch, part);
        CREATE TABLE ingest_cursors (
            stream TEXT NOT NULL PRIMARY KEY, cursor TEXT NOT NULL, run_id TEXT,
            committed_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE ingest_cursor_history (
            id BIGSERIAL PRIMARY KEY, stream TEXT NOT NULL, cursor TEXT NOT NULL, run_id TEXT,
            committed_at TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX ingest_cursor_history_stream ON ingest_cursor_history (stream, id);
        """,
    ),
    Migration(
        4,
        "ledger indexes that cost less per written row: record ids found by time (BRIN on "
        "written_at), match values indexed only where a row has one",
        """
        DROP INDEX write_ledger_target;
        CREATE INDEX write_ledger_written ON write_ledger USING brin (written_at);
        DROP INDEX write_ledger_match;
        CREATE INDEX write_ledger_match ON write_ledger (object, lower(match_value))
            WHERE status = 'created' AND match_value IS NOT NULL;
        """,
    ),
    Migration(
        5,
        "the created-keys index holds only what inserts created; the batches where another "
        "operation created records are listed, so an insert still finds those keys",
        """
        CREATE TABLE batches_with_other_creations (
            sync TEXT NOT NULL, batch TEXT NOT NULL,
            PRIMARY KEY (sync, batch)
        );
        INSERT INTO batches_with_other_creations
            SELECT DISTINCT sync, batch FROM write_ledger
            WHERE status = 'created' AND operation IS DISTINCT FROM 'insert';
        DROP INDEX write_ledger_key;
        CREATE INDEX write_ledger_key ON write_ledger (sync, source_key)
            WHERE status = 'created' AND operation = 'insert';
        """,
    ),
    Migration(
        6,
        "the unwritten rows of a batch found through an index of their own, a few entries "
        "where the batch index would visit every row",
        # model.UNWRITTEN_STATUSES as of this version, written out: a migration never changes.
        """
        CREATE INDEX write_ledger_unwritten ON write_ledger (sync, batch, source_key)
            WHERE status IN ('failed', 'not_sent');
        """,
    ),
)
LATEST = MIGRATIONS[-1].version


def migrate(connection: psycopg.Connection, schema: str, location: str) -> int:
    """Bring the schema to LATEST in one transaction; the version it had before."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"sf_assets:{schema}"])
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
            "applied_at TIMESTAMPTZ NOT NULL)"
        )
        row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
        current = int(row[0]) if row and row[0] is not None else 0
        if current > LATEST:
            raise StateError(
                f"the state database {location} has schema version {current}, newer than "
                f"this sf-assets knows ({LATEST}): upgrade sf-assets, or point "
                "SF_ASSETS_STATE_URL at another database or schema"
            )
        for migration in MIGRATIONS:
            if migration.version > current:
                connection.execute(migration.sql)
                connection.execute(
                    "INSERT INTO schema_version VALUES (%s, %s, now())",
                    [migration.version, migration.description],
                )
    return current
