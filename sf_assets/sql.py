"""DuckDB helpers shared by the warehouse readers and the embedded state store: quoting names
and values, and fetching a single row the way DuckDB 2 wants it (a result must be read to its
end before the connection runs anything else)."""

from __future__ import annotations

from typing import Any

import duckdb


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
