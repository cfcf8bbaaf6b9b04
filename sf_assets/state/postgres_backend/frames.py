"""Polars frames in and out of PostgreSQL through COPY, the fast path both ways.

Rows go in as CSV written by polars (`COPY … FROM STDIN`), and come out as CSV read by polars
(`COPY (query) TO STDOUT`) with the column types given by the caller, so a ledger of a million
rows never passes through Python objects one row at a time. NULL is spelled as the control character
U+001F both ways (no business value is that one character), so that an empty string stays an
empty string and the text `\\N` stays text. Time stamps travel as microseconds since the epoch,
which both sides read exactly.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
import psycopg
from psycopg import sql

NULL = "\x1f"
CSV_OPTIONS = "FORMAT csv, HEADER true, NULL E'\\x1f'"
UTC_MICROSECONDS = pl.Datetime("us", "UTC")


def copy_in(
    connection: psycopg.Connection, table: str, frame: pl.DataFrame, columns: Sequence[str]
) -> None:
    """Append `frame`'s `columns` to `table` (which may be a temporary table)."""
    if not frame.height:
        return
    buffer = io.BytesIO()
    frame.select(columns).write_csv(buffer, null_value=NULL, quote_style="non_numeric")
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (" + CSV_OPTIONS + ")").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(buffer.getbuffer())


def copy_out(
    connection: psycopg.Connection,
    query: str,
    params: Sequence[Any] | Mapping[str, Any] | None,
    schema: Mapping[str, pl.DataType],
) -> pl.DataFrame:
    """The rows of `query` (whose columns are exactly `schema`'s, in order) as a frame."""
    selected = sql.SQL(", ").join(
        sql.SQL("(extract(epoch FROM q.{0}) * 1000000)::bigint AS {0}").format(sql.Identifier(c))
        if dtype == UTC_MICROSECONDS
        else sql.SQL("q.{}").format(sql.Identifier(c))
        for c, dtype in schema.items()
    )
    statement = sql.SQL("COPY (SELECT {} FROM ({}) AS q) TO STDOUT WITH (" + CSV_OPTIONS + ")")
    composed = statement.format(selected, sql.SQL(query))  # type: ignore[arg-type]
    buffer = io.BytesIO()
    with connection.cursor() as cursor, cursor.copy(composed, params) as copy:
        for block in copy:
            buffer.write(block)
    wire = {c: (pl.Int64 if t == UTC_MICROSECONDS else t) for c, t in schema.items()}
    if not buffer.getbuffer().nbytes:
        return pl.DataFrame(schema=dict(schema))
    buffer.seek(0)
    frame = pl.read_csv(
        buffer,
        schema=wire,
        null_values=NULL,
        empty_string_is_null=False,
    )
    return frame.with_columns(
        pl.from_epoch(pl.col(c), "us").dt.replace_time_zone("UTC")
        for c, t in schema.items()
        if t == UTC_MICROSECONDS
    )
