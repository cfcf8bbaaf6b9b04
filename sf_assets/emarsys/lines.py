"""Map a batch of source rows to Emarsys sales-data lines, rejecting what Emarsys would refuse.

Emarsys fails a whole upload for one bad line, so every rule the endpoint checks is checked
here first and the offending rows go to the rejects (REJECT_SCHEMA, like Salesforce syncs);
the good rows go out. Everything is vectorised with polars. Decisions:

- Text (order, item, customer, email, `s_` columns): Emarsys allows no newline in a field, even
  quoted, so every run of CR, LF and TAB becomes one space; a product name with a line break
  is a data-entry artefact, not a reason to lose revenue. Values are then trimmed (Emarsys
  trims unquoted blanks anyway). Text holding U+FFFD, the mark of bytes that were not UTF-8
  when the source was read, is rejected (INVALID_UTF8): the original value is already lost.
- Timestamps go out as `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds). Aware datetimes are
  converted to UTC; naive datetimes and text without an offset are taken as UTC; a date
  means midnight UTC.
- Price is the line total. With `price="unit_price"` it is unit price × quantity. Either way
  it is rounded to 2 decimals (cents): float products like 19.99 × 3 would otherwise carry
  binary noise into revenue reports.
- Negative price and quantity are allowed: returns and cancellations belong in sales data
  (the Emarsys help says so). Non-numeric, NaN and infinite values are INVALID_NUMBER.
- Quantity and `f_` values go out as plain decimals, at most 6 places, never an exponent;
  `i_` values must be whole numbers. Custom columns may be empty; standard ones may not.
- The same (order, item) twice in a batch is ambiguous (which one is right?), so every
  occurrence is rejected (DUPLICATE_LINE).
- Exactly one of `customer`/`email` may be a column (an Emarsys rule), so "both" is a
  configuration problem found by `check_columns`, not a row problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import polars as pl

from sf_assets.rows import KEY, REJECT_SCHEMA, ROW, content_hash, reject_reason

STANDARD = ("order", "timestamp", "customer", "email", "item", "price", "quantity")
REQUIRED = ("order", "timestamp", "item", "price")
CONTACTS = ("customer", "email")
CUSTOM_NAME = re.compile(r"[sif]_[A-Za-z0-9_]+")
KEY_SEPARATOR = "\x1f"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
UTC = pl.Datetime("us", "UTC")
DECIMALS = 6
# Amounts are written as plain decimals (38 digits, 6 after the point); anything from here on
# is a data error (1e308 from a broken export), rejected by row rather than failing the batch.
LARGEST_AMOUNT = 1e15
EMAIL = r"^[^@\s]+@[^@\s]+$"


@dataclass
class LinesSpec:
    """One sales-data sync: which source column feeds each Emarsys column, in header order."""

    sync: str
    mapping: dict[str, str]  # emarsys column -> source column
    columns: list[str]  # header order agreed with the merchant at onboarding
    price: Literal["line_total", "unit_price"] = "line_total"


@dataclass
class MappedLines:
    """`rows`: `_row`, `_key`, `_hash`, then `spec.columns` as text; `rejects`: REJECT_SCHEMA."""

    rows: pl.DataFrame
    rejects: pl.DataFrame


@dataclass(frozen=True)
class _Column:
    """One output column: its text, and (code, problem) pairs that reject the row."""

    name: str
    source: str
    text: pl.Expr
    problems: list[tuple[str, pl.Expr, str]]


def check_columns(columns: list[str], mapping: dict[str, str]) -> list[str]:
    """Every reason this header and mapping cannot produce an upload Emarsys accepts."""
    problems: list[str] = []
    for name in columns:
        if name in STANDARD or CUSTOM_NAME.fullmatch(name):
            continue
        if name.lower() in STANDARD:
            problems.append(f"column {name!r}: standard column names are lower-case")
        else:
            problems.append(
                f"column {name!r} is not a standard column ({', '.join(STANDARD)}) and a custom "
                "column needs a type prefix s_, i_ or f_ followed by letters, digits or '_'"
            )
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    if duplicated:
        problems.append(f"column(s) listed more than once: {', '.join(duplicated)}")
    contacts = [name for name in CONTACTS if name in columns]
    if len(contacts) != 1:
        problems.append(
            "exactly one of 'customer' and 'email' must be a column, found "
            + (" and ".join(contacts) or "neither")
        )
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        problems.append(f"required column(s) missing: {', '.join(missing)}")
    unmapped = [name for name in columns if name not in mapping]
    if unmapped:
        problems.append(f"column(s) without a source column in the mapping: {', '.join(unmapped)}")
    extra = [name for name in mapping if name not in columns]
    if extra:
        problems.append(f"mapped column(s) not in the agreed columns: {', '.join(extra)}")
    return problems


def map_lines(spec: LinesSpec, frame: pl.DataFrame, batch: str) -> MappedLines:
    """The batch's good lines, formatted for the CSV, and one reject per problem found."""
    _check_spec(spec, frame)
    if ROW not in frame.columns:
        frame = frame.with_row_index(ROW, offset=1)
    frame = frame.with_columns(pl.col(ROW).cast(pl.Int64))
    columns = [_column(spec, name, frame.schema) for name in spec.columns]
    key = pl.concat_str(
        pl.col("__order"), pl.lit(KEY_SEPARATOR), pl.col("__item"), ignore_nulls=False
    )
    # with_columns, not select: the problem rules read both the source and the text columns.
    texts = frame.lazy().with_columns(
        *[c.text.alias(f"__{c.name}") for c in columns],
        *[pl.col(c.source).cast(pl.Utf8).alias(f"__raw_{c.name}") for c in columns],
    )
    texts = texts.with_columns(key.alias(KEY)).with_columns(
        (pl.len().over(KEY) > 1).fill_null(False).alias("__duplicate")
    )
    checks = [
        (c, code, when.fill_null(False), problem)
        for c in columns
        for code, when, problem in c.problems
    ] + [(columns_by_name(columns, "item"), "DUPLICATE_LINE", pl.col("__duplicate"), _dup_text())]
    flags = [when.alias(f"__bad{i}") for i, (_, _, when, _) in enumerate(checks)]
    table = texts.with_columns(flags).collect()
    bad = pl.any_horizontal([pl.col(f"__bad{i}") for i in range(len(checks))])
    rejects = _rejects(spec, batch, table.filter(bad), checks)
    good = table.filter(~bad).select(
        pl.col(ROW), pl.col(KEY), *[pl.col(f"__{c.name}").alias(c.name) for c in columns]
    )
    good = good.with_columns(pl.col(name).fill_null("") for name in spec.columns)
    good = good.insert_column(2, content_hash(good, spec.columns))
    return MappedLines(good, rejects)


def columns_by_name(columns: list[_Column], name: str) -> _Column:
    return next(c for c in columns if c.name == name)


def _dup_text() -> str:
    return "the same (order, item) appears more than once in this batch; every copy is held back"


def _check_spec(spec: LinesSpec, frame: pl.DataFrame) -> None:
    problems = check_columns(spec.columns, spec.mapping)
    if spec.price == "unit_price" and "quantity" not in spec.columns:
        problems.append("price='unit_price' needs a 'quantity' column to compute the line total")
    missing = sorted({s for s in spec.mapping.values() if s not in frame.columns})
    if missing:
        problems.append(
            f"source column(s) {', '.join(missing)} not in the batch "
            f"(it has {', '.join(frame.columns)})"
        )
    if problems:
        raise ValueError(f"{spec.sync}: " + "; ".join(problems))


# -- one column ---------------------------------------------------------------------------


def _column(spec: LinesSpec, name: str, schema: pl.Schema) -> _Column:
    source = spec.mapping[name]
    value, dtype = pl.col(source), schema[source]
    if name == "timestamp":
        return _timestamp(name, source, value, dtype)
    if name == "price":
        number = _number(value, dtype)
        amount = number
        if spec.price == "unit_price":
            quantity = spec.mapping["quantity"]
            amount = number * _number(pl.col(quantity), schema[quantity])
        return _numeric(name, source, value, number, amount.round(2), 2, required=True)
    if name == "quantity":
        return _numeric(name, source, value, _number(value, dtype), None, DECIMALS, required=True)
    if name.startswith("f_"):
        return _numeric(name, source, value, _number(value, dtype), None, DECIMALS, required=False)
    if name.startswith("i_"):
        return _integer(name, source, value, dtype)
    return _text(name, source, value, required=not name.startswith("s_"), email=name == "email")


def _missing(name: str) -> tuple[str, pl.Expr, str]:
    return ("MISSING_VALUE", pl.col(f"__{name}").is_null(), f"'{name}' is empty")


def _text(name: str, source: str, value: pl.Expr, *, required: bool, email: bool) -> _Column:
    cleaned = (
        value.cast(pl.Utf8)
        .str.replace_all(r"[\r\n\t]+", " ")
        .str.strip_chars(" ")
        .replace("", None)
    )
    problems = [
        (
            "INVALID_UTF8",
            pl.col(f"__{name}").str.contains("\ufffd", literal=True),
            "holds U+FFFD: the source text was not valid UTF-8",
        )
    ]
    if required:
        problems.insert(0, _missing(name))
    if email:
        problems.append(
            ("INVALID_EMAIL", ~pl.col(f"__{name}").str.contains(EMAIL), "not an e-mail address")
        )
    return _Column(name, source, cleaned, problems)


def _timestamp(name: str, source: str, value: pl.Expr, dtype: pl.DataType) -> _Column:
    instant = _instant(value, dtype)
    text = instant.dt.strftime(TIMESTAMP_FORMAT)
    present = value.cast(pl.Utf8).str.strip_chars().replace("", None).is_not_null()
    problems = [
        ("MISSING_VALUE", ~present, f"'{name}' is empty"),
        (
            "INVALID_TIMESTAMP",
            present & instant.is_null(),
            "not a date or an ISO 8601 date-time (with Z, an offset or none for UTC)",
        ),
    ]
    return _Column(name, source, text, problems)


def _instant(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A UTC datetime from a datetime, date or text column; null where it cannot be read."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return value.dt.replace_time_zone("UTC")
        return value.dt.convert_time_zone("UTC")
    if dtype == pl.Date:
        return value.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    text = value.cast(pl.Utf8).str.strip_chars()
    aware = [
        text.str.to_datetime(f, time_zone="UTC", strict=False)
        for f in ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z")
    ]
    naive = [
        text.str.to_datetime(f, strict=False).dt.replace_time_zone("UTC")
        for f in ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M")
    ]
    day = text.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us"))
    return pl.coalesce([*aware, *naive, day.dt.replace_time_zone("UTC")]).cast(UTC)


def _number(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype.is_numeric():
        return value.cast(pl.Float64)
    return value.cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False)


def _numeric(
    name: str,
    source: str,
    value: pl.Expr,
    number: pl.Expr,
    amount: pl.Expr | None,
    decimals: int,
    *,
    required: bool,
) -> _Column:
    amount = number if amount is None else amount
    present = value.cast(pl.Utf8).str.strip_chars().replace("", None).is_not_null()
    fits = amount.is_finite() & (amount.abs() < LARGEST_AMOUNT)
    text = _decimal_text(pl.when(fits).then(amount), decimals)
    invalid = present & (number.is_null() | ~number.is_finite() | ~amount.is_finite())
    too_large = present & ~invalid & ~fits
    problems = [
        ("INVALID_NUMBER", invalid, "not a finite number"),
        ("NUMBER_TOO_LARGE", too_large, f"larger than {LARGEST_AMOUNT:.0e}: not a sales amount"),
    ]
    if required:
        problems.insert(0, ("MISSING_VALUE", ~present, f"'{name}' is empty"))
    return _Column(name, source, text, problems)


def _decimal_text(number: pl.Expr, decimals: int) -> pl.Expr:
    """Plain decimal text, never an exponent; trailing zeros trimmed beyond cents for prices."""
    text = number.round(decimals).cast(pl.Decimal(38, decimals)).cast(pl.Utf8)
    if decimals == 2:
        return text
    return text.str.replace(r"\.?0+$", "")


def _integer(name: str, source: str, value: pl.Expr, dtype: pl.DataType) -> _Column:
    number = _number(value, dtype)
    present = value.cast(pl.Utf8).str.strip_chars().replace("", None).is_not_null()
    whole = number.is_finite() & (number == number.floor()) & (number.abs() < 2**53)
    text = pl.when(whole).then(number.cast(pl.Int64).cast(pl.Utf8))
    problems = [("INVALID_NUMBER", present & ~whole.fill_null(False), "not a whole number")]
    return _Column(name, source, text, problems)


# -- rejects ------------------------------------------------------------------------------


def _rejects(
    spec: LinesSpec,
    batch: str,
    bad: pl.DataFrame,
    checks: list[tuple[_Column, str, pl.Expr, str]],
) -> pl.DataFrame:
    """One reject per (row, problem): a row with two problems is reported twice."""
    parts = [
        bad.filter(pl.col(f"__bad{i}")).select(
            pl.lit(spec.sync).alias("sync"),
            pl.lit(batch).alias("batch"),
            pl.col(ROW).alias("row"),
            pl.col(KEY).str.replace_all(KEY_SEPARATOR, " / ", literal=True).alias("key"),
            pl.lit(column.source).alias("column"),
            pl.lit(column.name).alias("field"),
            pl.col(f"__raw_{column.name}").str.slice(0, 200).alias("value"),
            pl.lit(code).alias("code"),
            pl.lit(problem).alias("problem"),
        )
        for i, (column, code, _, problem) in enumerate(checks)
    ]
    frame = pl.concat(parts) if parts else pl.DataFrame(schema=REJECT_SCHEMA)
    if frame.height == 0:
        return pl.DataFrame(schema=REJECT_SCHEMA)
    return (
        frame.with_columns(reject_reason(spec.sync, batch).alias("reason"))
        .select([pl.col(name).cast(dtype) for name, dtype in REJECT_SCHEMA.items()])
        .sort("row", "field")
    )
