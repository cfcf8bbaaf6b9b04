"""Turning wire values (JSON or CSV text) into typed columns, and reporting the values that do
not fit with the messages Salesforce uses.

Every value arrives as text: the REST layer stringifies JSON scalars, the Bulk layer passes CSV
cells. `None` means "not provided" (a missing JSON key, an empty CSV cell) and `NULL` means
"set this field to null" (JSON null, `#N/A` in CSV). Parsing is vectorised with polars so that a
million-row Bulk job costs a few column operations, not a million Python calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from sf_sandbox.ids import ID_PATTERN
from sf_sandbox.schema import NUMBER_TYPES, TEXT_TYPES, Field

NULL = "\x00"
EMAIL_PATTERN = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
DATETIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})$"
TRUE_WORDS = ("true", "1")
FALSE_WORDS = ("false", "0")


@dataclass
class Parsed:
    """One field's column after parsing: typed values plus what was wrong where."""

    values: pl.Series  # typed; null where not provided, null-requested or invalid
    provided: pl.Series  # bool: the request carried a value (possibly a null)
    set_null: pl.Series  # bool: the request asked for null
    error_code: pl.Series  # str or null
    error_message: pl.Series  # str or null
    type_error: pl.Series  # bool: the text could not be read as the field's type at all


def parse_column(raw: pl.Series, field: Field) -> Parsed:
    """Parse one column of wire text for `field`."""
    frame = pl.DataFrame({"raw": raw.cast(pl.Utf8)})
    provided = pl.col("raw").is_not_null()
    set_null = pl.col("raw") == NULL
    text = pl.when(provided & ~set_null).then(pl.col("raw"))
    typed, bad_type, code, message = _rules(field, text)
    out = frame.select(
        provided.alias("provided"),
        set_null.fill_null(False).alias("set_null"),
        typed.alias("values"),
        bad_type.fill_null(False).alias("type_error"),
        code.alias("code"),
        message.alias("message"),
    )
    return Parsed(
        values=out["values"].alias(field.name),
        provided=out["provided"],
        set_null=out["set_null"],
        error_code=out["code"],
        error_message=out["message"],
        type_error=out["type_error"],
    )


def _rules(field: Field, text: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """(typed value, is-type-error, error code, error message) expressions for one field."""
    label = field.label
    if field.type in TEXT_TYPES:
        return _text_rules(field, text)
    if field.type == "boolean":
        lowered = text.str.to_lowercase()
        typed = pl.when(lowered.is_in(TRUE_WORDS)).then(True).when(lowered.is_in(FALSE_WORDS))
        typed = typed.then(False)
        bad = text.is_not_null() & typed.is_null()
        return typed, bad, *_type_error(bad, label, text)
    if field.type == "int":
        ok = text.str.contains(r"^[+-]?\d{1,18}$")
        typed = pl.when(ok).then(text.cast(pl.Int64, strict=False))
        bad = text.is_not_null() & typed.is_null()
        return typed, bad, *_type_error(bad, label, text)
    if field.type in NUMBER_TYPES:
        typed = text.str.strip_chars().cast(pl.Float64, strict=False)
        typed = pl.when(typed.is_finite()).then(typed)
        bad = text.is_not_null() & typed.is_null()
        limit = 10.0 ** max(field.precision - field.scale, 1)
        too_big = ~bad & (typed.abs() >= limit)
        code = pl.when(bad).then(pl.lit("INVALID_TYPE_ON_FIELD_IN_RECORD"))
        code = code.when(too_big).then(pl.lit("NUMBER_OUTSIDE_VALID_RANGE"))
        message = pl.when(bad).then(pl.format(f"{label}: value not of required type: {{}}", text))
        message = message.when(too_big).then(
            pl.format(f"{label}: value outside of valid range on numeric field: {{}}", text)
        )
        return typed, bad, code, message
    if field.type == "date":
        typed = pl.when(text.str.contains(DATE_PATTERN)).then(
            text.str.to_date("%Y-%m-%d", strict=False)
        )
        bad = text.is_not_null() & typed.is_null()
        return typed, bad, *_type_error(bad, label, text)
    if field.type == "datetime":
        typed = parse_datetime(text)
        bad = text.is_not_null() & typed.is_null()
        return typed, bad, *_type_error(bad, label, text)
    if field.type in ("id", "reference"):
        bad = text.is_not_null() & ~text.str.contains(ID_PATTERN.pattern)
        code = pl.when(bad).then(pl.lit("MALFORMED_ID"))
        message = pl.when(bad).then(pl.format(f"{label}: id value of incorrect type: {{}}", text))
        return pl.when(~bad).then(text), pl.lit(False), code, message
    return text, pl.lit(False), pl.lit(None, pl.Utf8), pl.lit(None, pl.Utf8)


def _text_rules(field: Field, text: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    label = field.label
    too_long = text.str.len_chars() > field.length
    code = pl.when(too_long).then(pl.lit("STRING_TOO_LONG"))
    message = pl.when(too_long).then(
        pl.format(f"{label}: data value too large: {{}} (max length={field.length})", text)
    )
    if field.type == "email":
        bad_email = ~too_long & ~text.str.contains(EMAIL_PATTERN)
        code = code.when(bad_email).then(pl.lit("INVALID_EMAIL_ADDRESS"))
        message = message.when(bad_email).then(
            pl.format(f"{label}: invalid email address: {{}}", text)
        )
    if field.restricted and field.picklist:
        bad_value = ~too_long & ~text.is_in(field.picklist)
        code = code.when(bad_value).then(pl.lit("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"))
        message = message.when(bad_value).then(
            pl.format(f"{label}: bad value for restricted picklist field: {{}}", text)
        )
    return text, pl.lit(False), code, message


def _type_error(bad: pl.Expr, label: str, text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    code = pl.when(bad).then(pl.lit("INVALID_TYPE_ON_FIELD_IN_RECORD"))
    message = pl.when(bad).then(pl.format(f"{label}: value not of required type: {{}}", text))
    return code, message


def parse_datetime(text: pl.Expr) -> pl.Expr:
    """ISO 8601 with `Z`, `+hh:mm` or `+hhmm` (what Salesforce accepts) to naive UTC."""
    normalized = text.str.replace(r"Z$", "+00:00").str.replace(r"([+-]\d\d)(\d\d)$", "$1:$2")
    parsed = normalized.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False)
    valid = pl.when(text.str.contains(DATETIME_PATTERN)).then(parsed)
    return valid.dt.convert_time_zone("UTC").dt.replace_time_zone(None)


def format_datetime(expr: pl.Expr) -> pl.Expr:
    """Salesforce's REST datetime form: `2024-01-31T10:00:00.000+0000`."""
    return expr.dt.strftime("%Y-%m-%dT%H:%M:%S%.3f+0000")
