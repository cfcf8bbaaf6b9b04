"""Datasets: the rows a sync reads from its source, one batch at a time or whole.

A sync's source is a table, view or query in a DuckDB file, or Parquet or CSV files matched by a
glob. `Dataset` gives every kind the same four answers: which batches exist, the rows of one
batch, the rows of all batches, and the columns (for checks before anything is read).

Rules that hold for every source:

- Batch ids are the batch column's values rendered as text by the engine that reads the source,
  so an id handed back to `read_batch` selects exactly the rows it was read from. They are sorted
  numerically when every id is an integer (`2` before `10`), otherwise as text.
- Every frame carries `_row`, numbered 1..n in a deterministic order, so a rejected row can be
  named the same way on every read of the same data:
  - a DuckDB table: insertion order (DuckDB keeps it for plain scans and filters);
  - a `sql:` source whose top-level query has an ORDER BY: that order (ties stay as the
    query leaves them);
  - a DuckDB view, or a `sql:` source without ORDER BY: ordered by the key column, then by the
    other columns to break ties (a join or aggregate has no order of its own);
  - Parquet and CSV: files in path order, rows in file order.
- The source's batch and key columns must exist under exactly the names the spec gives them:
  frames are looked up by name later, and a name that differs only in case would not match.
- CSV cells are all text. An empty cell is null, a quoted empty cell (`""`) an empty string, and
  bytes that are not UTF-8 become U+FFFD: the row is kept for the mapper to reject by column.
- A DuckDB file is opened read-only for each call and closed before returning, so a warehouse
  that others write to is held for as short a time as possible. DuckDB lets no process read a
  file another process has open for writing; that is reported as such. Within this process, a
  file already open for writing is read through that same database.
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import duckdb
import polars as pl
import pyarrow as pa
from polars.exceptions import PanicException

from sf_assets.specs import DuckDBSource, FileSource, LoadedSpec, SyncSpec

ROW_COLUMN = "_row"
LISTED_NAMES = 30  # names shown when an error lists what exists
SQL_VIEW = "__sync_source__"  # the temporary view a `sql:` source is read through

Schema = dict[str, pl.DataType]
T = TypeVar("T")


class DatasetError(ValueError):
    """A source that cannot be read as the spec says; the message names the sync and the cause."""


class Dataset:
    """The source dataset of one sync."""

    def __init__(self, loaded: LoadedSpec) -> None:
        self.name = loaded.spec.name
        self._batch_column = loaded.spec.source.batch_column
        self._reader = _reader_for(loaded)

    def batch_ids(self) -> list[str]:
        """Distinct non-null batch ids in the order described above; [] when not batched.

        Only the batch column is read (SELECT DISTINCT or a lazy unique), never the rows.
        """
        if self._batch_column is None:
            return []
        return sort_batch_ids(self._reader.batch_ids(self._batch_column))

    def read_batch(self, batch_id: str) -> pl.DataFrame:
        """The rows of one batch plus `_row`; an unknown id gives an empty frame with the columns."""
        if self._batch_column is None:
            raise DatasetError(
                f"{self.name}: the source has no batch column, so it has no batches; "
                "read it whole instead"
            )
        return _numbered(self._reader.rows(self._batch_column, batch_id))

    def read_all(self) -> pl.DataFrame:
        """Every row of the dataset plus `_row`."""
        return _numbered(self._reader.rows(None, None))

    def columns(self) -> Schema:
        """The source's columns and polars types, read without reading the rows.

        Raises the same DatasetError a read would (missing file, table, batch or key column), so a
        pre-flight check finds what a run would trip over.
        """
        return self._reader.schema()


def sort_batch_ids(ids: list[str]) -> list[str]:
    """Numeric order when every id is an integer (so `9` comes before `10`), else text order."""
    if ids and all(re.fullmatch(r"-?[0-9]+", batch_id) for batch_id in ids):
        return sorted(ids, key=lambda batch_id: (int(batch_id), batch_id))
    return sorted(ids)


class _Reader(Protocol):
    def schema(self) -> Schema: ...

    def batch_ids(self, column: str) -> list[str]: ...

    def rows(self, column: str | None, batch_id: str | None) -> pl.DataFrame: ...


def _reader_for(loaded: LoadedSpec) -> _Reader:
    source = loaded.spec.source
    if isinstance(source, DuckDBSource):
        return _DuckDBReader(loaded, source)
    return _FileReader(loaded, source)


def _numbered(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(ROW_COLUMN))


def _checked(spec: SyncSpec, schema: Mapping[str, pl.DataType]) -> Schema:
    """The schema, once it holds the batch and key columns and leaves `_row` free."""
    wanted = {"batch column": spec.source.batch_column, "key column": spec.key_column}
    for role, column in wanted.items():
        if column is not None and column not in schema:
            raise DatasetError(
                f"{spec.name}: source has no {role} {column!r}{_near_miss(column, schema)} "
                f"(columns: {_listing(list(schema))})"
            )
    if ROW_COLUMN in schema:
        raise DatasetError(
            f"{spec.name}: source has a column {ROW_COLUMN!r}, the name the reader gives row "
            "numbers; rename or drop it in the source"
        )
    return dict(schema)


def _near_miss(column: str, names: Mapping[str, object]) -> str:
    same = [name for name in names if name.lower() == column.lower()]
    return f"; did you mean {same[0]!r}? (names are case-sensitive)" if same else ""


def _listing(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:LISTED_NAMES])
    more = len(names) - LISTED_NAMES
    return f"{shown}, … ({more} more)" if more > 0 else shown


# --- DuckDB -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Relation:
    """The name to select from, and whether scanning it already gives a deterministic order."""

    sql: str
    ordered: bool


class _DuckDBReader:
    def __init__(self, loaded: LoadedSpec, source: DuckDBSource) -> None:
        self._spec = loaded.spec
        self._source = source
        self._path = loaded.resolve(source.duckdb)
        self._root = loaded.root

    def schema(self) -> Schema:
        with self._connect() as con:
            return self._schema(con, self._relation(con))

    def batch_ids(self, column: str) -> list[str]:
        with self._connect() as con:
            relation = self._relation(con)
            self._schema(con, relation)
            name = _quote(column)
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
                query += f" WHERE CAST({_quote(column)} AS VARCHAR) = ?"
                params.append(batch_id)
            if not relation.ordered:
                query += " ORDER BY " + self._order_by(schema)
            return self._fetch(con, query, params)

    def _order_by(self, schema: Schema) -> str:
        """Key first, then every other column, so rows that tie on the key still sort the same."""
        key = self._spec.key_column
        columns = [key, *(name for name in schema if name != key)]
        return ", ".join(f"{_quote(name)} NULLS LAST" for name in columns)

    def _schema(self, con: duckdb.DuckDBPyConnection, relation: _Relation) -> Schema:
        frame = self._fetch(con, f"SELECT * FROM {relation.sql} LIMIT 0", [])
        return _checked(self._spec, frame.schema)

    def _fetch(self, con: duckdb.DuckDBPyConnection, query: str, params: list[str]) -> pl.DataFrame:
        return _to_polars(self._spec.name, self._arrow(con, query, params))

    def _arrow(
        self, con: duckdb.DuckDBPyConnection, query: str, params: list[str] | None = None
    ) -> pa.Table:
        return self._guarded(lambda: con.execute(query, params or []).to_arrow_table())

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
            con.execute(f"SET SESSION file_search_path = {_literal(str(self._root))}")
            yield con
        finally:
            con.close()


def _open_read_only(sync: str, path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection, or a clear DatasetError when DuckDB's locking forbids one.

    DuckDB lets one process write a file and nobody else open it meanwhile; within one process it
    keeps a single database per file, which a read-only open cannot share with a writer.
    """
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.ConnectionException as error:
        if "different configuration" not in str(error):
            raise DatasetError(f"{sync}: cannot open DuckDB file {path}: {error}") from None
        return _join_open_database(sync, path)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise DatasetError(
                f"{sync}: DuckDB file {path} is locked by another process that has it open for "
                f"writing; DuckDB lets no other process read it until that one closes it ({error})"
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
            f"(tables and views: {_listing(names)})"
        )
    return _Relation(".".join(_quote(part) for part in found), ordered=objects[found] == "table")


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
    row = con.execute("SELECT current_database()").fetchone()
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
        row = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
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


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- Parquet and CSV ----------------------------------------------------------------------------


class _FileReader:
    def __init__(self, loaded: LoadedSpec, source: FileSource) -> None:
        self._spec = loaded.spec
        self._format = "parquet" if source.parquet is not None else "csv"
        self._pattern = source.parquet if source.parquet is not None else source.csv or ""
        self._glob = loaded.resolve(self._pattern)

    def schema(self) -> Schema:
        return _checked(self._spec, self._read(lambda: self._scan().collect_schema()))

    def batch_ids(self, column: str) -> list[str]:
        self.schema()
        ids = self._scan().select(pl.col(column).cast(pl.Utf8)).drop_nulls().unique()
        return self._read(ids.collect).to_series().to_list()

    def rows(self, column: str | None, batch_id: str | None) -> pl.DataFrame:
        self.schema()
        scan = self._scan()
        if column is not None and batch_id is not None:
            scan = scan.filter(pl.col(column).cast(pl.Utf8) == batch_id)
        return self._read(scan.collect)

    def _scan(self) -> pl.LazyFrame:
        """All matching files as one lazy frame, in path order."""
        files = self._matches()
        if not files:
            raise DatasetError(
                f"{self._spec.name}: no {self._format} files match {self._pattern!r} "
                f"(looked for {self._glob})"
            )
        return self._read(lambda: self._scan_files(files))

    def _scan_files(self, files: list[str]) -> pl.LazyFrame:
        if self._format == "parquet":
            return pl.scan_parquet(files)
        # Every CSV cell stays text: types are the mapper's business, and guessing from the first
        # rows would fail on the row that does not fit. Invalid UTF-8 becomes U+FFFD so the row
        # survives for the mapper to reject with the column named.
        return pl.scan_csv(files, infer_schema=False, encoding="utf8-lossy")

    def _matches(self) -> list[str]:
        return sorted(
            name for name in glob.glob(str(self._glob), recursive=True) if Path(name).is_file()
        )

    def _read(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except (pl.exceptions.PolarsError, OSError) as error:
            raise DatasetError(
                f"{self._spec.name}: cannot read {self._format} files {self._pattern!r}: "
                f"{error}{self._culprit()}"
            ) from None

    def _culprit(self) -> str:
        """Which file to look at after a failed read: the first that fails alone or whose columns
        differ from the first file's (polars' own message does not say)."""
        expected = None
        for name in self._matches():
            try:
                schema = self._scan_files([name]).collect_schema()
            except (pl.exceptions.PolarsError, OSError):
                return f" (in {name})"
            if expected is not None and schema != expected:
                return f" (in {name}: columns {_listing(list(schema))}, not {_listing(list(expected))})"
            expected = schema
        return ""
