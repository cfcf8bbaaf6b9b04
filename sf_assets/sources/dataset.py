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

import re
from typing import Protocol

import polars as pl

from sf_assets.sources.duckdb_source import DuckDBReader
from sf_assets.sources.file_source import FileReader
from sf_assets.sources.schema import ROW_COLUMN, DatasetError, Schema
from sf_assets.specs import DuckDBSource, LoadedSpec


class Dataset:
    """The source dataset of one sync."""

    def __init__(self, loaded: LoadedSpec) -> None:
        self.name = loaded.spec.name
        self._batch_column = loaded.spec.source.batch_column
        self._reader = reader_for(loaded)

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
        return numbered(self._reader.rows(self._batch_column, batch_id))

    def read_all(self) -> pl.DataFrame:
        """Every row of the dataset plus `_row`."""
        return numbered(self._reader.rows(None, None))

    def columns(self) -> Schema:
        """The source's columns and polars types, read without reading the rows.

        Raises the same DatasetError a read would (missing file, table, batch or key column), so a
        pre-flight check finds what a run would trip over.
        """
        return self._reader.schema()

    def found_columns(self) -> Schema:
        """The source's columns as they are, before the checks `columns` makes: what
        `sf-assets init` matches to fields while no key or batch column is chosen yet."""
        return self._reader.found_columns()


def sort_batch_ids(ids: list[str]) -> list[str]:
    """Numeric order when every id is an integer (so `9` comes before `10`), else text order."""
    if ids and all(re.fullmatch(r"-?[0-9]+", batch_id) for batch_id in ids):
        return sorted(ids, key=lambda batch_id: (int(batch_id), batch_id))
    return sorted(ids)


class Reader(Protocol):
    def schema(self) -> Schema: ...

    def found_columns(self) -> Schema: ...

    def batch_ids(self, column: str) -> list[str]: ...

    def rows(self, column: str | None, batch_id: str | None) -> pl.DataFrame: ...


def reader_for(loaded: LoadedSpec) -> Reader:
    source = loaded.spec.source
    if isinstance(source, DuckDBSource):
        return DuckDBReader(loaded, source)
    return FileReader(loaded, source)


def numbered(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(ROW_COLUMN))
