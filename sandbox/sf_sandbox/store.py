"""The org's records in DuckDB: one table per object, in memory or in a file (`--state`).

DuckDB gives the sandbox set-based writes (a million-row Bulk job is one INSERT from an Arrow
frame) and lets SOQL compile to SQL. One connection, guarded by a lock, because the HTTP server
may call in from worker threads.

A state file holds the org's credentials and records, so it is created readable by its owner
only. Besides one table per object it keeps the org's own bookkeeping: id counters, the
objects and fields created through the Metadata API (so they come back after a restart), and
when the recycle bin was last emptied.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from sf_sandbox.ids import make_ids
from sf_sandbox.schema import Schema, SObject


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def first_row(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of an executed query, or None; DuckDB wants a result read to its end
    before the connection runs anything else."""
    rows = result.fetchall()
    return rows[0] if rows else None


def utc_now() -> datetime:
    """Naive UTC with millisecond precision, the resolution Salesforce keeps."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@contextmanager
def private_files() -> Iterator[None]:
    """Files created in the block are readable and writable by their owner only."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def connect(path: Path | None) -> duckdb.DuckDBPyConnection:
    """An in-memory database, or the state file, created (or tightened) to mode 0600."""
    if path is None:
        return duckdb.connect(":memory:")
    with private_files():
        con = duckdb.connect(str(path))
    os.chmod(path, 0o600)
    return con


class Store:
    def __init__(self, schema: Schema, path: Path | None = None) -> None:
        self.schema = schema
        self.path = path
        self.lock = threading.RLock()
        self.con = connect(path)
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS _counters (object VARCHAR PRIMARY KEY, next BIGINT)"
        )
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS _schema_changes "
            "(seq BIGINT PRIMARY KEY, kind VARCHAR, definition VARCHAR)"
        )
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS _recycle_bin (object VARCHAR PRIMARY KEY, "
            "emptied_through TIMESTAMP)"
        )
        for sobject in schema.objects.values():
            self.ensure_table(sobject)

    def checkpoint(self) -> None:
        """Move what the write-ahead log holds into the (private) state file."""
        if self.path is not None:
            with self.lock:
                self.con.execute("CHECKPOINT")

    def ensure_table(self, sobject: SObject) -> None:
        """Create the object's table, or add columns for fields created since."""
        with self.lock:
            columns = ", ".join(f"{quote(f.name)} {f.duckdb_type}" for f in sobject.fields.values())
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {quote(sobject.name)} ({columns})")
            existing = {
                row[0].lower()
                for row in self.con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                    [sobject.name],
                ).fetchall()
            }
            for f in sobject.fields.values():
                if f.name.lower() not in existing:
                    self.con.execute(
                        f"ALTER TABLE {quote(sobject.name)} ADD COLUMN {quote(f.name)} {f.duckdb_type}"
                    )

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.lock:
            self.con.execute("BEGIN TRANSACTION")
            try:
                yield self.con
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            self.con.execute("COMMIT")

    @contextmanager
    def registered(self, name: str, frame: pl.DataFrame) -> Iterator[duckdb.DuckDBPyConnection]:
        """`frame` visible to SQL as `name` for the duration of the block."""
        with self.lock:
            self.con.register(name, frame)
            try:
                yield self.con
            finally:
                self.con.unregister(name)

    def query(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        with self.lock:
            return self.con.sql(sql, params=list(params)).pl()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self.lock:
            row = first_row(self.con.execute(sql, list(params)))
        return row[0] if row else None

    def new_ids(self, sobject: SObject, count: int) -> pl.Series:
        """Reserve `count` ids; the counter lives in the database so ids survive restarts."""
        with self.lock:
            row = first_row(
                self.con.execute("SELECT next FROM _counters WHERE object = ?", [sobject.name])
            )
            first = row[0] if row else 1
            self.con.execute(
                "INSERT OR REPLACE INTO _counters VALUES (?, ?)", [sobject.name, first + count]
            )
        return make_ids(sobject.key_prefix, first, count)

    def find(
        self, sobject: SObject, field: str, values: pl.Series, *, case_insensitive: bool
    ) -> pl.DataFrame:
        """Records whose `field` equals one of `values`: columns key, Id, IsDeleted."""
        keys = pl.DataFrame({"key": values.cast(pl.Utf8)}).unique()
        column = f"CAST(t.{quote(field)} AS VARCHAR)"
        key = "k.key"
        if case_insensitive:
            column, key = f"lower({column})", "lower(k.key)"
        with self.registered("_keys", keys) as con:
            return con.sql(
                "SELECT k.key AS key, t.Id AS Id, t.IsDeleted AS IsDeleted "
                f"FROM _keys k JOIN {quote(sobject.name)} t ON {column} = {key}"
            ).pl()

    def insert(self, sobject: SObject, frame: pl.DataFrame) -> None:
        with self.registered("_rows", frame) as con:
            con.execute(f"INSERT INTO {quote(sobject.name)} BY NAME SELECT * FROM _rows")

    def update(
        self, sobject: SObject, frame: pl.DataFrame, fields: list[str], *, stamp: bool = True
    ) -> None:
        """Apply `frame` (Id, each field, and `__null__<field>` flags) to existing records.

        A null value leaves the field as it is unless its flag asks for null, which is how
        both REST (absent key vs JSON null) and Bulk (empty cell vs `#N/A`) behave. A write
        through the API stamps the records with `frame`'s `__now`; an administrator's patch
        (`stamp=False`) leaves the system fields to what it sets itself.
        """
        assignments = [
            f"{quote(f)} = CASE WHEN r.{quote('__null__' + f)} THEN NULL "
            f"ELSE coalesce(r.{quote(f)}, t.{quote(f)}) END"
            for f in fields
        ]
        if stamp:
            assignments += ["LastModifiedDate = r.__now", "SystemModstamp = r.__now"]
        with self.registered("_rows", frame) as con:
            con.execute(
                f"UPDATE {quote(sobject.name)} AS t SET {', '.join(assignments)} "
                "FROM _rows r WHERE t.Id = r.Id"
            )

    def delete(self, sobject: SObject, ids: list[str], *, hard: bool) -> None:
        """Soft delete keeps the record for queryAll and getDeleted; hard delete removes it."""
        if not ids:
            return
        table = quote(sobject.name)
        with self.registered("_ids", pl.DataFrame({"Id": ids})) as con:
            if hard:
                con.execute(f"DELETE FROM {table} WHERE Id IN (SELECT Id FROM _ids)")
            else:
                con.execute(
                    f"UPDATE {table} SET IsDeleted = true, SystemModstamp = ? "
                    "WHERE Id IN (SELECT Id FROM _ids)",
                    [utc_now()],
                )

    def records(
        self, sobject: SObject, ids: list[str], *, include_deleted: bool = False
    ) -> pl.DataFrame:
        """Whole records by id, in no particular order."""
        if not ids:
            return pl.DataFrame()
        deleted = "" if include_deleted else " AND NOT IsDeleted"
        with self.registered("_ids", pl.DataFrame({"Id": ids})) as con:
            return con.sql(
                f"SELECT * FROM {quote(sobject.name)} WHERE Id IN (SELECT Id FROM _ids){deleted}"
            ).pl()

    def count(self, sobject: SObject) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {quote(sobject.name)} WHERE NOT IsDeleted"))

    # -- the recycle bin ----------------------------------------------------------------------

    def empty_recycle_bin(self, sobject: SObject) -> int:
        """Hard-delete the object's deleted records; remember the latest deletion purged,
        since getDeleted cannot answer for a window that reaches back before it."""
        table = quote(sobject.name)
        with self.transaction() as con:
            count, latest = first_row(
                con.execute(f"SELECT count(*), max(SystemModstamp) FROM {table} WHERE IsDeleted")
            ) or (0, None)
            if not count:
                return 0
            con.execute(f"DELETE FROM {table} WHERE IsDeleted")
            con.execute(
                "INSERT INTO _recycle_bin VALUES (?, ?) ON CONFLICT (object) DO UPDATE SET "
                "emptied_through = greatest(emptied_through, excluded.emptied_through)",
                [sobject.name, latest],
            )
        return int(count)

    def recycle_bin_emptied_through(self, sobject: SObject) -> datetime | None:
        """The latest deletion that has been purged from the recycle bin, if any."""
        return self.scalar(
            "SELECT emptied_through FROM _recycle_bin WHERE object = ?", [sobject.name]
        )

    # -- objects and fields created while the org runs ---------------------------------------

    def save_schema_change(self, kind: str, definition: dict[str, Any]) -> None:
        with self.lock:
            self.con.execute(
                "INSERT INTO _schema_changes SELECT coalesce(max(seq), 0) + 1, ?, ? "
                "FROM _schema_changes",
                [kind, json.dumps(definition)],
            )

    def schema_changes(self) -> list[tuple[str, dict[str, Any]]]:
        """(kind, definition) of every saved change, in the order they were made."""
        with self.lock:
            rows = self.con.execute(
                "SELECT kind, definition FROM _schema_changes ORDER BY seq"
            ).fetchall()
        return [(kind, json.loads(definition)) for kind, definition in rows]

    def close(self) -> None:
        with self.lock:
            self.con.close()
