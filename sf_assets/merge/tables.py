"""What the merged tables share: where a merge reads from, what a run reports, and reading the
raw copies whatever fields they happen to hold."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import polars as pl

from sf_assets.sql import quote_identifier


@dataclass(frozen=True)
class Source:
    """A raw copy a merged table is built from."""

    object: str
    schema: str
    name: str

    @property
    def table(self) -> str:
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.name)}"


@dataclass
class MergeReport:
    records: int = 0  # changed copies merged
    created: int = 0
    updated: int = 0
    unlinked: int = 0  # records (or accounts) no longer current
    seen: dict[str, int] = field(default_factory=dict)  # object -> highest _sf_seq merged


def selected_columns(connection: duckdb.DuckDBPyConnection, table: str, wanted: list[str]) -> str:
    """A select list giving each wanted field by its own name, null where the copy lacks it
    (a Lead has no AccountId, a spec may not read every field); the null is untyped, so that
    combined with another copy's rows it takes their type."""
    present = {row[0].lower(): row[0] for row in connection.execute(f"DESCRIBE {table}").fetchall()}
    return ", ".join(
        f"{quote_identifier(present[name.lower()])} AS {quote_identifier(name)}"
        if name.lower() in present
        else f"NULL AS {quote_identifier(name)}"
        for name in dict.fromkeys(wanted)
    )


def upsert(
    connection: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, key: tuple[str, ...]
) -> None:
    """Write `frame`'s rows into `table` by `key`: existing rows get the frame's columns
    updated (columns the user added to the table keep their values), new rows are inserted.
    The table is created from the frame's shape the first time."""
    connection.register("upserted", frame.to_arrow())
    connection.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM upserted LIMIT 0")
    joined = " AND ".join(f"t.{quote_identifier(k)} = u.{quote_identifier(k)}" for k in key)
    updates = ", ".join(
        f"{quote_identifier(c)} = u.{quote_identifier(c)}" for c in frame.columns if c not in key
    )
    connection.execute(f"UPDATE {table} AS t SET {updates} FROM upserted AS u WHERE {joined}")
    connection.execute(
        f"INSERT INTO {table} BY NAME SELECT u.* FROM upserted AS u "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE {joined})"
    )
