"""DuckDB helpers shared by the warehouse readers and the embedded state store: quoting names
and values, and fetching a single row the way DuckDB 2 wants it (a result must be read to its
end before the connection runs anything else)."""

from __future__ import annotations

from typing import Any

import duckdb
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_random_exponential


def quote_identifier(name: str) -> str:
    """A table or column name as SQL, whatever it holds."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A string as a SQL literal, for the few statements that take no parameters."""
    return "'" + text.replace("'", "''") + "'"


def first_row(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of an executed query, or None; the result is read to its end."""
    rows = result.fetchall()
    return rows[0] if rows else None


def open_waiting(path: str, *, wait_seconds: float = 120) -> duckdb.DuckDBPyConnection:
    """A read-write connection to a DuckDB file, waiting (with backoff) while another process
    holds its lock: DuckDB lets one process at a time write a file."""
    retrying = Retrying(
        retry=retry_if_exception_type(duckdb.IOException),
        wait=wait_random_exponential(multiplier=0.02, max=1.0),
        stop=stop_after_delay(wait_seconds),
        reraise=True,
    )
    return retrying(duckdb.connect, path)


def add_missing_columns(
    connection: duckdb.DuckDBPyConnection, quoted_table: str, source: str = "incoming"
) -> None:
    """Add to a table the columns the registered frame `source` brings and the table lacks
    (compared case-insensitively, as DuckDB resolves names), with the frame's types; rows
    already there get NULL in them."""
    present = {row[0].lower() for row in connection.execute(f"DESCRIBE {quoted_table}").fetchall()}
    for name, sql_type, *_ in connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall():
        if name.lower() not in present:
            connection.execute(
                f"ALTER TABLE {quoted_table} ADD COLUMN {quote_identifier(name)} {sql_type}"
            )
