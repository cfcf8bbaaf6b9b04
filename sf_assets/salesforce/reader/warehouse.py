"""The raw copies in the user's DuckDB warehouse: one table per object (`salesforce.contact`),
upserted by Id.

A record never silently disappears from the copy and is never silently kept as current:
deleted records keep their row with `IsDeleted` true (whether Salesforce said so or a key
comparison found them gone), and records that no longer match the spec's filter keep theirs
with `_sf_archived` true. Every commit stamps the rows it wrote with the next `_sf_seq`, which
is how the merged tables find what changed since they last looked. Each call opens its own
short connection, because the same file is read by the writeback syncs and by people with a
SQL shell.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from sf_assets.specs.ingest import table_name
from sf_assets.sql import add_missing_columns, attached, first_row, quote_identifier, table_exists

SEQ = "_sf_seq"
ARCHIVED = "_sf_archived"
SYNCED_AT = "_sf_synced_at"
ORG = "_sf_org_id"  # the org a copy came from: merged tables key organizations by it
DELETED = "IsDeleted"
CURRENT = f"NOT coalesce({DELETED}, false) AND NOT coalesce({ARCHIVED}, false)"


class Warehouse:
    """The raw copies of one ingest spec, in one schema of one DuckDB file."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self.schema = schema

    def table(self, sobject: str) -> str:
        return f"{quote_identifier(self.schema)}.{quote_identifier(table_name(sobject))}"

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with attached(str(self.path)) as connection:
            connection.execute("SET TimeZone = 'UTC'")
            yield connection

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

    # -- writing -----------------------------------------------------------------------------

    def upsert(self, sobject: str, rows: pl.DataFrame) -> int:
        """Write `rows` (typed, one per record or several: the latest SystemModstamp wins) over
        the copies with the same Id, in one transaction; how many current copies the rows
        marked deleted."""
        deleted = pl.col(DELETED).fill_null(False) if DELETED in rows.columns else pl.lit(False)
        latest = (
            rows.sort("SystemModstamp")
            .unique("Id", keep="last", maintain_order=True)
            .with_columns(deleted.alias(DELETED), pl.lit(False).alias(ARCHIVED))
        )
        table = self.table(sobject)
        with self.transaction() as connection:
            connection.register("incoming", latest.to_arrow())
            self._ensure(connection, sobject)
            seq = self._next_seq(connection, sobject)
            newly_deleted = first_row(
                connection.execute(
                    f"SELECT count(*) FROM {table} WHERE {CURRENT} AND Id IN "
                    f"(SELECT Id FROM incoming WHERE {DELETED})"
                )
            )
            connection.execute(f"DELETE FROM {table} WHERE Id IN (SELECT Id FROM incoming)")
            connection.execute(
                f"INSERT INTO {table} BY NAME "
                f"SELECT *, ? AS {SEQ}, now() AS {SYNCED_AT} FROM incoming",
                [seq],
            )
        return int(newly_deleted[0]) if newly_deleted else 0

    def flag(self, sobject: str, ids: pl.Series, *, column: str) -> int:
        """Set `column` (IsDeleted or _sf_archived) on the current copies of `ids`; how many
        changed. Records the copy never held are not added."""
        if ids.is_empty() or not self.exists(sobject):
            return 0
        table = self.table(sobject)
        with self.transaction() as connection:
            connection.register("gone", pl.DataFrame({"Id": ids.cast(pl.Utf8)}).to_arrow())
            seq = self._next_seq(connection, sobject)
            changed = first_row(
                connection.execute(
                    f"UPDATE {table} SET {quote_identifier(column)} = true, {SEQ} = ?, "
                    f"{SYNCED_AT} = now() WHERE Id IN (SELECT Id FROM gone) AND {CURRENT}",
                    [seq],
                )
            )
        return int(changed[0]) if changed else 0

    def prune(self, sobject: str, created_before: datetime) -> int:
        """Remove copies created before `created_before` (outside a retention window)."""
        if not self.exists(sobject):
            return 0
        with self.transaction() as connection:
            removed = first_row(
                connection.execute(
                    f"DELETE FROM {self.table(sobject)} WHERE CreatedDate < ?", [created_before]
                )
            )
        return int(removed[0]) if removed else 0

    def _ensure(self, connection: duckdb.DuckDBPyConnection, sobject: str) -> None:
        """Create the table from the incoming rows' shape, or add the columns they bring."""
        table = self.table(sobject)
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(self.schema)}")
        if not table_exists(connection, self.schema, table_name(sobject)):
            connection.execute(
                f"CREATE TABLE {table} AS SELECT *, NULL::BIGINT AS {SEQ}, "
                f"NULL::TIMESTAMPTZ AS {SYNCED_AT} FROM incoming LIMIT 0"
            )
            return
        add_missing_columns(connection, table)

    def _next_seq(self, connection: duckdb.DuckDBPyConnection, sobject: str) -> int:
        found = first_row(connection.execute(f"SELECT max({SEQ}) FROM {self.table(sobject)}"))
        return int(found[0] or 0) + 1 if found else 1

    # -- reading -----------------------------------------------------------------------------

    def exists(self, sobject: str) -> bool:
        with self.connect() as connection:
            return table_exists(connection, self.schema, table_name(sobject))

    def current_ids(self, sobject: str) -> pl.Series:
        """Ids of the copies that are neither deleted nor archived."""
        if not self.exists(sobject):
            return pl.Series("Id", [], dtype=pl.Utf8)
        with self.connect() as connection:
            return connection.sql(f"SELECT Id FROM {self.table(sobject)} WHERE {CURRENT}").pl()[
                "Id"
            ]

    def ids_not_seen_since(self, sobject: str, seq: int) -> pl.Series:
        """Current copies no commit from `seq` on has written: a full read did not see them."""
        if not self.exists(sobject):
            return pl.Series("Id", [], dtype=pl.Utf8)
        with self.connect() as connection:
            return connection.sql(
                f"SELECT Id FROM {self.table(sobject)} WHERE {CURRENT} AND {SEQ} < ?", params=[seq]
            ).pl()["Id"]

    def current_count(self, sobject: str) -> int:
        if not self.exists(sobject):
            return 0
        with self.connect() as connection:
            found = first_row(
                connection.execute(f"SELECT count(*) FROM {self.table(sobject)} WHERE {CURRENT}")
            )
        return int(found[0]) if found else 0

    def duplicate_ids(self, sobject: str, limit: int = 20) -> list[str]:
        if not self.exists(sobject):
            return []
        with self.connect() as connection:
            rows = connection.execute(
                f"SELECT Id FROM {self.table(sobject)} GROUP BY Id HAVING count(*) > 1 "
                f"ORDER BY Id LIMIT {int(limit)}"
            ).fetchall()
        return [row[0] for row in rows]

    def still_current(self, sobject: str, ids: pl.Series) -> int:
        """How many of `ids` the copy still holds as current."""
        if ids.is_empty() or not self.exists(sobject):
            return 0
        with self.connect() as connection:
            connection.register("ids", pl.DataFrame({"Id": ids.cast(pl.Utf8)}).to_arrow())
            found = first_row(
                connection.execute(
                    f"SELECT count(*) FROM {self.table(sobject)} "
                    f"WHERE Id IN (SELECT Id FROM ids) AND {CURRENT}"
                )
            )
        return int(found[0]) if found else 0

    def max_seq(self, sobject: str) -> int:
        if not self.exists(sobject):
            return 0
        with self.connect() as connection:
            found = first_row(connection.execute(f"SELECT max({SEQ}) FROM {self.table(sobject)}"))
        return int(found[0] or 0) if found else 0
