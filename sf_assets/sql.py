"""DuckDB helpers shared by the warehouse readers and the embedded state store: quoting names
and values, fetching a single row the way DuckDB 2 wants it (a result must be read to its
end before the connection runs anything else), and opening a file that other processes open
too."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
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


@contextlib.contextmanager
def attached(
    path: str, *, wait_seconds: float = 120, mode: int | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection whose default database is the DuckDB file at `path`, waiting
    (with backoff) while another process holds the file's lock: DuckDB lets one process at a
    time write a file. A file that does not exist yet is created whole first (with `mode`, when
    given), so that a process opening it at the same moment finds a database. The file is held
    only while a connection of this process uses it."""
    file = Path(path)
    if not file.exists():
        _create_whole(file, mode)
    with FILES.connection(str(file.resolve()), wait_seconds) as connection:
        yield connection


class AttachedFiles:
    """One in-memory DuckDB database per process, to which files are attached while in use.

    Starting a DuckDB database builds its catalog of built-in functions, 30-40 ms every time,
    and the state store opens its file for every operation (a materialization makes dozens).
    Attaching a file to a database that already runs takes a few milliseconds and the same
    file lock, which DETACH gives back, so another process waits no longer than it did when
    each operation had a database of its own. Threads that use one file at the same time share
    its attachment (DuckDB refuses to attach a file twice), as they shared DuckDB's cached
    database before; the last one out detaches it. Each file has a lock of its own, so a thread
    waiting for a file another process holds keeps no thread from the other files. A forked
    child starts a database of its own, since a DuckDB database does not survive a fork.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the database and the table of files
        self._pid = 0
        self._database: duckdb.DuckDBPyConnection | None = None
        self._files: dict[str, _File] = {}
        self._inherited: list[duckdb.DuckDBPyConnection] = []

    @contextlib.contextmanager
    def connection(self, path: str, wait_seconds: float) -> Iterator[duckdb.DuckDBPyConnection]:
        alias = self._attach(path, wait_seconds)
        try:
            with contextlib.closing(self._base().cursor()) as cursor:
                cursor.execute(f"USE {quote_identifier(alias)}")
                yield cursor
        finally:
            self._detach(path)

    def _base(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._database is not None and self._pid != os.getpid():
                # never closed here: its threads stayed in the parent, so closing it could hang
                self._inherited.append(self._database)
                self._database = None
            if self._database is None:
                self._database, self._pid, self._files = duckdb.connect(":memory:"), os.getpid(), {}
            return self._database

    def _file(self, path: str) -> _File:
        self._base()  # a forked child starts with no files
        with self._lock:
            return self._files.setdefault(path, _File())

    def _attach(self, path: str, wait_seconds: float) -> str:
        alias = _alias(path)
        file = self._file(path)
        with file.lock:
            if file.users == 0:
                statement = f"ATTACH {quote_literal(path)} AS {quote_identifier(alias)}"
                _waiting(wait_seconds)(self._execute, statement)
            file.users += 1
        return alias

    def _detach(self, path: str) -> None:
        file = self._file(path)
        with file.lock:
            file.users -= 1
            if file.users == 0:
                self._execute(f"DETACH {quote_identifier(_alias(path))}")

    def _execute(self, statement: str) -> None:
        """ATTACH and DETACH act on the whole database; a cursor of its own lets threads run
        them side by side (one DuckDB connection is not for two threads at once)."""
        with contextlib.closing(self._base().cursor()) as cursor:
            cursor.execute(statement)


@dataclass
class _File:
    """A file's attachment: how many connections of this process use it, and the lock that
    makes its ATTACH and DETACH one at a time."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


FILES = AttachedFiles()


def _alias(path: str) -> str:
    return "file_" + hashlib.sha1(path.encode()).hexdigest()[:16]


def _waiting(wait_seconds: float) -> Retrying:
    """Tries again (with backoff) while another process holds a file's lock, for up to
    `wait_seconds`; the last lock error is raised after that."""
    return Retrying(
        retry=retry_if_exception(is_locked),
        wait=wait_random_exponential(multiplier=0.02, max=1.0),
        stop=stop_after_delay(wait_seconds),
        reraise=True,
    )


def connect_waiting(
    path: str, *, wait_seconds: float, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """`duckdb.connect`, tried again (with backoff) while another process holds the file's
    lock, for up to `wait_seconds`; the last lock error is raised after that. For files of
    the user's, whose SQL may name the file's own catalog (DuckDB names it after the file)."""
    return _waiting(wait_seconds)(duckdb.connect, path, read_only=read_only)


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


def table_exists(connection: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether the connection's default database has the table; asked of the catalog, since a
    failed query would abort the transaction it runs in."""
    found = connection.execute(
        "SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ?",
        [schema, table],
    ).fetchall()
    return bool(found)


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
