"""DuckDB helpers shared by the warehouse readers and the embedded state store: quoting names
and values, fetching a single row the way DuckDB 2 wants it (a result must be read to its
end before the connection runs anything else), and opening a file that other processes open
too."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

import duckdb
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential


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


def open_waiting(
    path: str, *, wait_seconds: float = 120, mode: int | None = None
) -> duckdb.DuckDBPyConnection:
    """A read-write connection to a DuckDB file, waiting (with backoff) while another process
    holds its lock: DuckDB lets one process at a time write a file. A file that does not exist
    yet is created whole first (with `mode`, when given), so that a process opening it at the
    same moment finds a database."""
    file = Path(path)
    if not file.exists():
        _create_whole(file, mode)
    return connect_waiting(path, wait_seconds=wait_seconds)


def connect_waiting(
    path: str, *, wait_seconds: float, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """`duckdb.connect`, tried again (with backoff) while another process holds the file's
    lock, for up to `wait_seconds`; the last lock error is raised after that."""
    retrying = Retrying(
        retry=retry_if_exception(is_locked),
        wait=wait_random_exponential(multiplier=0.02, max=1.0),
        stop=stop_after_delay(wait_seconds),
        reraise=True,
    )
    return retrying(duckdb.connect, path, read_only=read_only)


def is_locked(error: BaseException) -> bool:
    """Whether DuckDB refused a file because another process holds it."""
    return isinstance(error, duckdb.IOException) and "lock" in str(error).lower()


def _create_whole(file: Path, mode: int | None) -> None:
    """DuckDB creates a file before it locks it and writes its header, so a second process
    that opens it in between (two runs' first steps a tenth of a second apart) finds "not a
    valid DuckDB database file". The file is made under a name of its own and linked into
    place, which fails harmlessly when another process got there first."""
    file.parent.mkdir(parents=True, exist_ok=True)
    draft = file.with_name(f".{file.name}.{os.getpid()}.{threading.get_ident()}.new")
    try:
        duckdb.connect(str(draft)).close()
        if mode is not None:
            os.chmod(draft, mode)
        with contextlib.suppress(FileExistsError):
            os.link(draft, file)
    finally:
        for leftover in (draft, draft.with_name(draft.name + ".wal")):
            leftover.unlink(missing_ok=True)


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
