"""Where a sync's rows come from: a DuckDB table, view or query, or Parquet/CSV files."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag, model_validator

from sf_assets.specs.common import SpecModel

DEFAULT_BATCH_COLUMN = "_BATCH_ID_"
SOURCE_KINDS = ("duckdb", "files")
DEFAULT_SCHEMA = "main"


def table_parts(table: str) -> tuple[str, ...]:
    """A table's name as DuckDB compares it: schema first, quotes and case dropped, and the
    default schema left out (`People`, `main.people` and `"people"` are one table)."""
    parts = [part.strip().strip('"').lower() for part in table.split(".")]
    if len(parts) > 1 and parts[0] == DEFAULT_SCHEMA:
        parts = parts[1:]
    return tuple(parts)


class DuckDBSource(SpecModel):
    """A table, view or query in a DuckDB database file."""

    duckdb: str = Field(description="Path of the DuckDB file, relative to the project folder.")
    table: str | None = Field(None, description="Table or view, optionally schema-qualified.")
    sql: str | None = Field(None, description="A SELECT whose rows are the dataset.")
    batch_column: str | None = Field(
        DEFAULT_BATCH_COLUMN,
        description="Column whose values key the batches; null for a dataset written whole.",
    )
    key: str | None = Field(
        None,
        description="Source column that identifies a row; defaults to the column mapped to "
        "the target's match_on field.",
    )

    @model_validator(mode="after")
    def one_relation(self) -> DuckDBSource:
        if (self.table is None) == (self.sql is None):
            raise ValueError("give exactly one of `table` or `sql`")
        return self


class FileSource(SpecModel):
    """Parquet or CSV files matched by a glob pattern."""

    parquet: str | None = Field(None, description="Glob of Parquet files, relative to the project.")
    csv: str | None = Field(None, description="Glob of CSV files (UTF-8, header row).")
    batch_column: str | None = Field(DEFAULT_BATCH_COLUMN, description="See DuckDB source.")
    key: str | None = Field(None, description="See DuckDB source.")

    @model_validator(mode="after")
    def one_format(self) -> FileSource:
        if (self.parquet is None) == (self.csv is None):
            raise ValueError("give exactly one of `parquet` or `csv`")
        return self


def _source_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "duckdb" if "duckdb" in value else "files"
    return "duckdb" if isinstance(value, DuckDBSource) else "files"


Source = Annotated[
    Annotated[DuckDBSource, Tag("duckdb")] | Annotated[FileSource, Tag("files")],
    Discriminator(_source_kind),
]
