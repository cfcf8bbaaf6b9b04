"""Records as Salesforce sends them (REST JSON pages, Bulk 2.0 CSV pages) turned into one
typed frame shape, so the copy holds the same values whichever API read them.

REST spells a date-time `2026-01-31T09:00:00.000+0000`, Bulk `2026-01-31T09:00:00.000Z`;
REST sends numbers and booleans as JSON, Bulk as text; Bulk has no null, only an empty cell
(Salesforce keeps no empty text either, so empty text is null in both).
"""

from __future__ import annotations

import io
from typing import Any

import polars as pl

from sf_assets.salesforce.reader.fields import Selection

REST_DATETIME = "%Y-%m-%dT%H:%M:%S%.f%z"  # 2026-01-31T09:00:00.000+0000
BULK_DATETIME = "%Y-%m-%dT%H:%M:%S%.fZ"  # 2026-01-31T09:00:00.000Z, always UTC
# How REST JSON spells each field type; dates and date-times arrive as text.
JSON_TYPES: dict[str, pl.DataType] = {
    "boolean": pl.Boolean(),
    "int": pl.Int64(),
    "double": pl.Float64(),
    "currency": pl.Float64(),
    "percent": pl.Float64(),
}


def from_records(records: list[dict[str, Any]], selection: Selection) -> pl.DataFrame:
    """One REST page (`records` of a query answer) as a typed frame. The page is read in the
    JSON types Salesforce sends (booleans, numbers, everything else text), then cast."""
    arrival = {
        field: JSON_TYPES.get(selection.types[field], pl.Utf8()) for field in selection.fields
    }
    return typed(pl.from_dicts(records, schema=arrival), selection, REST_DATETIME)


def from_csv(page: bytes, selection: Selection) -> pl.DataFrame:
    """One Bulk 2.0 result page as a typed frame; the header names the fields as queried."""
    if not page.strip():
        empty = pl.DataFrame(schema={f: pl.Utf8 for f in selection.fields})
        return typed(empty, selection, BULK_DATETIME)
    raw = pl.read_csv(io.BytesIO(page), infer_schema=False)
    by_lower = {name.lower(): name for name in raw.columns}
    return typed(
        raw.select(pl.col(by_lower[field.lower()]).alias(field) for field in selection.fields),
        selection,
        BULK_DATETIME,
    )


def typed(raw: pl.DataFrame, selection: Selection, datetime_format: str) -> pl.DataFrame:
    """Every selected field in its column type, whatever type it arrived in."""
    return raw.select(_cast(raw, f, selection, datetime_format) for f in selection.fields)


def _cast(raw: pl.DataFrame, field: str, selection: Selection, datetime_format: str) -> pl.Expr:
    target = selection.dtype(field)
    column = pl.col(field)
    arrived = raw.schema[field]
    if arrived == pl.Null:
        return column.cast(target).alias(field)
    if arrived == pl.Utf8:
        column = pl.when(column == "").then(None).otherwise(column)
        if target == pl.Boolean:
            return (
                column.str.to_lowercase()
                .replace_strict(
                    {"true": True, "false": False}, default=None, return_dtype=pl.Boolean
                )
                .alias(field)
            )
        if isinstance(target, pl.Datetime):
            parsed = column.str.to_datetime(datetime_format, time_unit="us")
            if datetime_format == BULK_DATETIME:
                return parsed.dt.replace_time_zone("UTC").alias(field)
            return parsed.dt.convert_time_zone("UTC").alias(field)
        if target == pl.Date:
            return column.str.to_date("%Y-%m-%d").alias(field)
    return column.cast(target).alias(field)
