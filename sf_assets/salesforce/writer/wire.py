"""The mapped frame as Salesforce reads it: JSON records for REST, CSV for Bulk API 2.0.

Every value is formatted here, column by column with polars, never with Python's `str()`:
booleans `true`/`false`, dates `YYYY-MM-DD`, date-times in UTC as `YYYY-MM-DDTHH:MM:SS.sssZ`,
numbers as plain text. A null means "no value": omitted on insert; on update and upsert it is
sent as an explicit null (JSON null, `#N/A` in CSV) when the sync clears fields, or left out
(JSON: no key; CSV: an empty cell) when it ignores them.
"""

from __future__ import annotations

import io
from typing import Any

import polars as pl

SYSTEM_COLUMNS = ("_row", "_key", "_hash")
CSV_NULL = "#N/A"
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.3fZ"
DATE_FORMAT = "%Y-%m-%d"


def field_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in SYSTEM_COLUMNS]


def _text(name: str, dtype: pl.DataType, field_type: str | None) -> pl.Expr:
    """One column as Salesforce's wire text, nulls kept."""
    column = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        utc = column.dt.convert_time_zone("UTC") if dtype.time_zone else column
        return utc.dt.strftime(DATE_FORMAT if field_type == "date" else DATETIME_FORMAT)
    if dtype == pl.Date:
        if field_type == "datetime":
            return column.dt.strftime(DATE_FORMAT + "T00:00:00.000Z")
        return column.dt.strftime(DATE_FORMAT)
    if dtype == pl.Boolean:
        return pl.when(column).then(pl.lit("true")).when(~column).then(pl.lit("false"))
    if dtype.is_float():
        return pl.when(column.is_finite()).then(column.cast(pl.Utf8))
    return column.cast(pl.Utf8)


def as_text(frame: pl.DataFrame, object_fields: dict[str, str]) -> pl.DataFrame:
    """The field columns of `frame` as wire text (Utf8), plus `_key`."""
    return frame.select(
        pl.col("_key"),
        *(
            _text(name, frame.schema[name], object_fields.get(name)).alias(name)
            for name in field_columns(frame)
        ),
    )


def csv_bytes(text: pl.DataFrame, *, send_nulls: bool) -> bytes:
    """A Bulk API 2.0 upload: header of field API names, LF line endings, UTF-8."""
    fields = text.select(field_columns(text))
    if send_nulls:  # a lookup is cleared through its Id field, not through `Parent.Field`
        plain = [c for c in fields.columns if "." not in c]
        fields = fields.with_columns(pl.col(plain).fill_null(CSV_NULL))
    buffer = io.BytesIO()
    fields.write_csv(buffer, line_terminator="\n", quote_style="necessary")
    return buffer.getvalue()


def _json_value(name: str, dtype: pl.DataType, field_type: str | None) -> pl.Expr:
    """Booleans and numbers stay JSON booleans and numbers; the rest goes as text."""
    if dtype == pl.Boolean or dtype.is_integer():
        return pl.col(name)
    if dtype.is_float():
        return pl.when(pl.col(name).is_finite()).then(pl.col(name))
    return _text(name, dtype, field_type)


def json_records(
    frame: pl.DataFrame,
    *,
    sobject: str,
    object_fields: dict[str, str],
    send_nulls: bool,
    id_column: str | None = None,
) -> list[dict[str, Any]]:
    """sObject Collections records. `id_column` becomes the record's `id` (updates by Id);
    `Parent.Field` columns become `{"Parent": {"Field": value}}`."""
    names = field_columns(frame)
    values = frame.select(
        _json_value(n, frame.schema[n], object_fields.get(n)).alias(n) for n in names
    )
    attributes = {"type": sobject}
    records = []
    for row in values.iter_rows(named=True):
        record: dict[str, Any] = {"attributes": attributes}
        for name, value in row.items():
            if value is None and (not send_nulls or "." in name):
                continue
            if name == id_column:
                record["id"] = value
            elif "." in name:
                parent, _, field = name.partition(".")
                record.setdefault(parent, {})[field] = value
            else:
                record[name] = value
        records.append(record)
    return records


def match_text(frame: pl.DataFrame, match_on: str, object_fields: dict[str, str]) -> pl.DataFrame:
    """`_key` and the match_on value as sent, which Salesforce echoes back in Bulk results."""
    column = next(c for c in frame.columns if c.lower() == match_on.lower())
    return frame.select(
        pl.col("_key"),
        _text(column, frame.schema[column], object_fields.get(column)).alias("_match"),
    )
