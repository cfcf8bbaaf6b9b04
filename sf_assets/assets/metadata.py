"""Metadata every asset factory shows a person: tables (samples, rejects with their hints, the
field mapping) as Dagster tables rather than hand-made markdown, so every page renders them
the same way, and counts as plain numbers so Dagster plots them per materialization."""

from __future__ import annotations

from typing import Any

import dagster as dg
import polars as pl

from sf_assets.salesforce.describe import ObjectInfo
from sf_assets.salesforce.hints import reject_hint
from sf_assets.specs import SyncSpec

SAMPLE_ROWS = 20
WRITTEN = ("created", "updated", "deleted")  # outcomes that put the row into Salesforce
REJECT_COLUMNS = ("stage", "row", "key", "column", "code", "reason", "hint")


def column_type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "int"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    if dtype == pl.Boolean:
        return "bool"
    return "string"


def cell(value: Any) -> str | int | float | bool | None:
    """A value as a table record holds it: plain scalars, everything else as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def table(frame: pl.DataFrame, limit: int = SAMPLE_ROWS) -> dg.TableMetadataValue:
    """The first `limit` rows as a Dagster table (the count of the rest is metadata of its own)."""
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name, column_type(frame.schema[name])) for name in frame.columns]
    )
    records = [
        dg.TableRecord({name: cell(value) for name, value in row.items()})
        for row in frame.head(limit).iter_rows(named=True)
    ]
    return dg.MetadataValue.table(records=records, schema=schema)


def with_hints(rejects: pl.DataFrame, stage: str | None = None) -> pl.DataFrame:
    """Rejects with a `hint` for every row: what to do, stored or derived from the code."""
    frame = rejects if stage is None else rejects.with_columns(pl.lit(stage).alias("stage"))
    if "hint" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.Utf8).alias("hint"))
    derived = [
        reject_hint(stage_of or "", code or "")
        for stage_of, code in frame.select("stage", "code").iter_rows()
    ]
    return frame.with_columns(
        pl.coalesce(pl.col("hint"), pl.Series("derived", derived, dtype=pl.Utf8)).alias("hint")
    )


def rejects_table(rejects: pl.DataFrame, stage: str | None = None) -> dg.TableMetadataValue:
    """Rejected rows with their reason and what to do about them."""
    frame = with_hints(rejects, stage)
    return table(frame.select([c for c in REJECT_COLUMNS if c in frame.columns]))


def mapping_table(spec: SyncSpec, obj: ObjectInfo | None = None) -> dg.TableMetadataValue:
    rows = []
    for field_name, column in spec.mapping.items():
        info = obj.field(field_name) if obj else None
        rows.append(
            {
                "source column": column,
                "Salesforce field": f"{spec.target.object}.{field_name}",
                "type": info.type_label() if info else "",
            }
        )
    frame = pl.DataFrame(
        rows, schema=dict.fromkeys(("source column", "Salesforce field", "type"), pl.Utf8)
    )
    return table(frame, limit=len(rows) or 1)


def counts_by(frame: pl.DataFrame, column: str) -> dict[str, int]:
    """Counts per value, most frequent first; ties in the value's order, so that the same
    rows give the same metadata (and the same summary line) on every run."""
    if frame.is_empty():
        return {}
    grouped = frame.group_by(column).len().sort(["len", column], descending=[True, False])
    return {str(k): int(n) for k, n in grouped.iter_rows()}


def source_label(spec: SyncSpec) -> str:
    source = spec.source
    for attribute in ("table", "parquet", "csv"):
        value = getattr(source, attribute, None)
        if value:
            return value
    return "a SQL query"


def batch_totals(outcomes: dict[str, int]) -> dict[str, Any]:
    """The batch as a whole from its latest outcome per key counted by status, whatever this
    run did: a re-run that sends nothing still shows what the batch holds."""
    return {
        "batch written so far": sum(outcomes.get(status, 0) for status in WRITTEN),
        "batch refused": outcomes.get("failed", 0),
        "batch by outcome": outcomes,
    }


def retry_pointer(sync: str, batch: str, refused: int) -> dict[str, str]:
    """Where rows were refused, the one next step: fix, then the retry job."""
    if not refused:
        return {}
    return {
        "next step": f"{refused} rows were refused: fix the data or the org (each row's hint "
        f"says how), then launch the job {sync}_retry_rejects for batch {batch}"
    }
