"""Reading a DuckDB table, view or `sql:` query: opened read-only for each call and closed
before returning, so a warehouse that others write to is held as briefly as possible."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl
import pyarrow as pa
from polars.exceptions import PanicException

from sf_assets.sources.schema import DatasetError, Schema, checked_schema, listing
from sf_assets.specs import DuckDBSource, LoadedSpec
from sf_assets.sql import connect_waiting, first_row, is_locked, quote_identifier, quote_literal

SQL_VIEW = "__sync_source__"  # the temporary view a `sql:` source is read through
T = TypeVar("T")


@dataclass(frozen=True)
class _Relation:
    """The name to select from, and whether scanning it already gives a deterministic order."""

    sql: str
    ordered: bool


class DuckDBReader:
    def __init__(self, loaded: LoadedSpec, source: DuckDBSource) -> None:
        self._spec = loaded.spec
        self._source = source
        self._path = loaded.resolve(source.duckdb)
        self._root = loaded.root

    def schema(self) -> Schema:
        with self._connect() as con:
            return self._schema(con, self._relation(con))

    def found_columns(self) -> Schema:
        with self._connect() as con:
            return self._found(con, self._relation(con))

    def batch_ids(self, column: str) -> list[str]:
        with self._connect() as con:
            relation = self._relation(con)
            self._schema(con, relation)
            name = quote_identifier(column)
            query = (
                f"SELECT DISTINCT CAST({name} AS VARCHAR) FROM {relation.sql} "
                f"WHERE {name} IS NOT NULL"
            )
            return self._arrow(con, query).column(0).to_pylist()

    def rows(self, column: str | None, batch_id: str | None) -> pl.DataFrame:
        with self._connect() as con:
            relation = self._relation(con)
            schema = self._schema(con, relation)
            query = f"SELECT * FROM {relation.sql}"
            params: list[str] = []
            if column is not None and batch_id is not None:
                query += f" WHERE CAST({quote_identifier(column)} AS VARCHAR) = ?"
                params.append(batch_id)
            if not relation.ordered:
                query += " ORDER BY " + self._order_by(schema)
            return self._fetch(con, query, params)

    def _order_by(self, schema: Schema) -> str:
        """Key first, then every other column, so rows that tie on the key still sort the same."""
        key = self._spec.key_column
        columns = [key, *(name for name in schema if name != key)]
        return ", ".join(f"{quote_identifier(name)} NULLS LAST" for name in columns)

    def _schema(self, con: duckdb.DuckDBPyConnection, relation: _Relation) -> Schema:
        return checked_schema(self._spec, self._found(con, relation))

    def _found(self, con: duckdb.DuckDBPyConnection, relation: _Relation) -> Schema:
        return dict(self._fetch(con, f"SELECT * FROM {relation.sql} LIMIT 0", []).schema)

    def _fetch(self, con: duckdb.DuckDBPyConnection, query: str, params: list[str]) -> pl.DataFrame:
        return _to_polars(self._spec.name, self._arrow(con, query, params))

    def _arrow(
        self, con: duckdb.DuckDBPyConnection, query: str, params: list[str] | None = None
    ) -> pa.Table:
        return self._guarded(lambda: con.sql(query, params=params or []).to_arrow_table())

    def _guarded(self, action: Callable[[], T]) -> T:
        """Runs a query, turning DuckDB's error into one that names the sync and the source."""
        try:
            return action()
        except duckdb.Error as error:
            source = self._source
            what = "the source SQL fails" if source.sql else f"cannot read {source.table!r}"
            raise DatasetError(f"{self._spec.name}: {what}: {error}") from None

    def _relation(self, con: duckdb.DuckDBPyConnection) -> _Relation:
        if self._source.sql is not None:
            return self._sql_relation(con, self._source.sql)
        assert self._source.table is not None
        return _table_relation(self._spec.name, con, self._source.table)

    def _sql_relation(self, con: duckdb.DuckDBPyConnection, sql: str) -> _Relation:
        """The query as a temporary view of this connection.

        A view takes the text as written (a trailing `;` or comment included), which pasting it
        into a subquery would not; checking first that it is one SELECT keeps the text from
        smuggling in a second statement.
        """
        try:
            kinds = [statement.type for statement in con.extract_statements(sql)]
        except duckdb.Error as error:
            raise DatasetError(f"{self._spec.name}: the source SQL fails: {error}") from None
        if kinds != [duckdb.StatementType.SELECT]:
            found = ", ".join(kind.name for kind in kinds) or "nothing"
            raise DatasetError(
                f"{self._spec.name}: the source SQL must be one SELECT statement (found: {found})"
            )
        self._guarded(lambda: con.execute(f"CREATE TEMPORARY VIEW {SQL_VIEW} AS {sql}"))
        return _Relation(SQL_VIEW, ordered=_has_order_by(con, sql))

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if not self._path.is_file():
            raise DatasetError(f"{self._spec.name}: DuckDB file {self._path} does not exist")
        con = _open_read_only(self._spec.name, self._path)
        try:
            # Session settings only: a connection that joined another one's database must not
            # change how that one behaves.
            con.execute("SET SESSION preserve_insertion_order = true")
            con.execute(f"SET SESSION file_search_path = {quote_literal(str(self._root))}")
            yield con
        finally:
            con.close()


LOCK_WAIT_SECONDS = 30


def _open_read_only(sync: str, path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection, or a clear DatasetError when DuckDB's locking forbids one.

    DuckDB lets one process write a file and nobody else open it meanwhile; within one process it
    keeps a single database per file, which a read-only open cannot share with a writer. A
    pipeline that holds the file to write a batch usually lets go within seconds, so the open
    waits for it a while (`LOCK_WAIT_SECONDS`) before giving up.
    """
    try:
        return connect_waiting(str(path), wait_seconds=LOCK_WAIT_SECONDS, read_only=True)
    except duckdb.ConnectionException as error:
        if "different configuration" not in str(error):
            raise DatasetError(f"{sync}: cannot open DuckDB file {path}: {error}") from None
        return _join_open_database(sync, path)
    except duckdb.IOException as error:
        if is_locked(error):
            raise DatasetError(
                f"{sync}: DuckDB file {path} stayed locked for {LOCK_WAIT_SECONDS} s by another "
                "process that has it open for writing; DuckDB lets no other process read it "
                f"until that one closes it: close it, then run again ({error})"
            ) from None
        raise DatasetError(f"{sync}: cannot open DuckDB file {path}: {error}") from None


def _join_open_database(sync: str, path: Path) -> duckdb.DuckDBPyConnection:
    """A connection to the database this process already holds open for writing.

    It shares the writer's database and sees what the writer has committed. The reader only runs
    SELECTs on it, plus the temporary view of a `sql:` source, which no other connection sees.
    """
    try:
        return duckdb.connect(str(path))
    except duckdb.Error as error:
        raise DatasetError(
            f"{sync}: DuckDB file {path} is already open in this process with settings a reader "
            f"cannot share: {error}"
        ) from None


def _table_relation(sync: str, con: duckdb.DuckDBPyConnection, table: str) -> _Relation:
    """The table or view the spec names, found in the catalog the way DuckDB resolves names.

    Looking it up (rather than pasting the name into SQL) lets the error list what exists, and
    tells a table (insertion order) from a view (no order of its own).
    """
    parts = _name_parts(table)
    if parts is None:
        raise DatasetError(
            f"{sync}: {table!r} is not a table name; write table, schema.table or "
            'database.schema.table (double-quote parts that contain dots, e.g. crm."a.b")'
        )
    objects = _catalog(con)
    found = next((item for item in _candidates(con, parts) if item in objects), None)
    if found is None:
        names = sorted(f"{schema}.{name}" for _, schema, name in objects)
        raise DatasetError(
            f"{sync}: DuckDB file has no table or view {table!r} "
            f"(tables and views: {listing(names)})"
        )
    return _Relation(
        ".".join(quote_identifier(part) for part in found), ordered=objects[found] == "table"
    )


def _catalog(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str, str], str]:
    """(database, schema, name) lower-cased → "table" or "view", for the file's own objects."""
    rows = con.execute(
        "SELECT database_name, schema_name, table_name, 'table' FROM duckdb_tables() "
        "UNION ALL SELECT database_name, schema_name, view_name, 'view' FROM duckdb_views() "
        "WHERE NOT internal"
    ).fetchall()
    return {
        (database.lower(), schema.lower(), name.lower()): kind
        for database, schema, name, kind in rows
        if database not in ("system", "temp")
    }


def _candidates(con: duckdb.DuckDBPyConnection, parts: list[str]) -> list[tuple[str, str, str]]:
    """Where DuckDB would look for a 1-, 2- or 3-part name, lower-cased (names are case-blind)."""
    row = first_row(con.execute("SELECT current_database()"))
    assert row is not None
    database, lowered = row[0].lower(), [part.lower() for part in parts]
    match lowered:
        case [name]:
            return [(database, "main", name)]
        case [first, name]:
            return [(database, first, name), (first, "main", name)]
        case [catalog, schema, name]:
            return [(catalog, schema, name)]
    return []


_NAME_PART = re.compile(r'"((?:[^"]|"")+)"|([^."\s]+)')


def _name_parts(name: str) -> list[str] | None:
    """`crm.contacts` → ["crm", "contacts"]; double-quoted parts may hold dots; None if malformed."""
    text, parts, position = name.strip(), [], 0
    while True:
        match = _NAME_PART.match(text, position)
        if match is None:
            return None
        quoted, bare = match.groups()
        parts.append(quoted.replace('""', '"') if quoted is not None else bare)
        position = match.end()
        if position == len(text):
            return parts if len(parts) <= 3 else None
        if text[position] != ".":
            return None
        position += 1


def _has_order_by(con: duckdb.DuckDBPyConnection, sql: str) -> bool:
    """Whether the query's top level sorts its result, judged from DuckDB's own parse tree.

    Anything DuckDB cannot serialize counts as unsorted: the reader then sorts by key, which is
    deterministic either way; whether the SQL runs at all is for the query itself to show.
    """
    try:
        row = first_row(con.execute("SELECT json_serialize_sql(?)", [sql]))
    except duckdb.Error:
        return False
    tree = json.loads(row[0]) if row else {}
    statements = tree.get("statements") or []
    if tree.get("error") or len(statements) != 1:
        return False
    modifiers = statements[0].get("node", {}).get("modifiers", [])
    return any(modifier.get("type") == "ORDER_MODIFIER" for modifier in modifiers)


def _to_polars(sync: str, table: pa.Table) -> pl.DataFrame:
    """Arrow → polars, naming the columns polars has no type for instead of crashing."""
    try:
        frame = pl.from_arrow(table)
    except (pl.exceptions.PolarsError, PanicException):
        bad = [f"{field.name} ({field.type})" for field in table.schema if not _convertible(field)]
        raise DatasetError(
            f"{sync}: polars cannot hold column(s) {', '.join(bad) or '?'}; cast them (e.g. to "
            "VARCHAR) in a `sql:` source"
        ) from None
    assert isinstance(frame, pl.DataFrame)
    return frame


def _convertible(field: pa.Field) -> bool:
    try:
        pl.from_arrow(pa.schema([field]).empty_table())
    except (pl.exceptions.PolarsError, PanicException):
        return False
    return True
