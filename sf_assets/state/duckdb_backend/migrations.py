"""The DuckDB state file's schema, by numbered migrations.

`schema_version` records every migration applied; opening a file applies the missing ones in
order, in one transaction, so a file is always at one known version. Migration 1 is the layout
before versioning (written with IF NOT EXISTS, so an unversioned file from then is adopted
as it is); later ones change it. A file from a newer sf-assets is refused rather than guessed
at.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from sf_assets.sql import first_row
from sf_assets.state.model import StateError


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str


MIGRATIONS = (
    Migration(
        1,
        "staged batches, write ledger, write jobs, watermarks, Emarsys batches and lines",
        """
        CREATE TABLE IF NOT EXISTS write_ledger (
            sync VARCHAR NOT NULL, batch VARCHAR NOT NULL, source_key VARCHAR NOT NULL,
            target_id VARCHAR, operation VARCHAR, api VARCHAR, status VARCHAR NOT NULL,
            error_code VARCHAR, error_message VARCHAR, hint VARCHAR, content_hash VARCHAR,
            run_id VARCHAR, attempt INTEGER NOT NULL, job_id VARCHAR,
            written_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE IF NOT EXISTS write_jobs (
            sync VARCHAR NOT NULL, batch VARCHAR NOT NULL, job_id VARCHAR NOT NULL,
            api VARCHAR NOT NULL, operation VARCHAR, state VARCHAR, keys VARCHAR[],
            run_id VARCHAR, created_at TIMESTAMPTZ NOT NULL, closed_at TIMESTAMPTZ
        );
        CREATE TABLE IF NOT EXISTS watermarks (
            sync VARCHAR NOT NULL, batch VARCHAR NOT NULL, updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE IF NOT EXISTS staged_batches (
            sync VARCHAR NOT NULL, kind VARCHAR NOT NULL, batch VARCHAR NOT NULL,
            columns VARCHAR[] NOT NULL, row_count BIGINT NOT NULL,
            staged_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE IF NOT EXISTS emarsys_batches (
            sync VARCHAR NOT NULL, batch VARCHAR NOT NULL, state VARCHAR NOT NULL,
            line_count BIGINT NOT NULL, first_order VARCHAR, run_id VARCHAR,
            updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE IF NOT EXISTS emarsys_lines (
            sync VARCHAR NOT NULL, batch VARCHAR NOT NULL, line_key VARCHAR NOT NULL
        );
        """,
    ),
    Migration(
        2,
        "leases, batch status instead of watermarks, resumable jobs, ledger by object and "
        "match value, Emarsys uploads in parts with a unique line key",
        """
        ALTER TABLE write_ledger ADD COLUMN IF NOT EXISTS object VARCHAR;
        ALTER TABLE write_ledger ADD COLUMN IF NOT EXISTS match_value VARCHAR;
        ALTER TABLE write_jobs ADD COLUMN IF NOT EXISTS match_field VARCHAR;
        ALTER TABLE write_jobs ADD COLUMN IF NOT EXISTS matches VARCHAR[];
        CREATE TABLE leases (
            sync VARCHAR NOT NULL, batch VARCHAR NOT NULL, token VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL, host VARCHAR NOT NULL, pid BIGINT NOT NULL,
            process_started DOUBLE, acquired_at TIMESTAMPTZ NOT NULL,
            heartbeat_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (sync, batch)
        );
        CREATE TABLE batches (
            sync VARCHAR NOT NULL, batch VARCHAR NOT NULL, status VARCHAR NOT NULL,
            rows BIGINT, refused BIGINT NOT NULL, run_id VARCHAR,
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (sync, batch)
        );
        -- The old watermark named the highest batch written; the batches below it are found
        -- again by the sensor and settled by their ledger rows.
        INSERT INTO batches
            SELECT sync, batch, 'written', NULL, 0, NULL, updated_at FROM watermarks;
        DROP TABLE watermarks;
        CREATE TABLE emarsys_uploads (
            sync VARCHAR NOT NULL, batch VARCHAR NOT NULL, part INTEGER NOT NULL,
            state VARCHAR NOT NULL, line_count BIGINT NOT NULL, first_order VARCHAR,
            run_id VARCHAR, updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (sync, batch, part)
        );
        INSERT INTO emarsys_uploads
            SELECT sync, batch, 1, state, line_count, first_order, run_id, updated_at
            FROM emarsys_batches;
        CREATE TABLE emarsys_sent_lines (
            sync VARCHAR NOT NULL, line_key VARCHAR NOT NULL, batch VARCHAR NOT NULL,
            part INTEGER NOT NULL,
            PRIMARY KEY (sync, line_key)
        );
        INSERT OR IGNORE INTO emarsys_sent_lines
            SELECT DISTINCT ON (sync, line_key) sync, line_key, batch, 1 FROM emarsys_lines;
        DROP TABLE emarsys_lines;
        DROP TABLE emarsys_batches;
        """,
    ),
    Migration(
        3,
        "ingest cursors and their history",
        """
        CREATE TABLE IF NOT EXISTS ingest_cursors (
            stream VARCHAR NOT NULL PRIMARY KEY, cursor VARCHAR NOT NULL, run_id VARCHAR,
            committed_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE IF NOT EXISTS ingest_cursor_history (
            stream VARCHAR NOT NULL, cursor VARCHAR NOT NULL, run_id VARCHAR,
            committed_at TIMESTAMPTZ NOT NULL
        );
        """,
    ),
)
LATEST = MIGRATIONS[-1].version


def migrate(connection: duckdb.DuckDBPyConnection, location: str) -> int:
    """Bring the file to LATEST in one transaction; the version it had before."""
    connection.begin()
    try:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, description VARCHAR NOT NULL, "
            "applied_at TIMESTAMPTZ NOT NULL)"
        )
        found = first_row(connection.execute("SELECT max(version) FROM schema_version"))
        current = int(found[0]) if found and found[0] is not None else 0
        if current > LATEST:
            raise StateError(
                f"the state file {location} has schema version {current}, newer than this "
                f"sf-assets knows ({LATEST}): upgrade sf-assets, or point SF_ASSETS_STAGING at "
                "another file"
            )
        for migration in MIGRATIONS:
            if migration.version > current:
                connection.execute(migration.sql)
                connection.execute(
                    "INSERT INTO schema_version VALUES (?, ?, now())",
                    [migration.version, migration.description],
                )
    except BaseException:
        connection.rollback()
        raise
    connection.commit()
    return current
